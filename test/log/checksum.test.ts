import t from 'tap';
import { randomBytes } from 'node:crypto';
import { bulkChecksumBytesMax, checksum32, checksumLoaded, createChecksum32, initChecksum, loadChecksumRange } from '../../src/log/checksum.js';
import { checkFrame, frameHeaderBytes, frameSeed, sealFrames, verifyFrames } from '../../src/log/framing.js';

t.test('bulk-checksums-equal-one-range-checksums-at-every-size-up-to-the-bound', async (t) => {
  await initChecksum();
  const bytes = randomBytes(bulkChecksumBytesMax + 100);
  let wrong = 0;
  for (const [start, length] of [[0, 0], [3, 1], [7, 15], [1, 16], [5, 17], [100, 1000], [9, 70_000], [50, bulkChecksumBytesMax]] as const) {
    loadChecksumRange(bytes, start, start + length);
    for (const [from, to] of [[0, length], [1, length], [0, length >> 1], [length >> 2, length - 1]] as Array<[number, number]>) {
      if (from > to || to > length || from < 0) continue;
      if (checksumLoaded(from, to, frameSeed(to - from)) !== checksum32(bytes, start + from, start + to, frameSeed(to - from))) wrong++;
    }
  }
  t.equal(wrong, 0);
  t.throws(() => loadChecksumRange(bytes, 0, bulkChecksumBytesMax + 1), 'a load past the bound is a bug');
});

t.test('sealed-frames-verify-and-a-flipped-byte-stops-the-verified-run-at-its-frame', async (t) => {
  await initChecksum();
  const lengths = Array.from({ length: 3_000 }, (_, i) => 1 + ((i * 37) % 300));
  const ends: number[] = [];
  let pos = 0;
  for (const l of lengths) ends.push((pos += frameHeaderBytes + l));
  const buf = randomBytes(pos);
  sealFrames(buf, 0, ends, 0, ends.length);
  let p = 0;
  let frames = 0;
  while (p < buf.length) {
    const next = verifyFrames(buf, p, buf.length);
    t.ok(next > p, 'every run verifies at least one frame');
    p = next;
    frames++;
  }
  t.equal(p, buf.length);
  const victim = 1234;
  const victimStart = ends[victim - 1] as number;
  buf.writeUInt8((buf.readUInt8(victimStart + frameHeaderBytes + 3) ^ 0x10), victimStart + frameHeaderBytes + 3);
  let q = 0;
  while (q < victimStart) q = verifyFrames(buf, q, buf.length);
  t.equal(q, victimStart, 'the run ends at the damaged frame');
  t.equal(verifyFrames(buf, q, buf.length), q);
  t.equal(checkFrame(buf, q, buf.length), 'bad-checksum');
  t.ok(frames > 1);
});

t.test('a-long-range-is-hashed-in-pieces-without-growing-wasm-memory-to-its-size', async (t) => {
  await initChecksum();
  const n = 96 * 1024 * 1024 + 7;
  const bytes = Buffer.alloc(n);
  for (let i = 0; i < n; i++) bytes[i] = (i * 31 + (i >> 13)) & 255;
  const rssBefore = process.memoryUsage().rss;
  // The first 10 MiB + 7 bytes: values computed by h32Raw over the whole range at once.
  const tenMiB = 10 * 1024 * 1024 + 7;
  t.equal(checksum32(bytes, 0, tenMiB), 1007034881);
  t.equal(checksum32(bytes, 3, tenMiB - 5), 3605755935);
  const whole = checksum32(bytes, 0, n);
  const grownBytes = process.memoryUsage().rss - rssBefore;
  t.ok(grownBytes < 32 * 1024 * 1024, `hashing ${n} bytes grew the process by ${grownBytes} bytes`);
  const hash = createChecksum32();
  for (let at = 0; at < n; at += 1_000_003) hash.update(bytes, at, Math.min(n, at + 1_000_003));
  t.equal(hash.digest(), whole, 'pieces of any size give the one-range checksum');
});
