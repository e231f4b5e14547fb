// (The file's entries are copied as a Uint32Array's bytes on little-endian hosts; the second test
// pins that they are the u32 little-endian values the format says, and that they read back.)
//
// ActiveJobIndex.seal sorts its (hash, relOffset) pairs with two counting-sort passes instead of a
// comparator sort (job-index.ts); this pins that the result is the comparator's order exactly,
// for hashes that share their low or high 16 bits, equal hashes over many records, records that
// mention several jobs, and an empty index.

import t from 'tap';
import { ActiveJobIndex, decodeJobIndex, encodeJobIndex, jobIdHash, jobIndexHeaderBytes, sealedCandidates } from '../../src/history/job-index.js';
import { initChecksum } from '../../src/log/checksum.js';
import type { LogRecord } from '../../src/record/types.js';
import { mulberry32 } from '../fixtures/random.js';

function removedRecord(offset: number, ids: string[]): LogRecord {
  return {
    offset,
    timestamp: 0,
    actor: null,
    body: { type: 'removed', queue: 'q', jobs: ids.map((jobId) => ({ jobId, prev: 1 })), reason: 1 },
  } as unknown as LogRecord;
}

t.test('a-sealed-job-index-is-sorted-by-hash-then-offset-as-a-comparator-sort-would', async (t) => {
  await initChecksum();
  const base = 1_000;
  const index = new ActiveJobIndex(base);
  const random = mulberry32(11);
  const rand = (n: number): number => Math.floor(random() * n);
  // 20,000 ids: hundreds of pairs of them share the high 16 bits of their hash, so the pass over
  // the low bits must have ordered them.
  const ids = Array.from({ length: 20_000 }, (_, i) => `job-${i}`);
  const pairs: Array<[number, number]> = [];
  for (let rel = 0; rel < 12_000; rel++) {
    // A few ids appear in many records; some records list several ids (a drain's `removed`).
    const some = Array.from({ length: 1 + rand(4) }, () => ids[rand(rel % 10 === 0 ? 5 : ids.length)] as string);
    index.add(removedRecord(base + rel, some));
    for (const id of some) pairs.push([jobIdHash(id), rel]);
  }
  pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const sealed = index.seal({ baseOffset: base, recordCount: 12_000, segmentBytes: 1 });
  t.equal(sealed.entries.length, 2 * pairs.length);
  const same = pairs.every(([hash, rel], i) => sealed.entries[2 * i] === hash && sealed.entries[2 * i + 1] === rel);
  t.ok(same, 'every pair in the place a comparator sort gives it');
  for (const id of ids.slice(0, 20)) t.same(sealedCandidates(sealed, id), index.candidates(id), `candidates of ${id}`);
  t.same(new ActiveJobIndex(5).seal({ baseOffset: 5, recordCount: 0, segmentBytes: 0 }).entries, new Uint32Array(0), 'empty index');
});

t.test('a-job-index-file-holds-its-entries-as-u32-little-endian-and-reads-back', async (t) => {
  await initChecksum();
  const random = mulberry32(5);
  const entries = new Uint32Array(2 * 5_000).map(() => Math.floor(random() * 2 ** 32));
  // A view into a larger buffer, as a subarray would be.
  const backing = new Uint32Array(entries.length + 3);
  backing.set(entries, 3);
  const index = { baseOffset: 2 ** 40 + 7, recordCount: 5_000, segmentBytes: 123_456, entries: backing.subarray(3) };
  const buf = encodeJobIndex(index);
  let same = true;
  for (let i = 0; i < entries.length; i++) if (buf.readUInt32LE(jobIndexHeaderBytes + 4 * i) !== entries[i]) same = false;
  t.ok(same, 'entry i at header + 4i, little-endian');
  const back = decodeJobIndex(buf, index);
  t.same(typeof back === 'string' ? back : [...back.entries], [...entries], 'decoded entries equal the encoded ones');
  const copy = Buffer.from(buf);
  copy[jobIndexHeaderBytes + 5] = (copy[jobIndexHeaderBytes + 5] as number) ^ 1;
  t.equal(decodeJobIndex(copy, index), 'checksum mismatch', 'the checksum still covers the entries');
});
