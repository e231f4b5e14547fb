// The 40-byte header at the start of every segment file. All integers little-endian.
//
//   0        8          12                28              36          40
//   +--------+----------+-----------------+---------------+-----------+
//   | magic  | version  | log id (UUID)   | base offset   | checksum  |
//   | 8 B    | u32      | 16 B            | u64           | u32       |
//   +--------+----------+-----------------+---------------+-----------+
//
// magic = "TAPEQLOG"; checksum = xxh32(bytes 0..36, checksumSeed). The base offset repeats the
// file name so a renamed file is detected; the log id ties the segments of one log together.

import { randomUUID } from 'node:crypto';
import { checksum32 } from './checksum.js';
import { readU32 } from './framing.js';

export const segmentHeaderBytes = 40;
export const segmentMagic = 'TAPEQLOG';
export const segmentFormatVersion = 1;

export interface SegmentHeader {
  version: number;
  logId: string;
  baseOffset: number;
}

export function newLogId(): string {
  return randomUUID();
}

export function encodeSegmentHeader(logId: string, baseOffset: number): Buffer {
  const buf = Buffer.alloc(segmentHeaderBytes);
  buf.write(segmentMagic, 0, 'latin1');
  buf.writeUInt32LE(segmentFormatVersion, 8);
  Buffer.from(logId.replaceAll('-', ''), 'hex').copy(buf, 12);
  buf.writeBigUInt64LE(BigInt(baseOffset), 28);
  buf.writeUInt32LE(checksum32(buf, 0, 36), 36);
  return buf;
}

/** Parses a header; returns what is wrong with it as a string instead of throwing. */
export function decodeSegmentHeader(buf: Uint8Array): SegmentHeader | string {
  if (buf.length < segmentHeaderBytes) return `header is ${buf.length} bytes, expected ${segmentHeaderBytes}`;
  const b = Buffer.from(buf.buffer, buf.byteOffset, segmentHeaderBytes);
  if (b.toString('latin1', 0, 8) !== segmentMagic) return 'bad magic (not a tapeq segment)';
  if (checksum32(b, 0, 36) !== readU32(b, 36)) return 'header checksum mismatch';
  const version = b.readUInt32LE(8);
  if (version !== segmentFormatVersion) return `unsupported format version ${version}`;
  const hex = b.toString('hex', 12, 28);
  const logId = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return { version, logId, baseOffset: Number(b.readBigUInt64LE(28)) };
}

export function segmentFileName(baseOffset: number): string {
  return `${String(baseOffset).padStart(20, '0')}.log`;
}

export const segmentFilePattern = /^(\d{20})\.log$/;
