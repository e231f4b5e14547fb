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
// outruns it. That buffer keeps room in front for the partial frame at the end of the current
// chunk, copied there when the cursor moves on; a frame too big for that room, or a read-ahead
// that came back short or failed, falls back to a plain read at the frame (which reports the
// error, if any, itself).
//
// Invariants: `position` is the file position of the frame just returned (or of the problem);
// a frame is only reported cut ('partial-*') when the *file* ends inside it; a refill always
// loads at least one whole frame (bounded by recordBytesMax, checked before allocating).
// Not re-entrant: one consumer, refill() calls never overlap; at most one read-ahead is in
// flight, and only between refills.

import type { FileHandle } from 'node:fs/promises';
import { recordBytesMax } from '../constants.js';
import { checkFrame, frameHeaderBytes, readU32, verifyFrames, type FrameStatus } from './framing.js';

export const readChunkBytes = 1024 * 1024;

/** Room in front of a read-ahead chunk for the partial frame it continues. */
const carryBytesMax = 64 * 1024;

/** Read buffers given back by cursors that are done, by size: a replay or a scan opens a cursor
 *  per segment, and on a VM where the first touch of fresh memory costs ~3.5 ms per MiB, two
 *  new 4 MiB buffers per segment were a tenth of a scan. At most two of each size are kept. */
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

interface ReadAhead {
  /** File position of the chunk, right after the current one. */
  filePos: number;
  length: number;
  /** Which of `wholes` it is read into, at carryBytesMax. */
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
  /** The two read-ahead buffers (carryBytesMax + chunkBytes each), made on first use. */
  private wholes: [Buffer, Buffer] | null = null;
  /** Which of `wholes` holds `buf`, or -1 when `buf` is a buffer of its own. */
  private current: 0 | 1 | -1 = -1;
  private ahead: ReadAhead | null = null;

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

  /** Moves on to the read-ahead chunk, the partial frame carried in front; false if it cannot. */
  private async takeAhead(): Promise<boolean> {
    const ahead = this.ahead;
    this.ahead = null;
    if (ahead === null) return false;
    const got = await ahead.read;
    const carried = this.bufFilePos + this.bufEnd - this.next_;
    if (got !== ahead.length || ahead.filePos !== this.bufFilePos + this.bufEnd || carried < 0 || carried > carryBytesMax) {
      return false;
    }
    const whole = (this.wholes as [Buffer, Buffer])[ahead.into];
    const start = carryBytesMax - carried;
    this.buf.copy(whole, start, this.next_ - this.bufFilePos, this.bufEnd);
    this.buf = whole.subarray(start, carryBytesMax + got);
    this.current = ahead.into;
    this.bufFilePos = this.next_;
    this.bufEnd = carried + got;
    this.verifiedEnd = 0;
    return true;
  }

  /** Starts reading the chunk after `buf` into the read buffer `buf` is not in. */
  private readAhead(): void {
    const filePos = this.bufFilePos + this.bufEnd;
    const length = Math.min(this.chunkBytes, this.fileEnd - filePos);
    if (length <= 0) return;
    const into = this.current === 0 ? 1 : 0;
    const target = this.buffers()[into].subarray(carryBytesMax, carryBytesMax + length);
    const read = readFully(this.fh, target, length, filePos).catch(() => 0);
    this.ahead = { filePos, length, into, read };
  }

  private buffers(): [Buffer, Buffer] {
    const size = carryBytesMax + this.chunkBytes;
    this.wholes ??= [takeBuffer(size), takeBuffer(size)];
    return this.wholes;
  }

  /** Gives the cursor's read buffers back for later cursors; the cursor must not be used after.
   *  A buffer a read-ahead is still filling is left to the garbage collector instead. */
  release(): void {
    const wholes = this.wholes;
    this.wholes = null;
    this.buf = Buffer.alloc(0);
    if (wholes === null) return;
    const busy = this.ahead?.into;
    this.ahead = null;
    if (busy !== 0) giveBack(wholes[0]);
    if (busy !== 1) giveBack(wholes[1]);
  }

  /** A plain read at the next frame: into the read buffer `buf` is not in, or into a buffer of
   *  its own for a frame too big for those. */
  private async readAt(): Promise<void> {
    const want = Math.min(Math.max(this.chunkBytes, frameHeaderBytes + recordBytesMax), this.fileEnd - this.next_);
    const size = Math.min(this.chunkBytes, this.fileEnd - this.next_);
    let need = size;
    if (this.bufEnd - (this.next_ - this.bufFilePos) >= frameHeaderBytes) {
      const length = readU32(this.buf, this.next_ - this.bufFilePos);
      if (length <= recordBytesMax) need = Math.max(size, Math.min(want, frameHeaderBytes + length));
    }
    if (need <= carryBytesMax + this.chunkBytes) {
      const into = this.current === 0 ? 1 : 0;
      this.buf = this.buffers()[into];
      this.current = into;
    } else {
      this.buf = Buffer.allocUnsafe(need);
      this.current = -1;
    }
    this.bufFilePos = this.next_;
    this.verifiedEnd = 0;
    this.bufEnd = await readFully(this.fh, this.buf, need, this.bufFilePos);
    if (this.bufEnd < need) {
      throw new Error(`short read at ${this.bufFilePos}: file shrank while being read`);
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
