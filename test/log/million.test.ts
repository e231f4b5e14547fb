import t from 'tap';
import type { RecordDraft } from '../../src/record/types.js';
import { smallPushDraft } from '../fixtures/records.js';
import { openLog, tempDir } from './helpers.js';

t.test('one-million-records-written-reopened-and-read-back-in-order', { timeout: 60_000 }, async (t) => {
  const dir = await tempDir(t);
  const total = 1_000_000;
  const batch = 5_000;
  const started = Date.now();
  const { log } = await openLog({ dir, segmentBytes: 16 * 1024 * 1024 });
  const pending: Array<Promise<void>> = [];
  for (let i = 0; i < total; i += batch) {
    const drafts: RecordDraft[] = new Array(batch);
    for (let j = 0; j < batch; j++) drafts[j] = smallPushDraft(i + j);
    pending.push(log.append(drafts).durable);
    if (pending.length >= 4) await pending.shift();
  }
  await Promise.all(pending);
  await log.close();
  const written = Date.now();
  const again = await openLog({ dir, segmentBytes: 16 * 1024 * 1024 });
  t.equal(again.log.nextOffset, total);
  t.ok(again.log.segments().length > 1, `${again.log.segments().length} segments`);
  let expected = 0;
  let bad = 0;
  for await (const records of again.log.readBatches(0)) {
    for (const r of records) {
      if (r.offset !== expected || r.body.type !== 'pushed' || r.body.job.id !== `job-${String(expected).padStart(10, '0')}`) bad++;
      expected++;
    }
  }
  t.equal(expected, total, 'all read back');
  t.equal(bad, 0, 'in order, contents intact');
  await again.log.close();
  t.comment(`write ${written - started} ms, reopen + read ${Date.now() - written} ms`);
});
