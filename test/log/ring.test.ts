import t from 'tap';
import { RecordRing } from '../../src/log/ring.js';

const records = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ offset: from + i }));
const offsets = (rs: Array<{ offset: number }> | null) => rs?.map((r) => r.offset) ?? null;

t.test('ring-keeps-the-newest-records-up-to-its-capacity', async (t) => {
  const ring = new RecordRing(4, 1_000, 10);
  ring.push(records(10, 3), [1, 1, 1]);
  t.strictSame(offsets(ring.slice(10, 13)), [10, 11, 12]);
  ring.push(records(13, 3), [1, 1, 1]);
  t.equal(ring.startOffset, 12, 'the two oldest were evicted');
  t.equal(ring.count, 4);
  t.equal(ring.bytes, 4, 'their bytes went with them');
  t.equal(ring.slice(11, 16), null, 'a range reaching past the oldest held is not served');
  t.strictSame(offsets(ring.slice(12, 16)), [12, 13, 14, 15]);
  t.strictSame(offsets(ring.slice(16, 16)), [], 'an empty range at the end');
});

t.test('ring-evicts-by-bytes-before-its-capacity-and-keeps-the-newest-however-large', async (t) => {
  const ring = new RecordRing(100, 1_000, 0);
  ring.push(records(0, 4), [300, 300, 300, 100]);
  t.equal(ring.bytes, 1_000, 'exactly the budget is kept');
  t.equal(ring.count, 4);
  ring.push(records(4, 1), [250]);
  t.equal(ring.startOffset, 1, 'the oldest went to make room');
  t.equal(ring.bytes, 950);
  ring.push(records(5, 1), [5_000]);
  t.equal(ring.count, 1, 'a record above the budget evicts everything else');
  t.equal(ring.startOffset, 5, '…but stays itself: the newest record is always held');
  t.equal(ring.bytes, 5_000);
  ring.push(records(6, 2), [10, 10]);
  t.strictSame(offsets(ring.slice(6, 8)), [6, 7], 'then the large one goes first');
  t.equal(ring.bytes, 20);
});

t.test('ring-refuses-records-that-do-not-continue-it', async (t) => {
  const ring = new RecordRing(8, 1_000, 5);
  t.throws(() => ring.push(records(6, 1), [1]), /offset 6 after 5/);
  t.throws(() => ring.push(records(5, 2), [1]), /2 records, 1 sizes/);
  t.throws(() => new RecordRing(0, 1_000, 0), RangeError);
  t.throws(() => new RecordRing(8, 0, 0), RangeError);
  t.equal(ring.count, 0, 'nothing was added');
});
