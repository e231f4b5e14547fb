// Adversarial interleavings of the queue-wide actions that run in steps (broker.ts: stepped): two
// actions over the same queue at once, and a snapshot taken between two steps. Each test checks
// that the answers count what the log records, that the pull hold ends with the last action
// holding it, and that a full replay and a snapshot plus the tail reach the live state.

import t from 'tap';
import { actionStepJobsMax } from '../../src/constants.js';
import { digestOf } from '../../src/broker/digest.js';
import type { LogRecord } from '../../src/record/types.js';
import { exportState, importState } from '../../src/state/index.js';
import type { StateImage } from '../../src/state/image.js';
import { manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import { ctx, many, pushMany } from './steps-fixture.js';


/** Runs `between` after the first action's first step, before its second. */
function afterFirstStep(between: () => void): void {
  setImmediate(between);
}

/** Ids removed by the `removed` records of `records`, each once per record naming it. */
function removedIds(records: LogRecord[]): string[] {
  const out: string[] = [];
  for (const r of records) if (r.body.type === 'removed') for (const j of r.body.jobs) out.push(j.jobId);
  return out;
}

t.test('two-drains-of-one-queue-at-once-remove-each-job-once-and-count-it-once', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await pushMany(b, 'q', many);
  const records: LogRecord[] = [];
  b.onRecords((batch) => records.push(...batch));
  let second: Promise<unknown> = Promise.resolve();
  let late = '';
  afterFirstStep(() => {
    second = b.drain('q', ctx);
    const r = b.pushNow('q', { data: 'late' }, ctx);
    late = 'id' in r ? r.id : '';
  });
  const first = await b.drain('q', ctx);
  const other = (await second) as { ok: boolean; removed: number };
  t.ok(first.ok && other.ok);
  const removed = removedIds(records);
  t.equal(new Set(removed).size, removed.length, 'no job is removed twice');
  t.equal((first.ok ? first.removed : 0) + other.removed, removed.length, 'the answers add up to the removals the log records');
  t.ok(removed.length >= many, 'every job waiting when the first drain came was removed');
  const drained = records.filter((r) => r.body.type === 'queueDrained').map((r) => (r.body as { removed: number }).removed);
  t.same(drained.sort(), [first.ok ? first.removed : -1, other.removed].sort(), 'each drained record counts its own action');
  const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
  t.equal(pulled.ok && pulled.job?.id, b.state.jobs.has(late) ? late : undefined, 'the hold ended with both drains');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('a-drain-whose-queue-is-obliterated-meanwhile-leaves-no-queue-behind', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await pushMany(b, 'q', many);
  let obliterated: Promise<unknown> = Promise.resolve();
  afterFirstStep(() => (obliterated = b.obliterate('q', ctx)));
  const drained = await b.drain('q', ctx);
  t.same(await obliterated, { ok: true });
  t.same(drained, { ok: true, removed: actionStepJobsMax }, 'the drain counts its own first step only');
  t.same(b.listQueues(), [], 'the obliterated queue is not listed again');
  t.equal(b.state.jobs.size, 0);
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('dlq-retry-and-purge-of-one-queue-at-once-touch-each-job-once', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ids = await pushMany(b, 'r', many, { maxAttempts: 1 });
  for (let i = 0; i < ids.length; i += 1_000) {
    const calls: Promise<unknown>[] = [];
    for (const id of ids.slice(i, i + 1_000)) calls.push(b.pull('r', { timeoutMs: 0 }, ctx), b.fail(id, { error: 'x' }, ctx));
    await Promise.all(calls);
  }
  let purge: Promise<unknown> = Promise.resolve();
  afterFirstStep(() => (purge = b.dlqPurge('r', ctx)));
  const retried = await b.dlqRetry('r', undefined, ctx);
  const purged = (await purge) as { ok: boolean; purged: number };
  t.ok(retried.ok && purged.ok);
  const r = retried.ok ? retried.retried : -1;
  t.equal(r + purged.purged, many, 'every dead job was either retried or purged, once');
  t.same(b.counts('r'), { waiting: r, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 });
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('a-snapshot-between-steps-plus-the-tail-reaches-the-live-state', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ids = await pushMany(b, 'q', many);
  await pushMany(b, 'q', 300, { delay: 60_000 });
  const [child] = await pushMany(b, 'q', 1, { dependsOn: [ids[ids.length - 1]] });
  let image: StateImage | null = null;
  let at = 0;
  afterFirstStep(() => {
    image = exportState(b.state);
    at = b.state.offset;
    void b.cancel(ids[ids.length - 2] as string, ctx);
    b.pushNow('q', { data: 'meanwhile' }, ctx);
  });
  const drained = await b.drain('q', ctx);
  t.ok(drained.ok);
  t.equal(b.jobState(child as string), null, 'the dependent went with its dependency');
  if (image === null) throw new Error('no snapshot taken between the steps');
  t.equal(digestOf(await replayLog(f.log, at, importState(image))), digestOf(b.state), 'snapshot between steps + tail == live');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'full replay == live');
});

t.test('a-sync-failing-between-steps-ends-the-action-and-the-long-polls-it-held', async (t) => {
  let failing = false;
  const f = await startBroker({
    clock: manualClock().now,
    fsHooks: {
      datasync: async (_file, real) => {
        if (failing) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
        await real();
      },
    },
  });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await pushMany(b, 'q', many);
  let polled: Promise<unknown> = Promise.resolve();
  afterFirstStep(() => {
    failing = true;
    polled = b.pull('q', { timeoutMs: 60_000 }, ctx);
  });
  const drained = await b.drain('q', ctx);
  t.equal(drained.ok, false);
  // Stopped by the failure (the next step found the broker failed), or every step appended before
  // the failed sync was known: then the answer is the plain failure, none of it acknowledged.
  t.match(!drained.ok && drained.error, /^Storage failure: [^;]*(; stopped after \d+ of \d+ jobs)?$/);
  t.equal(!drained.ok && drained.code, 'STORAGE_FAULT');
  t.same(await polled, { ok: true, job: null, token: null }, 'the long poll the drain held is answered, with no job');
  t.equal(b.ready, false);
});
