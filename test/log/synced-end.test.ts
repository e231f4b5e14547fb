// Log.syncedEnd() (group-commit.ts): the active segment and where its bytes covered by a completed
// sync end, which the scrub reads up to (src/snapshot/scrub.ts). It moves when a sync returns, to
// what was written when that sync started; not on a write; to the new segment's header on a roll;
// and a log opened again starts it at the end its scan verified.

import t from 'tap';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { drafts, openLog, tempDir } from './helpers.js';

t.test('synced-end-moves-when-a-sync-returns-not-when-its-write-lands', async (t) => {
  const dir = await tempDir(t);
  let release: (() => void) | null = null;
  let held = false;
  const { log } = await openLog({
    dir,
    fsHooks: {
      datasync: async (_f, real) => {
        if (held) await new Promise<void>((resolve) => (release = resolve));
        await real();
      },
    },
  });
  t.teardown(() => log.close());
  t.same(log.syncedEnd(), { baseOffset: 0, bytes: segmentHeaderBytes }, 'a fresh log: its header');
  await log.append(drafts(0, 3)).durable;
  const first = log.segments()[0]?.bytes ?? 0;
  t.same(log.syncedEnd(), { baseOffset: 0, bytes: first });
  held = true;
  const a = log.append(drafts(3, 3));
  for (const deadline = Date.now() + 5_000; release === null; await new Promise((resolve) => setTimeout(resolve, 5))) {
    if (Date.now() > deadline) throw new Error('no sync started within 5 s');
  }
  t.ok((log.segments()[0]?.bytes ?? 0) > first, 'written');
  t.same(log.syncedEnd(), { baseOffset: 0, bytes: first }, 'while its sync is under way, the end stays');
  held = false;
  (release as unknown as () => void)();
  await a.durable;
  t.same(log.syncedEnd(), { baseOffset: 0, bytes: log.segments()[0]?.bytes }, 'the sync returned: the end moves to what it covered');
});

t.test('synced-end-under-interval-sync-stays-at-the-last-sync-while-writes-are-acknowledged', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, sync: 'interval', syncIntervalMs: 60_000 });
  t.teardown(() => log.close());
  await log.append(drafts(0, 5)).durable;
  t.ok((log.segments()[0]?.bytes ?? 0) > segmentHeaderBytes, 'written and acknowledged');
  t.same(log.syncedEnd(), { baseOffset: 0, bytes: segmentHeaderBytes }, 'not synced: the end is still the header');
});

t.test('synced-end-after-a-roll-is-the-new-segment-and-at-open-the-verified-end', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 4096 });
  for (let i = 0; log.segments().length < 3; i += 10) {
    if (i > 5_000) throw new Error('no roll after 5,000 records');
    await log.append(drafts(i, 10)).durable;
  }
  const active = log.segments().at(-1);
  t.same(log.syncedEnd(), { baseOffset: active?.baseOffset, bytes: active?.bytes }, 'the active segment, up to its last record');
  await log.close();
  const again = await openLog({ dir, segmentBytes: 4096 });
  t.teardown(() => again.log.close());
  const reopened = again.log.segments().at(-1);
  t.same(again.log.syncedEnd(), { baseOffset: reopened?.baseOffset, bytes: reopened?.bytes }, 'opened again: the end its scan verified');
  t.equal(reopened?.bytes, active?.bytes);
  const readOnly = await openLog({ dir, readOnly: true });
  t.teardown(() => readOnly.log.close());
  t.equal(readOnly.log.syncedEnd(), null, 'a read-only log has none');
});
