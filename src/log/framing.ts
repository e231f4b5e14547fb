// Frames: how one encoded record sits in a segment file.
//
//   +-------------+---------------+=====================+
//   | length u32  | checksum u32  | payload (length B)  |
//   |  LE         |  LE           | protobuf Record     |
//   +-------------+---------------+=====================+
//   0             4               8                8+length
//
// checksum = xxh32(payload, seed = checksumSeed XOR length). Folding the length into the seed
// makes the checksum cover the length field as well as the payload while both stay one
// contiguous hash input. Invariants: 0 < length <= recordBytesMax, checked before anything is
// allocated for the payload. All functions are synchronous.
//
// Batches of frames are sealed and verified in bulk (sealFrames, verifyFrames): one copy of a
// run of frames into the hasher's memory, then one in-place hash per frame (checksum.ts).

import { recordBytesMax } from '../constants.js';
import { checksum32, checksumLoaded, checksumSeed, loadChecksumRange } from './checksum.js';

export const frameHeaderBytes = 8;

export function frameSeed(length: number): number {
  return (checksumSeed ^ length) >>> 0;
}

/** Bytes of frames hashed per bulk load (a frame larger than this is one run by itself). */
export const bulkRunBytes = 64 * 1024;

/** Seals the consecutive frames ending at frameEnds[first .. first+count), the first starting at
 *  buf[start]; each payload is already in place behind its 8 reserved header bytes. */
export function sealFrames(buf: Uint8Array, start: number, frameEnds: readonly number[], first: number, count: number): void {
  let runStart = start;
  let i = first;
  while (i < first + count) {
    // Runs of at most bulkRunBytes (or one larger frame) keep the hasher's memory bounded.
    let j = i + 1;
    while (j < first + count && (frameEnds[j] as number) - runStart <= bulkRunBytes) j++;
    const runEnd = frameEnds[j - 1] as number;
    loadChecksumRange(buf, runStart, runEnd);
    let frameStart = runStart;
    for (let k = i; k < j; k++) {
      const frameEnd = frameEnds[k] as number;
      const length = frameEnd - frameStart - frameHeaderBytes;
      writeU32(buf, frameStart, length);
      const rel = frameStart - runStart + frameHeaderBytes;
      writeU32(buf, frameStart + 4, checksumLoaded(rel, rel + length, frameSeed(length)));
      frameStart = frameEnd;
    }
    runStart = runEnd;
    i = j;
  }
}

/** Verifies whole frames from buf[pos] on, stopping at `end`, at the first frame that is not
 *  whole before `end`, at the first bad one, or after about bulkRunBytes. Returns where the
 *  verified frames end (== pos if the frame at pos is not verified: checkFrame says why). */
export function verifyFrames(buf: Uint8Array, pos: number, end: number): number {
  if (end - pos < frameHeaderBytes) return pos;
  const firstLength = readU32(buf, pos);
  if (firstLength === 0 || firstLength > recordBytesMax) return pos;
  const loadEnd = Math.min(end, pos + Math.max(bulkRunBytes, frameHeaderBytes + firstLength));
  loadChecksumRange(buf, pos, loadEnd);
  let p = pos;
  while (loadEnd - p >= frameHeaderBytes) {
    const length = readU32(buf, p);
    if (length === 0 || length > recordBytesMax || loadEnd - p - frameHeaderBytes < length) break;
    const rel = p - pos + frameHeaderBytes;
    if (checksumLoaded(rel, rel + length, frameSeed(length)) !== readU32(buf, p + 4)) break;
    p += frameHeaderBytes + length;
  }
  return p;
}

function writeU32(buf: Uint8Array, pos: number, value: number): void {
  buf[pos] = value & 0xff;
  buf[pos + 1] = (value >>> 8) & 0xff;
  buf[pos + 2] = (value >>> 16) & 0xff;
  buf[pos + 3] = value >>> 24;
}

/** What a frame check found. */
export type FrameStatus =
  | 'ok'
  | 'partial-header' // fewer than 8 bytes left in the file
  | 'bad-length' // length 0 or > recordBytesMax
  | 'partial-payload' // length runs past the end of the file
  | 'bad-checksum';

export const frameStatusText: Record<Exclude<FrameStatus, 'ok'>, string> = {
  'partial-header': 'incomplete frame header',
  'bad-length': 'frame length out of range',
  'partial-payload': 'frame runs past the end of the file',
  'bad-checksum': 'checksum mismatch',
};

/** Checks the frame at buf[pos]; `fileEnd` is where the file (not the buffer) ends, expressed
 *  in buffer coordinates, so a frame cut by the buffer but not the file is reported as
 *  'partial-*' only when it really is cut by the end of the file. The caller guarantees
 *  buf holds the whole frame when the file does (see FrameCursor). */
export function checkFrame(buf: Uint8Array, pos: number, fileEnd: number): FrameStatus {
  if (fileEnd - pos < frameHeaderBytes) return 'partial-header';
  const length = readU32(buf, pos);
  if (length === 0 || length > recordBytesMax) return 'bad-length';
  if (fileEnd - pos - frameHeaderBytes < length) return 'partial-payload';
  const start = pos + frameHeaderBytes;
  if (checksum32(buf, start, start + length, frameSeed(length)) !== readU32(buf, pos + 4)) return 'bad-checksum';
  return 'ok';
}

export function readU32(buf: Uint8Array, pos: number): number {
  return ((buf[pos] as number) | ((buf[pos + 1] as number) << 8) | ((buf[pos + 2] as number) << 16)) + (buf[pos + 3] as number) * 0x1000000;
}
