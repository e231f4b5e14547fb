// FrameCursor reads the chunk after the one it hands out while the caller works (read-ahead).
// With chunks of a few hundred bytes, a file of frames of every size (tiny, larger than a chunk,
// larger than the room kept for a carried partial frame) must come out whole, in order and
// verified, exactly as a plain read gives them, and no byte is read twice over (frames longer
// than the room in front of a chunk are joined, not read again); a cut file still reports the
// cut frame, and a file that shrinks under the cursor a short read (LOG_SHRANK); a read that fails once is
// read again, one that keeps failing is reported; a lookup takes one buffer; and cursors that
// give their buffers back never see each other's bytes (a buffer a read is still filling is not
// given back).

import { open, rm, mkdtemp, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { initChecksum } from '../../src/log/checksum.js';
import { isShrank } from '../../src/log/errors.js';
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

/** A temp file (removed after the test) holding the frames of `sizes`. */
async function framesFile(t: Test, sizes: number[]): Promise<{ file: string; bytes: Buffer }> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-cursor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bytes = framesOf(sizes);
  const file = join(dir, 'frames');
  await writeFile(file, bytes);
  return { file, bytes };
}

/** A FileHandle whose reads are counted, and fail (EIO) when `fails(readNumber)` says so. */
function counted(fh: FileHandle, fails: (n: number) => boolean = () => false): FileHandle & { bytesRead: number } {
  let reads = 0;
  const wrapped = {
    bytesRead: 0,
    async read(buf: Buffer, offset: number, length: number, position: number) {
      reads++;
      if (fails(reads)) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
      const r = await fh.read(buf, offset, length, position);
      wrapped.bytesRead += r.bytesRead;
      return r;
    },
  };
  return wrapped as unknown as FileHandle & { bytesRead: number };
}

async function readAll(
  file: string,
  fileEnd: number,
  chunkBytes: number,
  wrap: (fh: FileHandle) => FileHandle = (fh) => fh,
): Promise<{ payloads: Buffer[]; last: string; refills: number }> {
  const real = await open(file, 'r');
  const fh = wrap(real);
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
    await real.close();
  }
}

t.before(() => initChecksum());

t.test('every-frame-comes-out-whole-across-read-ahead-chunks-of-any-size', async (t) => {
  // Mostly small frames, with frames larger than a chunk and larger than the 64 KiB carry room.
  const sizes: number[] = [];
  for (let i = 0; i < 3000; i++) sizes.push(i % 997 === 5 ? 70_000 : i % 101 === 3 ? 900 : 1 + ((i * 7919) % 200));
  const { file, bytes } = await framesFile(t, sizes);
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
  const sizes = Array.from({ length: 400 }, (_, i) => 10 + (i % 50));
  const { file, bytes } = await framesFile(t, sizes);
  const cut = bytes.length - 20; // inside the last frame's payload
  await truncate(file, cut);
  const got = await readAll(file, cut, 300);
  t.equal(got.payloads.length, sizes.length - 1, 'every whole frame');
  t.equal(got.last, 'partial-payload');
});

t.test('cursors-that-give-buffers-back-never-see-each-others-bytes', async (t) => {
  const a = await framesFile(t, Array.from({ length: 500 }, (_, i) => 20 + (i % 30)));
  const b = await framesFile(t, Array.from({ length: 500 }, (_, i) => 5 + (i % 90)));
  // Two at once, then one after the other (taking the buffers the first ones gave back), and a
  // cursor abandoned with a read-ahead in flight.
  const both = await Promise.all([readAll(a.file, a.bytes.length, 512), readAll(b.file, b.bytes.length, 512)]);
  t.same(both.map((r) => r.payloads.length), [500, 500]);
  const fh = await open(a.file, 'r');
  const chunk = 777; // a size no other cursor here uses: its pool is this cursor's alone
  const abandoned = new FrameCursor(fh, 0, a.bytes.length, chunk);
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
  const again = await readAll(b.file, b.bytes.length, 512);
  t.same(again.payloads, both[1]?.payloads, 'the same payloads, byte for byte');
});

t.test('long-frames-are-joined-not-read-twice', async (t) => {
  // Frames of 100 KiB and 300 KiB, longer than the 64 KiB room: almost every chunk ends inside one.
  for (const size of [100 * 1024, 300 * 1024]) {
    const { file, bytes } = await framesFile(t, Array.from({ length: 40 }, () => size));
    const handles: Array<{ bytesRead: number }> = [];
    const got = await readAll(file, bytes.length, 1024 * 1024, (fh) => {
      const handle = counted(fh);
      handles.push(handle);
      return handle;
    });
    t.equal(got.payloads.length, 40, `${size}: every frame`);
    t.equal(got.last, 'end');
    const ratio = (handles[0]?.bytesRead ?? 0) / bytes.length;
    t.ok(ratio < 1.1, `${size}: read ${ratio.toFixed(2)}× the file`);
  }
});

t.test('a-file-that-shrinks-under-the-cursor-is-a-LOG_SHRANK-short-read', async (t) => {
  const { file, bytes } = await framesFile(t, Array.from({ length: 2000 }, (_, i) => 20 + (i % 40)));
  const fh = await open(file, 'r');
  t.teardown(() => fh.close());
  const cursor = new FrameCursor(fh, 0, bytes.length, 4096);
  let refills = 0;
  const run = async (): Promise<void> => {
    for (;;) {
      const status = cursor.next();
      if (status === 'end') return;
      if (status !== 'refill') continue;
      if (++refills === 3) await truncate(file, 20_000); // with a read-ahead in flight past the cut
      await cursor.refill();
    }
  };
  const error = await run().then(
    () => null,
    (err: unknown) => err,
  );
  t.ok(isShrank(error), 'a typed LogError: readers beside a live writer can tell a trim from a failure');
  t.match(error, { code: 'LOG_SHRANK', message: /short read at \d+: the file ends at byte 20000, not \d+ \(it shrank while being read\)/ });
  cursor.release();
});

t.test('a-read-that-fails-once-is-read-again-and-one-that-keeps-failing-is-reported', async (t) => {
  const sizes = Array.from({ length: 1500 }, (_, i) => 10 + (i % 60));
  const { file, bytes } = await framesFile(t, sizes);
  const once = await readAll(file, bytes.length, 2048, (fh) => counted(fh, (n) => n === 4));
  t.equal(once.payloads.length, sizes.length, 'a read-ahead that failed once: the frames are read again');
  t.equal(once.last, 'end');
  await t.rejects(readAll(file, bytes.length, 2048, (fh) => counted(fh, (n) => n >= 4)), /EIO/);
});

t.test('a-lookup-that-reads-one-chunk-takes-one-buffer', async (t) => {
  const { file, bytes } = await framesFile(t, Array.from({ length: 100 }, () => 50));
  const chunk = 999; // a size no other cursor here uses
  const fh = await open(file, 'r');
  t.teardown(() => fh.close());
  const cursor = new FrameCursor(fh, 0, bytes.length, chunk);
  t.equal(cursor.next(), 'refill');
  await cursor.refill();
  t.equal(cursor.next(), 'ok');
  cursor.release();
  t.equal(pooledReadBuffers(chunk), 1);
});
