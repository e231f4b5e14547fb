// Sequential frame reading from one segment file, in chunks, without a promise per frame.
//
//   for (;;) {
//     const s = cursor.next();            // sync: checks the next frame inside the loaded chunk
//     if (s === 'refill') { await cursor.refill(); continue; }
//     if (s === 'end') break;
//     if (s !== 'ok') ...                  // a FrameStatus problem at cursor.position
//     use cursor.buf[cursor.payloadStart, cursor.payloadEnd)
//   }
//
// Checksums are verified in bulk: when next() reaches the end of the verified run it verifies
// the following run of whole frames in the chunk (framing.verifyFrames, ~64 KiB at a time, so a
// reader that wants one record does not hash the whole chunk), and frames inside a verified run
// cost a length read. A frame that is not verified goes through checkFrame, which names the
// problem.
//
// Read-ahead: from its second refill on (a sequential read, not a lookup of a few records), the
// cursor reads the chunk after the one it hands out into a second buffer while the caller works
// through the first, so a long read (a replay, a scan) waits on the disk only when decoding
// outruns it. The partial frame at the end of the current chunk moves on with it: into room kept
// in front of the next chunk when it is small, else together with that chunk into the cursor's
// own buffer. A frame longer than the two, or a read-ahead that came back short or failed, is
// read again by a plain read at the frame, which reports a lasting error itself (a read that
// fails once and then succeeds is no error: the bytes are checksummed either way).
//
// A file that ends before `fileEnd` (a live writer trimmed it after its size was taken) makes
// refill() throw LOG_SHRANK; the frames returned before stay valid.
//
// Invariants: `position` is the file position of the frame just returned (or of the problem);
// a frame is only reported cut ('partial-*') when the *file* ends inside it; a plain read always
// loads at least one whole frame (bounded by recordBytesMax, checked before allocating).
// Not re-entrant: one consumer, refill() calls never overlap; at most one read is in flight, and
// a buffer being filled is never given back to the pool.

import type { FileHandle } from 'node:fs/promises';
import { recordBytesMax } from '../constants.js';
import { LogError } from './errors.js';
import { checkFrame, frameHeaderBytes, readU32, verifyFrames, type FrameStatus } from './framing.js';

export const readChunkBytes = 1024 * 1024;

/** Room in front of a read-ahead chunk for the partial frame it continues. */
const carryBytesMax = 64 * 1024;

/** Read buffers given back by cursors that are done, by size: a replay or a scan opens a cursor
 *  per segment, and on a VM where the first touch of fresh memory costs ~3.5 ms per MiB, fresh
 *  buffers for every segment were a tenth of a scan. At most two of each size are kept (all
 *  cursors of the log read readChunkBytes: about 2 MiB held for good). */
const pool = new Map<number, Buffer[]>();
const pooledPerSize = 2;

function takeBuffer(size: number): Buffer {
  return pool.get(size)?.pop() ?? Buffer.allocUnsafeSlow(size);
}

/** Buffers kept for cursors reading `chunkBytes` at a time (the tests check what is given back). */
export function pooledReadBuffers(chunkBytes: number): number {
  return pool.get(carryBytesMax + chunkBytes)?.length ?? 0;
}

function giveBack(buf: Buffer): void {
  let kept = pool.get(buf.length);
  if (kept === undefined) pool.set(buf.length, (kept = []));
  if (kept.length < pooledPerSize) kept.push(buf);
}

/** The chunk right after `buf`, being read (nothing moves `buf` until the next refill takes it). */
interface ReadAhead {
  length: number;
  /** Which read buffer it is read into, at carryBytesMax. */
  into: 0 | 1;
  /** Bytes read; never rejects (a failure reads as 0 bytes: the plain read then reports it). */
  read: Promise<number>;
}

export class FrameCursor {
  buf: Buffer = Buffer.alloc(0);
  /** File position of buf[0]. */
  private bufFilePos: number;
  private bufEnd = 0;
  /** Frames in buf before this position have been verified (buffer coordinates). */
  private verifiedEnd = 0;
  /** File position of the next frame to check. */
  private next_: number;
  position = 0;
  payloadStart = 0;
  payloadEnd = 0;
  private refills = 0;
  /** The two pooled read buffers (carryBytesMax + chunkBytes each), each taken on first use. */
  private readonly wholes: [Buffer | null, Buffer | null] = [null, null];
  /** Which read buffer holds `buf`, or -1 when `buf` is the cursor's own buffer. */
  private current: 0 | 1 | -1 = -1;
  /** Which read buffer a read is filling, or -1. */
  private filling: 0 | 1 | -1 = -1;
  private ahead: ReadAhead | null = null;
  /** For what the read buffers cannot hold (a long frame); kept for the next one. */
  private own: Buffer | null = null;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    /** File size to read up to (frames past it are cut). */
    readonly fileEnd: number,
    private readonly chunkBytes = readChunkBytes,
  ) {
    this.bufFilePos = start;
    this.next_ = start;
  }

  /** File position after the last frame returned with 'ok'. */
  get nextPosition(): number {
    return this.next_;
  }

  next(): FrameStatus | 'refill' | 'end' {
    const pos = this.next_ - this.bufFilePos;
    if (pos < this.verifiedEnd) return this.accept(pos);
    const fileEnd = this.fileEnd - this.bufFilePos;
    if (pos >= fileEnd) return 'end';
    const loadedToFileEnd = this.bufFilePos + this.bufEnd >= this.fileEnd;
    if (this.bufEnd - pos < frameHeaderBytes && !loadedToFileEnd) return 'refill';
    if (this.bufEnd - pos >= frameHeaderBytes) {
      const length = readU32(this.buf, pos);
      if (length > 0 && length <= recordBytesMax && this.bufEnd - pos - frameHeaderBytes < length && !loadedToFileEnd) {
        return 'refill';
      }
    }
    const end = Math.min(fileEnd, this.bufEnd);
    this.verifiedEnd = verifyFrames(this.buf, pos, end);
    if (pos < this.verifiedEnd) return this.accept(pos);
    this.position = this.next_;
    const status = checkFrame(this.buf, pos, end);
    if (status !== 'ok') return status;
    return this.accept(pos);
  }

  /** Returns the verified frame at buf[pos]. */
  private accept(pos: number): 'ok' {
    this.position = this.next_;
    this.payloadStart = pos + frameHeaderBytes;
    this.payloadEnd = this.payloadStart + readU32(this.buf, pos);
    this.next_ = this.bufFilePos + this.payloadEnd;
    return 'ok';
  }

  /** Loads the chunk starting at the next frame (big enough for that frame). */
  async refill(): Promise<void> {
    this.refills++;
    if (!(await this.takeAhead())) await this.readAt();
    if (this.refills >= 2) this.readAhead();
  }

  /** Moves on to the read-ahead chunk, the partial frame at the end of `buf` carried along;
   *  false when the chunk cannot be used (a plain read at the frame follows). */
  private async takeAhead(): Promise<boolean> {
    const ahead = this.ahead;
    if (ahead === null) return false;
    const got = await ahead.read;
    this.ahead = null;
    this.filling = -1;
    const from = this.next_ - this.bufFilePos;
    const carried = this.bufEnd - from;
    if (got !== ahead.length || carried < 0) return false;
    const chunk = this.whole(ahead.into);
    if (carried <= carryBytesMax) {
      const start = carryBytesMax - carried;
      this.buf.copy(chunk, start, from, this.bufEnd);
      this.moveTo(chunk.subarray(start, carryBytesMax + got), ahead.into, carried + got);
      return true;
    }
    // A long partial frame: joined with the chunk in the cursor's own buffer if it ends in it.
    if (carried >= frameHeaderBytes && frameHeaderBytes + readU32(this.buf, from) > carried + got) return false;
    const joined = this.ownBuffer(carried + got);
    this.buf.copy(joined, 0, from, this.bufEnd);
    chunk.copy(joined, carried, carryBytesMax, carryBytesMax + got);
    this.moveTo(joined, -1, carried + got);
    return true;
  }

  /** `buf` becomes `next`, holding `bytes` bytes from the next frame on. */
  private moveTo(next: Buffer, current: 0 | 1 | -1, bytes: number): void {
    this.buf = next;
    this.current = current;
    this.bufFilePos = this.next_;
    this.bufEnd = bytes;
    this.verifiedEnd = 0;
  }

  /** Starts reading the chunk after `buf` into the read buffer `buf` is not in. */
  private readAhead(): void {
    const filePos = this.bufFilePos + this.bufEnd;
    const length = Math.min(this.chunkBytes, this.fileEnd - filePos);
    if (length <= 0) return;
    const into = this.current === 0 ? 1 : 0;
    const target = this.whole(into).subarray(carryBytesMax, carryBytesMax + length);
    this.filling = into;
    this.ahead = { length, into, read: readFully(this.fh, target, length, filePos).catch(() => 0) };
  }

  private whole(i: 0 | 1): Buffer {
    let buf = this.wholes[i];
    if (buf === null) {
      buf = takeBuffer(carryBytesMax + this.chunkBytes);
      this.wholes[i] = buf;
    }
    return buf;
  }

  private ownBuffer(bytes: number): Buffer {
    if (this.own === null || this.own.length < bytes) this.own = Buffer.allocUnsafe(bytes);
    return this.own;
  }

  /** Gives the cursor's read buffers back for later cursors; the cursor must not be used after.
   *  A buffer a read is still filling is left to the garbage collector instead. */
  release(): void {
    for (const i of [0, 1] as const) {
      const buf = this.wholes[i];
      this.wholes[i] = null;
      if (buf !== null && i !== this.filling) giveBack(buf);
    }
    this.buf = Buffer.alloc(0);
    this.own = null;
    this.ahead = null;
  }

  /** A plain read at the next frame: into the read buffer `buf` is not in, or into the cursor's
   *  own buffer for a frame too long for those. */
  private async readAt(): Promise<void> {
    const want = Math.min(Math.max(this.chunkBytes, frameHeaderBytes + recordBytesMax), this.fileEnd - this.next_);
    const size = Math.min(this.chunkBytes, this.fileEnd - this.next_);
    let need = size;
    if (this.bufEnd - (this.next_ - this.bufFilePos) >= frameHeaderBytes) {
      const length = readU32(this.buf, this.next_ - this.bufFilePos);
      if (length <= recordBytesMax) need = Math.max(size, Math.min(want, frameHeaderBytes + length));
    }
    const into = this.current === 0 ? 1 : 0;
    const fits = need <= carryBytesMax + this.chunkBytes;
    const target = fits ? this.whole(into) : this.ownBuffer(need);
    this.moveTo(target, fits ? into : -1, 0);
    if (fits) this.filling = into;
    this.bufEnd = await readFully(this.fh, target, need, this.bufFilePos);
    this.filling = -1;
    if (this.bufEnd < need) {
      // The size this cursor was given is gone: a writer trimmed the file (its preallocated zeros)
      // after it was taken. The caller decides what that means (isShrank).
      const end = this.bufFilePos + this.bufEnd;
      throw new LogError('LOG_SHRANK', `short read at ${this.bufFilePos}: the file ends at byte ${end}, not ${this.fileEnd} (it shrank while being read)`, {
        position: end,
      });
    }
  }
}

export async function readFully(fh: FileHandle, buf: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}
