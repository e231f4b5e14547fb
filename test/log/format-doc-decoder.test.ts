// proto/README.md is the on-disk format's contract. This test reads what the writer wrote with a
// decoder of its own, built from that document alone: its own xxh32 (not xxhash-wasm), its own
// varints, no src/log or src/record code. If the writer and the document drift apart, this fails.

import t, { type Test } from 'tap';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { drafts, openLog, tempDir } from './helpers.js';

const seed = 0x74617071;
const headerBytes = 40;
const recordBytesMax = 4 * 1024 * 1024;
const indexIntervalBytes = 4 * 1024;

// xxh32 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md), written out plainly.
const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;
const rotl = (x: number, r: number): number => ((x << r) | (x >>> (32 - r))) >>> 0;
const mul = (a: number, b: number): number => Math.imul(a, b) >>> 0;
const round = (acc: number, lane: number): number => mul(rotl((acc + mul(lane, P2)) >>> 0, 13), P1);

function xxh32(buf: Buffer, s: number): number {
  let p = 0;
  const len = buf.length;
  let h: number;
  if (len >= 16) {
    let v1 = (s + P1 + P2) >>> 0;
    let v2 = (s + P2) >>> 0;
    let v3 = s >>> 0;
    let v4 = (s - P1) >>> 0;
    for (; p + 16 <= len; p += 16) {
      v1 = round(v1, buf.readUInt32LE(p));
      v2 = round(v2, buf.readUInt32LE(p + 4));
      v3 = round(v3, buf.readUInt32LE(p + 8));
      v4 = round(v4, buf.readUInt32LE(p + 12));
    }
    h = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) >>> 0;
  } else {
    h = (s + P5) >>> 0;
  }
  h = (h + len) >>> 0;
  for (; p + 4 <= len; p += 4) h = mul(rotl((h + mul(buf.readUInt32LE(p), P3)) >>> 0, 17), P4);
  for (; p < len; p++) h = mul(rotl((h + mul(buf[p] as number, P5)) >>> 0, 11), P1);
  h = mul(h ^ (h >>> 15), P2);
  h = mul(h ^ (h >>> 13), P3);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Fields 1 (offset) and 2 (timestamp) of a Record, read the protobuf way (absent = 0). */
function offsetAndTimestamp(payload: Buffer): { offset: number; timestamp: number } {
  const out = { offset: 0, timestamp: 0 };
  let p = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      const b = payload[p++] as number;
      value += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return value;
    }
  };
  while (p < payload.length) {
    const key = varint();
    if (key === 0x08) out.offset = varint();
    else if (key === 0x10) out.timestamp = varint();
    else break; // fields 1 and 2 come first
  }
  return out;
}

interface Decoded {
  logIds: Set<string>;
  records: Array<{ offset: number; timestamp: number }>;
}

function decodeSegment(t: Test, name: string, bytes: Buffer, expectedBase: number, out: Decoded): { next: number; index: Buffer; timeIndex: Buffer } {
  t.match(name, /^\d{20}\.log$/, `${name}: 20-digit base offset name`);
  const base = Number(name.slice(0, 20));
  t.equal(base, expectedBase, `${name}: base offset continues the segment before`);
  t.equal(bytes.toString('latin1', 0, 8), 'TAPEQLOG', `${name}: magic`);
  t.equal(bytes.readUInt32LE(8), 1, `${name}: version 1`);
  out.logIds.add(bytes.toString('hex', 12, 28));
  t.equal(Number(bytes.readBigUInt64LE(28)), base, `${name}: header base offset = name`);
  t.equal(bytes.readUInt32LE(36), xxh32(bytes.subarray(0, 36), seed), `${name}: header checksum = xxh32(bytes 0..36, seed)`);
  const index: Buffer[] = [];
  const timeIndex: Buffer[] = [];
  let sinceEntry = Number.POSITIVE_INFINITY;
  let maxTs = Number.NEGATIVE_INFINITY;
  let next = base;
  let p = headerBytes;
  const fail = (what: string) => {
    t.fail(what);
    return { next, index: Buffer.alloc(0), timeIndex: Buffer.alloc(0) };
  };
  while (p < bytes.length) {
    if (p + 8 > bytes.length) return fail(`${name}@${p}: frame header cut by the end of the file`);
    const length = bytes.readUInt32LE(p);
    if (length < 1 || length > recordBytesMax) return fail(`${name}@${p}: length ${length} outside 1..4 MiB`);
    const payload = bytes.subarray(p + 8, p + 8 + length);
    if (payload.length !== length) return fail(`${name}@${p}: payload cut by the end of the file`);
    if (bytes.readUInt32LE(p + 4) !== xxh32(payload, (seed ^ length) >>> 0)) t.fail(`${name}@${p}: checksum = xxh32(payload, seed ^ length)`);
    const record = offsetAndTimestamp(payload);
    if (record.offset !== next) t.fail(`${name}@${p}: record offset ${record.offset}, expected ${next}`);
    out.records.push(record);
    if (record.timestamp > maxTs) maxTs = record.timestamp;
    if (sinceEntry >= indexIntervalBytes) {
      const entry = Buffer.alloc(8);
      entry.writeUInt32LE(next - base, 0);
      entry.writeUInt32LE(p, 4);
      index.push(entry);
      const timeEntry = Buffer.alloc(12);
      timeEntry.writeBigUInt64LE(BigInt(maxTs), 0);
      timeEntry.writeUInt32LE(next - base, 8);
      timeIndex.push(timeEntry);
      sinceEntry = 0;
    }
    sinceEntry += 8 + length;
    next++;
    p += 8 + length;
  }
  return { next, index: Buffer.concat(index), timeIndex: Buffer.concat(timeIndex) };
}

t.test('an-independent-decoder-reads-every-segment-frame-and-index-file-as-the-format-doc-says', async (t) => {
  const dir = await tempDir(t);
  const segmentBytes = 16 * 1024;
  const { log } = await openLog({ dir, segmentBytes });
  const count = 1_000;
  for (let i = 0; i < count; i += 100) await log.append(drafts(i, 100)).durable;
  await log.close(); // cuts the active segment's preallocated zeros (the doc: closed logs end at their last record)
  const names = (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
  t.ok(names.length >= 3, `${names.length} segments`);
  const out: Decoded = { logIds: new Set(), records: [] };
  let expectedBase = 0;
  for (const [i, name] of names.entries()) {
    const bytes = await readFile(join(dir, name));
    const sealed = i < names.length - 1;
    if (sealed) t.ok(bytes.length <= segmentBytes, `${name}: a sealed segment stays within segmentBytes`);
    const { next, index, timeIndex } = decodeSegment(t, name, bytes, expectedBase, out);
    if (sealed) {
      t.strictSame(await readFile(join(dir, name.replace(/\.log$/, '.index'))), index, `${name}: .index entries as documented`);
      t.strictSame(await readFile(join(dir, name.replace(/\.log$/, '.timeindex'))), timeIndex, `${name}: .timeindex entries as documented`);
    }
    expectedBase = next;
  }
  t.equal(out.logIds.size, 1, 'every segment carries the same log id');
  t.equal(out.records.length, count, 'every record decoded');
  t.strictSame(
    out.records.map((r) => r.offset),
    Array.from({ length: count }, (_, i) => i),
    'offsets 0..n-1, gap-free',
  );
  t.strictSame(out.records.map((r) => r.timestamp), drafts(0, count).map((d) => d.timestamp), 'timestamps as appended');
});

t.test('the-worked-examples-of-the-format-doc-check-out-with-an-independent-xxh32', async (t) => {
  const frame = Buffer.from('140000006d6ab6ea08051080d095ffbc31ba01080a06656d61696c73', 'hex');
  const length = frame.readUInt32LE(0);
  t.equal(length, 20);
  t.equal(frame.readUInt32LE(4), xxh32(frame.subarray(8), (seed ^ length) >>> 0), 'frame checksum');
  t.strictSame(offsetAndTimestamp(frame.subarray(8)), { offset: 5, timestamp: 1_700_000_000_000 });
  const header = Buffer.from('54415045514c4f4701000000' + '0190f5c28a4b7c3d9e1fa2b3c4d5e6f7' + '0000000000000000' + '2b30a06e', 'hex');
  t.equal(header.length, headerBytes);
  t.equal(header.readUInt32LE(36), xxh32(header.subarray(0, 36), seed), 'header checksum');
});
