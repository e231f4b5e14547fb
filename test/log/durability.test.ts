import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupCommitSyncsMax, groupCommitSyncWriteBytesMax } from '../../src/constants.js';
import { drafts, openLog, range, readAll, tempDir } from './helpers.js';

function errno(code: string): Error {
  return Object.assign(new Error(`injected ${code}`), { code });
}

t.test('durable-append-resolves-only-after-an-fdatasync-that-started-after-its-write', async (t) => {
  const dir = await tempDir(t);
  const events: string[] = [];
  const holds: (() => void)[] = [];
  const { log } = await openLog({
    dir,
    fsHooks: {
      write: (_f, _bytes, real) => {
        events.push('write');
        return real();
      },
      datasync: async (_f, real) => {
        const n = holds.length + 1;
        events.push(`sync ${n} start`);
        await new Promise<void>((resolve) => holds.push(resolve));
        await real();
        events.push(`sync ${n} done`);
      },
    },
  });
  const ack = (name: string, p: Promise<void>): Promise<void> => p.then(() => void events.push(`ack ${name}`));
  const syncsStarted = async (n: number): Promise<void> => {
    while (holds.length < n) await sleep(1);
  };
  const a = ack('a', log.append(drafts(0, 3)).durable);
  const b = ack('b', log.append(drafts(3, 2)).durable);
  await syncsStarted(1);
  t.equal(events.filter((e) => e === 'write').length, 1, 'same-tick appends share one write');
  t.equal(log.durableOffset, 0, 'not durable while the sync is in flight');

  const c = ack('c', log.append(drafts(5, 4)).durable);
  await syncsStarted(2);
  t.strictSame(events, ['write', 'sync 1 start', 'write', 'sync 2 start'], 'c is written and synced without waiting for sync 1');
  const d = ack('d', log.append(drafts(9, 1)).durable);
  await sleep(20);
  t.equal(events.filter((e) => e === 'write').length, 2, `d waits: ${groupCommitSyncsMax} syncs in flight at most`);
  t.notOk(events.some((e) => e.startsWith('ack')), 'no ack before a sync completes');

  (holds[0] as () => void)();
  await Promise.all([a, b]);
  t.equal(log.durableOffset, 5, 'sync 1 covers a and b only');
  await syncsStarted(3);
  t.notOk(events.includes('ack c'), 'c waits for a sync that started after its write');
  (holds[2] as () => void)();
  await Promise.all([c, d]);
  t.equal(log.durableOffset, 10, 'sync 3 finishing first covers c too: it started after c was written');
  (holds[1] as () => void)();
  await sleep(5);
  t.equal(log.durableOffset, 10, 'the late sync 2 moves nothing back');
  t.strictSame(events, [
    'write', 'sync 1 start', 'write', 'sync 2 start', 'sync 1 done', 'ack a', 'ack b',
    'write', 'sync 3 start', 'sync 3 done', 'ack c', 'ack d', 'sync 2 done',
  ]);
  await log.close();
});

t.test('failed-sync-rejects-every-pending-and-later-append-and-sets-failed', async (t) => {
  const dir = await tempDir(t);
  let fail = false;
  const { log } = await openLog({
    dir,
    fsHooks: {
      datasync: async (_f, real) => {
        if (fail) throw errno('EIO');
        await real();
      },
    },
  });
  await log.append(drafts(0, 2)).durable;
  fail = true;
  const a = log.append(drafts(2, 2));
  const b = log.append(drafts(4, 2));
  await t.rejects(a.durable, { code: 'LOG_SYNC' });
  await t.rejects(b.durable, { code: 'LOG_SYNC' });
  t.equal(log.failed?.code, 'LOG_SYNC');
  t.equal(log.durableOffset, 2, 'never reported durable');
  fail = false;
  t.throws(() => log.append(drafts(6, 1)), { code: 'LOG_FAILED' }, 'later appends refused, no retry');
  await log.close();
});

t.test('full-disk-write-fails-with-LOG_NO_SPACE', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({
    dir,
    fsHooks: {
      write: () => {
        throw errno('ENOSPC');
      },
    },
  });
  await t.rejects(log.append(drafts(0, 1)).durable, { code: 'LOG_NO_SPACE' });
  t.equal(log.failed?.code, 'LOG_NO_SPACE');
  await log.close();
});

t.test('small-batches-are-written-synchronously-large-ones-through-the-pool-and-both-fail-with-LOG_NO_SPACE', async (t) => {
  const dir = await tempDir(t);
  const writes: string[] = [];
  let full = false;
  const { log } = await openLog({
    dir,
    fsHooks: {
      write: (_f, bytes, real) => {
        if (full) throw errno('ENOSPC');
        const pending = real();
        writes.push(`${bytes > groupCommitSyncWriteBytesMax ? 'large' : 'small'} ${pending === undefined ? 'sync' : 'async'}`);
        return pending;
      },
    },
  });
  await log.append(drafts(0, 10)).durable;
  await log.append(drafts(10, 5_000)).durable;
  t.strictSame(writes, ['small sync', 'large async'], 'one write each, by size');
  t.strictSame(await readAll(log), range(0, 5_010), 'both read back whole');
  full = true;
  await t.rejects(log.append(drafts(5_010, 5_000)).durable, { code: 'LOG_NO_SPACE' }, 'a large write fails like a small one');
  await log.close();
});

t.test('interval-mode-acks-after-write-and-durable-true-waits-for-the-sync', async (t) => {
  const dir = await tempDir(t);
  let syncs = 0;
  let syncedAt = -1;
  const { log } = await openLog({
    dir,
    sync: 'interval',
    syncIntervalMs: 30,
    fsHooks: {
      datasync: async (_f, real) => {
        await real();
        syncs++;
        syncedAt = Date.now();
      },
    },
  });
  await log.append(drafts(0, 5)).durable;
  t.equal(syncs, 0, 'acknowledged after write, before any sync');
  t.equal(log.durableOffset, 5);
  const d = log.append(drafts(5, 1), { durable: true });
  let acked = 0;
  await d.durable.then(() => (acked = Date.now()));
  t.ok(syncs >= 1, 'a sync happened');
  t.ok(acked >= syncedAt, 'durable:true acknowledged after the sync');
  const before = syncs;
  await sleep(100);
  t.equal(syncs, before, 'no sync when nothing was written');
  await log.close();
  t.strictSame(await readAll((await openLog({ dir })).log), range(0, 6));
});

t.test('close-flushes-pending-appends', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir });
  const a = log.append(drafts(0, 100));
  await log.close();
  await a.durable;
  const again = await openLog({ dir });
  t.equal(again.log.nextOffset, 100);
  await again.log.close();
});

t.test('onDurable-reports-each-group-commit', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir });
  const seen: number[] = [];
  const off = log.onDurable((d) => seen.push(d));
  await log.append(drafts(0, 3)).durable;
  await log.append(drafts(3, 2)).durable;
  off();
  await log.append(drafts(5, 1)).durable;
  t.strictSame(seen, [3, 5]);
  await log.close();
});
