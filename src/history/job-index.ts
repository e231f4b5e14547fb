// The per-job index of one segment: which records mention a job, found by hashing its id.
// Derived data, like the offset indexes (Kafka's model): rebuilt from the segment whenever it is
// missing, damaged or does not match the segment; never trusted without its checksum.
//
// File `<base>.jobindex` beside a sealed segment `<base>.log`. All integers little-endian.
//
//   0        8         12            20             24              28            32
//   +--------+---------+-------------+--------------+---------------+-------------+
//   | magic  | version | base offset | record count | segment bytes | entry count |
//   | 8 B    | u32     | u64         | u32          | u32           | u32 (= n)   |
//   +--------+---------+-------------+--------------+---------------+-------------+
//   | n entries of 8 B: hash u32 | relative offset u32, sorted by (hash, relative offset) |
//   +------------------------------------------------------------------------------------+
//   | checksum u32 = xxh32(every byte before it, checksumSeed)                            |
//   +------------------------------------------------------------------------------------+
//
// magic = "TAPEQJIX". hash = checksum32(utf-8 bytes of the job id): equal hashes are only
// candidates; readers keep a record only when jobIdsOf(body) contains the id, so collisions cost
// a read, never a wrong answer. A record that mentions k jobs has k entries. Base offset, record
// count and segment bytes must equal the segment's, or the file is stale and rebuilt.
//
// The active segment's index is an ActiveJobIndex: append-only typed arrays in file order,
// searched linearly (bounded by the segment size). All functions here are synchronous and pure.

import { endianness } from 'node:os';
import { checksum32 } from '../log/checksum.js';
import { readU32 } from '../log/framing.js';
import { jobIdsOf, type LogRecord } from '../record/types.js';

export const jobIndexMagic = 'TAPEQJIX';
export const jobIndexVersion = 1;
export const jobIndexHeaderBytes = 32;
export const jobIndexEntryBytes = 8;
export const jobIndexSuffix = '.jobindex';

/** Which segment an index describes; a file for any other segment is stale. */
export interface SegmentIdentity {
  baseOffset: number;
  recordCount: number;
  segmentBytes: number;
}

/** A sealed segment's index: `entries` holds (hash, relOffset) pairs sorted by hash, then offset. */
export interface SealedJobIndex extends SegmentIdentity {
  entries: Uint32Array;
}

const encoder = new TextEncoder();
/** Reused for every id: encodeInto a scratch buffer costs a third of encode()'s allocation. A
 *  UTF-16 unit is at most 3 UTF-8 bytes; a longer id than the scratch holds falls back. */
const idScratch = new Uint8Array(3 * 1024);

export function jobIdHash(jobId: string): number {
  const { read, written } = encoder.encodeInto(jobId, idScratch);
  if (read === jobId.length) return checksum32(idScratch, 0, written);
  const bytes = encoder.encode(jobId);
  return checksum32(bytes, 0, bytes.length);
}

export function jobIndexPath(segmentPath: string): string {
  return segmentPath.replace(/\.log$/, jobIndexSuffix);
}

/** Append-only (hash, relOffset) pairs for the segment being written. */
export class ActiveJobIndex {
  private pairs = new Uint32Array(2048);
  private used = 0;

  constructor(readonly baseOffset: number) {}

  get entryCount(): number {
    return this.used / 2;
  }

  /** Called for every record of the segment, in offset order. */
  add(record: LogRecord): void {
    const rel = record.offset - this.baseOffset;
    if (rel < 0 || rel >= 2 ** 32) throw new RangeError(`record ${record.offset} outside segment ${this.baseOffset}`);
    for (const id of jobIdsOf(record.body)) {
      if (this.used + 2 > this.pairs.length) {
        const grown = new Uint32Array(this.pairs.length * 2);
        grown.set(this.pairs);
        this.pairs = grown;
      }
      this.pairs[this.used++] = jobIdHash(id);
      this.pairs[this.used++] = rel;
    }
  }

  /** Absolute offsets whose records may mention the job, ascending. */
  candidates(jobId: string): number[] {
    const hash = jobIdHash(jobId);
    const out: number[] = [];
    let last = -1;
    for (let i = 0; i < this.used; i += 2) {
      if (this.pairs[i] !== hash) continue;
      const offset = this.baseOffset + (this.pairs[i + 1] as number);
      if (offset !== last) out.push(offset);
      last = offset;
    }
    return out;
  }

  /** The sealed form: same pairs, sorted by (hash, relOffset). The pairs were added in offset
   *  order, so a stable sort by hash alone gives that order: two counting-sort passes of 16 bits
   *  over typed arrays, O(n). (A comparator sort of an index array took some 500 ms of the main
   *  thread for the 1.5 million entries a segment of `removed` records holds.) */
  seal(identity: SegmentIdentity): SealedJobIndex {
    if (identity.baseOffset !== this.baseOffset) throw new Error('seal: wrong segment');
    const n = this.used / 2;
    const low = new Uint32Array(2 * n);
    countingPass(this.pairs, low, n, 0);
    const entries = new Uint32Array(2 * n);
    countingPass(low, entries, n, 16);
    return { ...identity, entries };
  }
}

/** Copies the n (hash, relOffset) pairs of `from` into `to`, stably ordered by the 16 bits of the
 *  hash from bit `shift` on. */
function countingPass(from: Uint32Array, to: Uint32Array, n: number, shift: number): void {
  const starts = new Uint32Array(65_537);
  for (let i = 0; i < n; i++) (starts[(((from[2 * i] as number) >>> shift) & 0xffff) + 1] as number)++;
  for (let b = 1; b <= 65_536; b++) starts[b] = (starts[b] as number) + (starts[b - 1] as number);
  for (let i = 0; i < n; i++) {
    const hash = from[2 * i] as number;
    const at = starts[(hash >>> shift) & 0xffff] as number;
    starts[(hash >>> shift) & 0xffff] = at + 1;
    to[2 * at] = hash;
    to[2 * at + 1] = from[2 * i + 1] as number;
  }
}

/** Absolute offsets in a sealed index whose records may mention the job, ascending. */
export function sealedCandidates(index: SealedJobIndex, jobId: string): number[] {
  const hash = jobIdHash(jobId);
  const e = index.entries;
  let lo = 0;
  let hi = e.length / 2;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((e[2 * mid] as number) < hash) lo = mid + 1;
    else hi = mid;
  }
  const out: number[] = [];
  let last = -1;
  for (let i = lo; i < e.length / 2 && e[2 * i] === hash; i++) {
    const offset = index.baseOffset + (e[2 * i + 1] as number);
    if (offset !== last) out.push(offset);
    last = offset;
  }
  return out;
}

/** Entries are u32 little-endian in the file: on a little-endian host (every one Node supports
 *  today but s390x) a Uint32Array's bytes are the file's, copied in one go instead of one
 *  writeUInt32LE / readU32 per entry (3 million for a segment of big drains: 60-90 ms to
 *  encode, 40 to decode, on the main thread). */
const hostIsLittleEndian = endianness() === 'LE';

export function encodeJobIndex(index: SealedJobIndex): Buffer {
  const n = index.entries.length / 2;
  const buf = Buffer.alloc(jobIndexHeaderBytes + n * jobIndexEntryBytes + 4);
  buf.write(jobIndexMagic, 0, 'latin1');
  buf.writeUInt32LE(jobIndexVersion, 8);
  buf.writeBigUInt64LE(BigInt(index.baseOffset), 12);
  buf.writeUInt32LE(index.recordCount, 20);
  buf.writeUInt32LE(index.segmentBytes, 24);
  buf.writeUInt32LE(n, 28);
  const e = index.entries;
  if (hostIsLittleEndian) Buffer.from(e.buffer, e.byteOffset, e.byteLength).copy(buf, jobIndexHeaderBytes);
  else for (let i = 0; i < e.length; i++) buf.writeUInt32LE(e[i] as number, jobIndexHeaderBytes + 4 * i);
  const end = buf.length - 4;
  buf.writeUInt32LE(checksum32(buf, 0, end), end);
  return buf;
}

/** Parses and checks a file against the segment it should describe; a string says what is wrong. */
export function decodeJobIndex(buf: Buffer, expected: SegmentIdentity): SealedJobIndex | string {
  if (buf.length < jobIndexHeaderBytes + 4) return `file is ${buf.length} bytes, shorter than a header`;
  if (buf.toString('latin1', 0, 8) !== jobIndexMagic) return 'bad magic';
  const end = buf.length - 4;
  if (checksum32(buf, 0, end) !== readU32(buf, end)) return 'checksum mismatch';
  const version = buf.readUInt32LE(8);
  if (version !== jobIndexVersion) return `unsupported version ${version}`;
  const n = buf.readUInt32LE(28);
  if (buf.length !== jobIndexHeaderBytes + n * jobIndexEntryBytes + 4) return `length does not match ${n} entries`;
  const identity: SegmentIdentity = {
    baseOffset: Number(buf.readBigUInt64LE(12)),
    recordCount: buf.readUInt32LE(20),
    segmentBytes: buf.readUInt32LE(24),
  };
  for (const key of ['baseOffset', 'recordCount', 'segmentBytes'] as const) {
    if (identity[key] !== expected[key]) return `stale: ${key} is ${identity[key]}, the segment's is ${expected[key]}`;
  }
  const entries = new Uint32Array(2 * n);
  if (hostIsLittleEndian) buf.copy(Buffer.from(entries.buffer), 0, jobIndexHeaderBytes, jobIndexHeaderBytes + entries.byteLength);
  else for (let i = 0; i < entries.length; i++) entries[i] = readU32(buf, jobIndexHeaderBytes + 4 * i);
  return { ...identity, entries };
}
