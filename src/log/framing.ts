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

import { recordBytesMax } from '../constants.js';
import { checksum32, checksumSeed } from './checksum.js';

export const frameHeaderBytes = 8;

export function frameSeed(length: number): number {
  return (checksumSeed ^ length) >>> 0;
}

/** Fills the 8-byte header at buf[pos] for the payload already at buf[pos+8, pos+8+length). */
export function sealFrame(buf: Uint8Array, pos: number, length: number): void {
  writeU32(buf, pos, length);
  const start = pos + frameHeaderBytes;
  writeU32(buf, pos + 4, checksum32(buf, start, start + length, frameSeed(length)));
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
