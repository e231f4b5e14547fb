// FrameCursor reads the chunk after the one it hands out while the caller works (read-ahead).
// With chunks of a few hundred bytes, a file of frames of every size (tiny, larger than a chunk,
// larger than the room kept for a carried partial frame) must come out whole, in order and
// verified, exactly as a plain read gives them; a cut file still reports the cut frame; and
// cursors that give their buffers back never see each other's bytes (a buffer a read-ahead is
// still filling is not given back).

import { open, rm, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { initChecksum } from '../../src/log/checksum.js';
import { FrameCursor, pooledReadBuffers } from '../../src/log/frame-cursor.js';
import { frameHeaderBytes, sealFrames } from '../../src/log/framing.js';

/** Frames whose payloads are `sizes` bytes, each filled with a byte derived from its index. */
function framesOf(sizes: number[]): Buffer {
  const total = sizes.reduce((sum, n) => sum + frameHeaderBytes + n, 0);
  const buf = Buffer.alloc(total);
  const ends: number[] = [];
  let at = 0;
  sizes.forEach((n, i) => {
    buf.fill((i * 37 + 11) & 0xff, at + frameHeaderBytes, at + frameHeaderBytes + n);
    at += frameHeaderBytes + n;
    ends.push(at);
  });
  sealFrames(buf, 0, ends, 0, ends.length);
  return buf;
}

async function readAll(file: string, fileEnd: number, chunkBytes: number): Promise<{ payloads: Buffer[]; last: string; refills: number }> {
  const fh = await open(file, 'r');
  const cursor = new FrameCursor(fh, 0, fileEnd, chunkBytes);
  const payloads: Buffer[] = [];
  let refills = 0;
  try {
    for (;;) {
      const status = cursor.next();
      if (status === 'refill') {
        refills++;
        await cursor.refill();
        continue;
      }
      if (status !== 'ok') return { payloads, last: status, refills };
      payloads.push(Buffer.from(cursor.buf.subarray(cursor.payloadStart, cursor.payloadEnd)));
    }
  } finally {
    cursor.release();
    await fh.close();
  }
}

t.before(() => initChecksum());

t.test('every-frame-comes-out-whole-across-read-ahead-chunks-of-any-size', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-cursor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Mostly small frames, with frames larger than a chunk and larger than the 64 KiB carry room.
  const sizes: number[] = [];
  for (let i = 0; i < 3000; i++) sizes.push(i % 997 === 5 ? 70_000 : i % 101 === 3 ? 900 : 1 + ((i * 7919) % 200));
  const bytes = framesOf(sizes);
  const file = join(dir, 'frames');
  await writeFile(file, bytes);
  for (const chunk of [256, 1000, 4096, 65_536]) {
    const got = await readAll(file, bytes.length, chunk);
    t.equal(got.last, 'end', `chunk ${chunk}: reaches the end`);
    t.equal(got.payloads.length, sizes.length, `chunk ${chunk}: every frame`);
    const wrong = got.payloads.findIndex((p, i) => p.length !== sizes[i] || p.some((b) => b !== ((i * 37 + 11) & 0xff)));
    t.equal(wrong, -1, `chunk ${chunk}: every payload intact`);
    t.ok(got.refills > 2, `chunk ${chunk}: read in ${got.refills} chunks`);
  }
});

t.test('a-file-cut-inside-a-frame-reports-the-cut-frame-after-read-ahead', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-cursor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const sizes = Array.from({ length: 400 }, (_, i) => 10 + (i % 50));
  const bytes = framesOf(sizes);
  const file = join(dir, 'frames');
  const cut = bytes.length - 20; // inside the last frame's payload
  await writeFile(file, bytes.subarray(0, cut));
  const got = await readAll(file, cut, 300);
  t.equal(got.payloads.length, sizes.length - 1, 'every whole frame');
  t.equal(got.last, 'partial-payload');
});

t.test('cursors-that-give-buffers-back-never-see-each-others-bytes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-cursor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = framesOf(Array.from({ length: 500 }, (_, i) => 20 + (i % 30)));
  const b = framesOf(Array.from({ length: 500 }, (_, i) => 5 + (i % 90)));
  await writeFile(join(dir, 'a'), a);
  await writeFile(join(dir, 'b'), b);
  // Two at once, then one after the other (taking the buffers the first ones gave back), and a
  // cursor abandoned with a read-ahead in flight.
  const both = await Promise.all([readAll(join(dir, 'a'), a.length, 512), readAll(join(dir, 'b'), b.length, 512)]);
  t.same(both.map((r) => r.payloads.length), [500, 500]);
  const fh = await open(join(dir, 'a'), 'r');
  const chunk = 777; // a size no other cursor here uses: its pool is this cursor's alone
  const abandoned = new FrameCursor(fh, 0, a.length, chunk);
  // From the second refill on a read-ahead is in flight: stop after the third.
  for (let refills = 0; refills < 3; ) {
    const status = abandoned.next();
    if (status === 'refill') {
      await abandoned.refill();
      refills++;
    } else if (status !== 'ok') break;
  }
  abandoned.release();
  t.equal(pooledReadBuffers(chunk), 1, 'the buffer a read-ahead is still filling is not given back');
  await fh.close();
  const again = await readAll(join(dir, 'b'), b.length, 512);
  t.same(again.payloads, both[1]?.payloads, 'the same payloads, byte for byte');
});
