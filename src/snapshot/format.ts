// The snapshot file header (both formats) and file format 1: a fixed 48-byte header, then one
// Avro StateImage payload (codec.ts). File format 2 (head + job blocks) is in format-v2.ts.
//
//   snapshot-<covered offset, 20 digits, zero-padded>.snap
//
//   byte  width  field
//   ────  ─────  ───────────────────────────────────────────────────────────────────────────
//      0      8  magic            "TAPEQSNP" (ASCII)
//      8      4  formatVersion    u32 LE = 1, or 2 for format-v2.ts (same header, other payload)
//     12      4  schemaVersion    u32 LE   Avro schema the payload was written with (codec.ts)
//     16      8  offset           u64 LE   records [0, offset) are folded in; = image.offset
//     24      8  timestamp        u64 LE   timestamp of record offset-1 (0 for an empty log)
//     32      8  payloadBytes     u64 LE   file size is exactly 48 + payloadBytes
//     40      4  payloadChecksum  u32 LE   xxh32 (seed checksumSeed) of payload bytes (format 2: of its head)
//     44      4  headerChecksum   u32 LE   xxh32 (seed checksumSeed) of header bytes [0, 44)
//     48      …  payload          Avro binary of StateImage under schemaVersion
//
// The header checksum exists because the payload checksum does not cover `offset`: a flipped bit
// there would make a valid-looking snapshot claim the wrong position in the log. A reader checks,
// in order: size ≥ 48, magic, header checksum, format version, exact size, payload checksum,
// schema known, payload decodes, image.offset = header offset (and the loader checks the file name
// against the header). Any failure makes the whole file unusable; nothing is repaired.
//
// Worked example: an empty state at offset 0 encodes to a 13-byte payload (one varint byte each
// for version, offset, timestamp, the three empty arrays, the six zero totals and the `seconds`
// array, always empty now: codec.ts), so snapshot-00000000000000000000.snap is 61 bytes.
//
// Pure functions over buffers; `initChecksum()` must have resolved first.

import { checksum32 } from '../log/checksum.js';
import type { StateImage } from '../state/image.js';
import { decodeImage, encodeImage, imageSchemaVersionsRead, rowsSchemaVersionsRead, schemaVersionCurrent } from './codec.js';

export const snapshotMagic = Buffer.from('TAPEQSNP', 'latin1');
/** Format 1: one Avro StateImage payload (written for StateImages: writeSnapshot). */
export const snapshotFormatVersion = 1;
/** Format 2: head + checksummed job blocks (format-v2.ts; written for States: writeStateSnapshot). */
export const snapshotFormatVersionBlocks = 2;
export const snapshotHeaderBytes = 48;

export interface SnapshotHeader {
  formatVersion: number;
  schemaVersion: number;
  offset: number;
  timestamp: number;
  payloadBytes: number;
  /** Format 1: xxh32 of the payload; format 2: of its head. */
  payloadChecksum: number;
}

export class SnapshotCorruptError extends Error {
  readonly code = 'SNAPSHOT_CORRUPT';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotCorruptError';
  }
}

/** The 48-byte header; `payloadChecksum` is computed by the caller (format 1: whole payload). */
export function writeHeader(h: SnapshotHeader): Buffer {
  const header = Buffer.alloc(snapshotHeaderBytes);
  snapshotMagic.copy(header, 0);
  header.writeUInt32LE(h.formatVersion, 8);
  header.writeUInt32LE(h.schemaVersion, 12);
  header.writeBigUInt64LE(BigInt(h.offset), 16);
  header.writeBigUInt64LE(BigInt(h.timestamp), 24);
  header.writeBigUInt64LE(BigInt(h.payloadBytes), 32);
  header.writeUInt32LE(h.payloadChecksum, 40);
  header.writeUInt32LE(checksum32(header, 0, 44), 44);
  return header;
}

/** A whole format-1 file, header first. */
export function encodeSnapshot(image: StateImage): Buffer {
  const payload = encodeImage(image);
  const header = writeHeader({
    formatVersion: snapshotFormatVersion,
    schemaVersion: schemaVersionCurrent,
    offset: image.offset,
    timestamp: image.timestamp,
    payloadBytes: payload.length,
    payloadChecksum: checksum32(payload, 0, payload.length),
  });
  return Buffer.concat([header, payload]);
}

function readU64(buf: Buffer, at: number, field: string): number {
  const n = buf.readBigUInt64LE(at);
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new SnapshotCorruptError(`header ${field} ${n} is out of range`);
  return Number(n);
}

/** Checks everything that does not need the payload: magic, header checksum, version, size.
 *  `file` may be just the first bytes when `fileBytes` gives the whole file's size. */
export function decodeHeader(file: Buffer, fileBytes = file.length): SnapshotHeader {
  if (fileBytes < snapshotHeaderBytes || file.length < snapshotHeaderBytes) {
    throw new SnapshotCorruptError(`file is ${fileBytes} bytes, shorter than the ${snapshotHeaderBytes}-byte header`);
  }
  if (!file.subarray(0, 8).equals(snapshotMagic)) {
    throw new SnapshotCorruptError(`bad magic ${file.subarray(0, 8).toString('hex')} (expected ${snapshotMagic.toString('hex')})`);
  }
  const stored = file.readUInt32LE(44);
  const actual = checksum32(file, 0, 44);
  if (stored !== actual) throw new SnapshotCorruptError(`header checksum mismatch (stored ${stored}, computed ${actual})`);
  const formatVersion = file.readUInt32LE(8);
  if (formatVersion !== snapshotFormatVersion && formatVersion !== snapshotFormatVersionBlocks) {
    throw new SnapshotCorruptError(
      `format version ${formatVersion} is not supported (expected ${snapshotFormatVersion} or ${snapshotFormatVersionBlocks})`,
    );
  }
  const header: SnapshotHeader = {
    formatVersion,
    schemaVersion: file.readUInt32LE(12),
    offset: readU64(file, 16, 'offset'),
    timestamp: readU64(file, 24, 'timestamp'),
    payloadBytes: readU64(file, 32, 'payloadBytes'),
    payloadChecksum: file.readUInt32LE(40),
  };
  if (fileBytes !== snapshotHeaderBytes + header.payloadBytes) {
    throw new SnapshotCorruptError(
      `file is ${fileBytes} bytes but the header announces ${snapshotHeaderBytes} + ${header.payloadBytes}`,
    );
  }
  return header;
}

/** Refuses a file whose payload schema this build does not read (a newer build's, or unknown).
 *  Its checksums may all hold, yet no load here can use it: verification must say so, or pruning
 *  would keep it in place of a readable fallback and retention would cut the log behind it. */
export function checkSchemaReadable(header: SnapshotHeader): void {
  const read = header.formatVersion === snapshotFormatVersionBlocks ? rowsSchemaVersionsRead : imageSchemaVersionsRead;
  if (!read.includes(header.schemaVersion)) {
    throw new SnapshotCorruptError(
      `format ${header.formatVersion} file with schema version ${header.schemaVersion} (this build reads ${read.join(', ')})`,
    );
  }
}

/** Header and payload checks of a format-1 file without decoding. */
export function verifySnapshot(file: Buffer): SnapshotHeader {
  const header = decodeHeader(file);
  if (header.formatVersion !== snapshotFormatVersion) throw new Error(`verifySnapshot: format ${header.formatVersion} file`);
  const stored = file.readUInt32LE(40);
  const actual = checksum32(file, snapshotHeaderBytes, file.length);
  if (stored !== actual) throw new SnapshotCorruptError(`payload checksum mismatch (stored ${stored}, computed ${actual})`);
  return header;
}

export function decodeSnapshot(file: Buffer): { header: SnapshotHeader; image: StateImage } {
  const header = verifySnapshot(file);
  let image: StateImage;
  try {
    image = decodeImage(file.subarray(snapshotHeaderBytes), header.schemaVersion);
  } catch (err) {
    throw new SnapshotCorruptError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  if (image.offset !== header.offset || image.timestamp !== header.timestamp) {
    throw new SnapshotCorruptError(
      `payload covers offset ${image.offset} @${image.timestamp} but the header says ${header.offset} @${header.timestamp}`,
    );
  }
  return { header, image };
}
