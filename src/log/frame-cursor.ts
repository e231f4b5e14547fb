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
// Invariants: `position` is the file position of the frame just returned (or of the problem);
// a frame is only reported cut ('partial-*') when the *file* ends inside it; a refill always
// loads at least one whole frame (bounded by recordBytesMax, checked before allocating).
// Not re-entrant: one consumer, refill() calls never overlap.

import type { FileHandle } from 'node:fs/promises';
import { recordBytesMax } from '../constants.js';
import { checkFrame, frameHeaderBytes, readU32, verifyFrames, type FrameStatus } from './framing.js';

export const readChunkBytes = 1024 * 1024;

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
    const want = Math.min(Math.max(this.chunkBytes, frameHeaderBytes + recordBytesMax), this.fileEnd - this.next_);
    const size = Math.min(this.chunkBytes, this.fileEnd - this.next_);
    let need = size;
    if (this.bufEnd - (this.next_ - this.bufFilePos) >= frameHeaderBytes) {
      const length = readU32(this.buf, this.next_ - this.bufFilePos);
      if (length <= recordBytesMax) need = Math.max(size, Math.min(want, frameHeaderBytes + length));
    }
    if (this.buf.length < need) this.buf = Buffer.allocUnsafe(need);
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
