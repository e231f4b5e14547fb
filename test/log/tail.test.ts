import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogRecord } from '../../src/record/types.js';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { drafts, openLog, range, tempDir } from './helpers.js';

/** Offsets of the next batches until at least n records came (a batch is never split). */
async function take(it: AsyncIterator<LogRecord[]>, n: number): Promise<number[]> {
  const out: number[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done === true) break;
    t.ok(r.value.length > 0, 'a batch is never empty');
    for (const record of r.value) out.push(record.offset);
  }
  return out;
}

t.test('tail-yields-history-then-wakes-on-new-appends', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192, ringRecords: 50 });
  await log.append(drafts(0, 300)).durable;
  const tail = log.tail(10);
  t.strictSame(await take(tail, 290), range(10, 300), 'old records (from disk: older than the ring)');
  const pending = take(tail, 5);
  await sleep(30);
  log.append(drafts(300, 5));
  t.strictSame(await pending, range(300, 305), 'woken by the append');
  tail.close();
  t.equal((await tail.next()).done, true, 'closed');
  await log.close();
});

t.test('tail-close-ends-a-waiting-reader', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir });
  const tail = log.tail(0);
  const waiting = tail.next();
  await sleep(20);
  tail.close();
  t.equal((await waiting).done, true);
  await log.close();
});

t.test('tail-ends-when-the-log-closes', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir });
  await log.append(drafts(0, 2)).durable;
  const seen: number[] = [];
  const done = (async () => {
    for await (const batch of log.tail(0)) for (const r of batch) seen.push(r.offset);
  })();
  await sleep(20);
  await log.close();
  await done;
  t.strictSame(seen, [0, 1]);
});

t.test('tail-is-bounded-a-slow-consumer-reads-older-records-from-disk', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, ringRecords: 100 });
  const tail = log.tail(0);
  for (let i = 0; i < 5000; i += 500) await log.append(drafts(i, 500)).durable;
  // The consumer was idle during 5000 appends; the ring only holds 100, the rest come from disk.
  t.strictSame(await take(tail, 5000), range(0, 5000));
  tail.close();
  await log.close();
});

t.test('large-records-leave-the-ring-by-bytes-and-are-read-back-from-disk', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, ringBytes: 256 * 1024 });
  const big = drafts(0, 20);
  for (const d of big) if (d.body.type === 'pushed') d.body.job.data = JSON.stringify('x'.repeat(64 * 1024));
  await log.append(big).durable;
  const ring = log.tailRing;
  t.ok(ring.records >= 1 && ring.records <= 4, `the ring holds ${ring.records} of the 64 KiB records`);
  t.ok(ring.bytes <= 256 * 1024, `${ring.bytes} encoded bytes held`);
  t.equal(ring.fromOffset, 20 - ring.records, 'the newest ones');
  const read: string[] = [];
  for await (const r of log.read(0)) if (r.body.type === 'pushed') read.push(r.body.job.data);
  t.equal(read.length, 20, 'the evicted ones come from the segment');
  t.ok(read.every((d) => d.length === 64 * 1024 + 2), 'whole');
  await log.append(drafts(20, 100)).durable;
  t.ok(log.tailRing.records > 4, 'small records fill the ring again');
  await log.close();
});

t.test('the-ring-counts-each-record-by-its-frame-on-disk-under-either-sync-policy-across-rolls', async (t) => {
  for (const sync of ['always', 'interval'] as const) {
    const dir = await tempDir(t, `ring-${sync}`);
    const { log } = await openLog({ dir, sync, segmentBytes: 8192, ringBytes: 2 ** 30 });
    for (let i = 0; i < 600; i += 50) await log.append(drafts(i, 50), { durable: true }).durable;
    t.ok(log.segments().length > 3, `${sync}: ${log.segments().length} segments`);
    const onDisk = log.segments().reduce((sum, s) => sum + s.bytes - segmentHeaderBytes, 0);
    t.equal(log.tailRing.records, 600, `${sync}: every record is held`);
    t.equal(log.tailRing.bytes, onDisk, `${sync}: the ring's bytes are the frames' bytes in the segments`);
    await log.close();
  }
});
