import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { groupCommitSyncWriteBytesMax } from '../../src/constants.js';
import { drafts, openLog, range, readAll, tempDir } from './helpers.js';

function errno(code: string): Error {
  return Object.assign(new Error(`injected ${code}`), { code });
}

t.test('durable-append-resolves-only-after-the-fdatasync-that-covers-it', async (t) => {
  const dir = await tempDir(t);
  const events: string[] = [];
  let release: (() => void) | null = null;
  const { log } = await openLog({
    dir,
    fsHooks: {
      write: (_f, bytes, real) => {
        events.push(`write ${bytes}`);
        return real();
      },
      datasync: async (_f, real) => {
        events.push('sync start');
        await new Promise<void>((resolve) => (release = resolve));
        await real();
        events.push('sync done');
      },
    },
  });
  const a = log.append(drafts(0, 3));
  a.durable.then(() => events.push('ack a'));
  const b = log.append(drafts(3, 2));
  b.durable.then(() => events.push('ack b'));
  t.equal(a.durable, b.durable, 'appends of one batch share one promise');
  while (release === null) await sleep(1);
  t.strictSame(events.filter((e) => e.startsWith('write')).length, 1, 'same-tick appends share one write');
  t.equal(log.durableOffset, 0, 'not durable while the sync is in flight');
  const c = log.append(drafts(5, 4));
  t.not(c.durable, a.durable, 'an append after its batch was taken gets a promise of its own');
  c.durable.then(() => events.push('ack c'));
  await sleep(20);
  t.notOk(events.includes('ack a'), 'no ack before the sync completes');
  const first = release as () => void;
  release = null;
  first();
  await a.durable;
  await b.durable;
  t.equal(log.durableOffset, 5);
  while (release === null) await sleep(1);
  t.notOk(events.includes('ack c'), 'c waits for its own sync');
  (release as () => void)();
  await c.durable;
  const order = events.map((e) => e.replace(/^write \d+$/, 'write'));
  t.strictSame(order, ['write', 'sync start', 'sync done', 'ack a', 'ack b', 'write', 'sync start', 'sync done', 'ack c']);
  t.equal(log.durableOffset, 9);
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

t.test('a-large-write-is-finished-before-its-sync-even-when-a-hook-drops-the-promise', async (t) => {
  const dir = await tempDir(t);
  const events: string[] = [];
  const { log } = await openLog({
    dir,
    fsHooks: {
      write: (_f, _bytes, real) => {
        const pending = real(); // not returned: the log must still wait for it
        if (pending !== undefined) void pending.then(() => events.push('write done'));
      },
      datasync: async (_f, real) => {
        events.push('sync');
        await real();
      },
    },
  });
  await log.append(drafts(0, 5_000)).durable;
  t.strictSame(events, ['write done', 'sync']);
  t.strictSame(await readAll(log), range(0, 5_000));
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

t.test('interval-mode-one-batch-of-plain-and-durable-appends-acks-each-kind-at-its-own-moment', async (t) => {
  const dir = await tempDir(t);
  let releaseSync: (() => void) | null = null;
  const { log } = await openLog({
    dir,
    sync: 'interval',
    syncIntervalMs: 5,
    fsHooks: {
      datasync: async (_f, real) => {
        await new Promise<void>((resolve) => (releaseSync = resolve));
        await real();
      },
    },
  });
  const acks: string[] = [];
  const plain1 = log.append(drafts(0, 2));
  const durable1 = log.append(drafts(2, 1), { durable: true });
  const plain2 = log.append(drafts(3, 2));
  const durable2 = log.append(drafts(5, 1), { durable: true });
  t.equal(plain1.durable, plain2.durable, 'plain appends of one batch share a promise');
  t.equal(durable1.durable, durable2.durable, 'durable appends of one batch share a promise');
  t.not(plain1.durable, durable1.durable, 'the two kinds wait for different moments');
  void plain1.durable.then(() => acks.push('plain'));
  void durable1.durable.then(() => acks.push('durable'));
  await plain2.durable;
  t.strictSame(acks, ['plain'], 'plain appends are acknowledged at the write, before the sync');
  while (releaseSync === null) await sleep(1);
  (releaseSync as () => void)();
  await durable2.durable;
  t.strictSame(acks, ['plain', 'durable']);
  await log.close();
  t.strictSame(await readAll((await openLog({ dir })).log), range(0, 6));
});

t.test('interval-mode-syncs-while-appends-arriving-during-every-write-keep-a-round-pending', async (t) => {
  const dir = await tempDir(t);
  let syncs = 0;
  let writeRounds = 0;
  const { log } = await openLog({
    dir,
    sync: 'interval',
    syncIntervalMs: 5,
    fsHooks: {
      // A write that takes a while (a large round goes through the thread pool): appends arrive
      // meanwhile, so a new round is pending every time the loop looks.
      write: async (_f, _bytes, real) => {
        real();
        writeRounds++;
        await sleep(10);
      },
      datasync: async (_f, real) => {
        syncs++;
        await real();
      },
    },
  });
  let next = 0;
  log.append(drafts(next++, 1));
  let durableDone = false;
  const durable = log.append(drafts(next++, 1), { durable: true }).durable.then(() => (durableDone = true));
  // Bounded by write rounds, not by time: before the sync was given its turn none ever came.
  while (!durableDone && writeRounds < 100) {
    log.append(drafts(next++, 1));
    await sleep(1);
  }
  t.ok(durableDone, `the durable append was acknowledged while appends kept coming (${writeRounds} write rounds, ${syncs} syncs)`);
  t.ok(syncs >= 1, 'the interval sync ran');
  await durable;
  await log.close();
  t.strictSame(await readAll((await openLog({ dir })).log), range(0, next));
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
