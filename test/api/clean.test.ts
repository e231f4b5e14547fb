// POST /queues/:q/clean over a real broker on a real log, served on 127.0.0.1: which jobs each
// state name takes, and what a clean touches on a queue restored from a snapshot. The job list's
// `statuses` takes the same BullMQ names for the same jobs.

import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { manualClock } from '../fixtures/broker.js';
import { startServer, type TestServer } from '../fixtures/server.js';

const ctx = { actor: null };

interface Served {
  s: TestServer<Broker>;
  broker: Broker;
  close(): Promise<void>;
}

/** The server's start: the newest snapshot of `dir` plus the log's tail, then the API on loopback.
 *  With a `clock` the broker's timers stay off, so time passes only when the test says. */
async function serve(dir: string, clock?: () => number): Promise<Served> {
  const logger = (): void => undefined;
  const log = await Log.open({ dir: join(dir, 'log'), sync: 'interval', syncIntervalMs: 2, logger });
  const { state } = await loadState({ log, dir: join(dir, 'snapshots'), logger });
  const broker = new Broker({ log, state, logger, ...(clock !== undefined ? { clock } : {}) });
  if (clock === undefined) broker.start();
  const s = await startServer({ broker });
  let closed = false;
  return {
    s,
    broker,
    async close() {
      if (closed) return;
      closed = true;
      await s.close();
      await broker.close();
      await log.close();
    },
  };
}

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-clean-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('clean-with-a-limit-makes-only-the-jobs-it-removes-out-of-a-restored-queue', async (t) => {
  const dir = await tempDir(t);
  let served = await serve(dir);
  t.teardown(() => served.close());
  // Priorities spread the oldest jobs over several buckets of the wait list.
  const ids: string[] = [];
  for (let bulk = 0; bulk < 5; bulk++) {
    const jobs = Array.from({ length: 1_000 }, (_, i) => ({ data: { i }, priority: (bulk * 1_000 + i) % 3 }));
    const pushed = await served.broker.pushBulk('q', jobs, ctx);
    if (!pushed.ok) throw new Error(pushed.error);
    ids.push(...pushed.ids);
  }
  await writeStateSnapshot(join(dir, 'snapshots'), served.broker.state);
  await served.close();
  served = await serve(dir);
  const cold = served.broker.state.cold;
  t.equal(cold.rows, 5_000, 'the restored waiting jobs are cold rows');

  const cleaned = await served.s.request('POST', '/queues/q/clean', { body: { grace: 0, state: 'waiting', limit: 3 } });
  t.equal(cleaned.status, 200);
  t.same(cleaned.json.removed, ids.slice(0, 3), 'the three pushed first, whatever their priority');
  t.equal(cold.rows, 4_997, 'no row but the three removed was made into a job');
  t.equal(served.broker.counts('q').waiting, 4_997);
});

t.test('clean-takes-bullmq-state-names-for-the-jobs-tapeq-holds-under-its-own', async (t) => {
  const served = await serve(await tempDir(t));
  t.teardown(() => served.close());
  const { s } = served;
  const push = async (body: unknown): Promise<string> => (await s.request('POST', '/queues/q/jobs', { body })).json.id as string;
  const clean = async (state: string, limit = 0) => s.request('POST', '/queues/q/clean', { body: { grace: 0, state, limit } });
  const plainA = await push({ data: 'a' });
  const bullOne = await push({ name: 'n', data: 'b', opts: { priority: 1 } });
  const seedFive = await push({ data: 'c', priority: 5 });
  const plainB = await push({ data: 'd' });

  t.same((await clean('prioritized')).json, { ok: true, removed: [bullOne, seedFive] }, 'prioritized: the waiting jobs with a priority, either shape');
  t.same((await clean('paused')).json, { ok: true, removed: [] }, 'paused: none while the queue runs');
  await s.request('POST', '/queues/q/pause');
  t.same((await clean('paused', 1)).json, { ok: true, removed: [plainA] }, 'paused: the waiting jobs of a paused queue');
  await s.request('POST', '/queues/q/resume');
  t.same((await clean('wait')).json, { ok: true, removed: [plainB] }, 'wait: the waiting jobs');

  const held = await push({ data: 'e' });
  const pulled = await s.request('GET', '/queues/q/jobs?timeout=0');
  t.equal(pulled.json.job.id, held);
  t.same((await clean('active')).json, { ok: true, removed: [] }, 'active: a job whose lock is held is not taken');
  const acked = await s.request('POST', `/jobs/${held}/ack`, { body: { token: pulled.json.token } });
  t.same([acked.status, acked.json], [200, { ok: true }], 'and its holder completes it');

  const refused = await clean('waiting-children');
  t.equal(refused.status, 400);
  t.same(refused.json, { ok: false, error: 'state must be one of: completed, failed, waiting, delayed, wait, paused, prioritized, active' });
});

t.test('clean-active-takes-a-job-whose-lock-ran-out-and-its-token-answers-as-for-any-removed-job', async (t) => {
  const clock = manualClock();
  const served = await serve(await tempDir(t), clock.now);
  t.teardown(() => served.close());
  const { s, broker } = served;
  const pulled: Record<string, { id: string; token: string }> = {};
  for (const [name, lockMs] of [['lapsed', 1_000], ['held', 60_000], ['deleted', 60_000]] as const) {
    await broker.push('q', { data: name }, ctx);
    const out = await broker.pull('q', { timeoutMs: 0, lockMs }, { actor: null, owner: name });
    if (!out.ok || out.job === null || out.token === null) throw new Error('no job');
    pulled[name] = { id: out.job.id, token: out.token };
  }
  const { lapsed, held, deleted } = pulled as Record<'lapsed' | 'held' | 'deleted', { id: string; token: string }>;
  clock.advance(2_000); // the stall check would requeue `lapsed` now: its timers are off
  t.same((await s.request('POST', '/queues/q/clean', { body: { grace: 0, state: 'active' } })).json, { ok: true, removed: [lapsed.id] });
  t.equal((await s.request('DELETE', `/jobs/${deleted.id}`)).status, 200);

  const ackRemoved = await s.request('POST', `/jobs/${deleted.id}/ack`, { body: { token: deleted.token } });
  const ackCleaned = await s.request('POST', `/jobs/${lapsed.id}/ack`, { body: { token: lapsed.token } });
  t.not(ackCleaned.status, 200);
  t.same([ackCleaned.status, ackCleaned.json], [ackRemoved.status, ackRemoved.json], 'the cleaned job\'s token answers as a deleted job\'s');
  const failCleaned = await s.request('POST', `/jobs/${lapsed.id}/fail`, { body: { token: lapsed.token } });
  t.same([failCleaned.status, failCleaned.json], [ackRemoved.status, ackRemoved.json], 'so does a fail');
  t.equal((await s.request('GET', `/jobs/${lapsed.id}`)).status, 404);

  broker.runDueTimers();
  t.equal(broker.stats().totalStalled, 0, 'its lock left with it: the stall check finds nothing to requeue');
  t.equal(broker.counts('q').active, 1, 'the job whose lock is held is still active');
  const acked = await s.request('POST', `/jobs/${held.id}/ack`, { body: { token: held.token } });
  t.same([acked.status, acked.json], [200, { ok: true }]);
});

t.test('the-job-list-takes-the-bullmq-state-names-clean-takes-for-the-same-jobs', async (t) => {
  // `GET …/jobs/list?statuses=wait` was a 400 while `clean {"state": "wait"}` was taken.
  const served = await serve(await tempDir(t));
  t.teardown(() => served.close());
  const { s } = served;
  const push = async (body: unknown): Promise<string> => (await s.request('POST', '/queues/q/jobs', { body })).json.id as string;
  const list = async (statuses: string): Promise<unknown> => {
    const res = await s.request('GET', `/queues/q/jobs/list?statuses=${statuses}&length=100`);
    return res.status === 200 ? (res.json.jobs as Array<{ id: string }>).map((j) => j.id) : [res.status, res.json];
  };
  const plainA = await push({ data: 'a' });
  const bullOne = await push({ name: 'n', data: 'b', opts: { priority: 1 } });
  const seedFive = await push({ data: 'c', priority: 5 });
  const plainB = await push({ data: 'd' });
  const done = await push({ data: 'e', delay: 60_000 });
  const pullOrder = [seedFive, plainA, plainB, bullOne];

  t.same(await list('wait'), await list('waiting'), 'wait is waiting');
  t.same(await list('wait'), pullOrder, 'every waiting job, in pull order');
  t.same(await list('prioritized'), [seedFive, bullOne], 'prioritized: the waiting jobs with a priority, either shape, in pull order');
  t.same(await list('prioritized,delayed'), [seedFive, bullOne, done]);
  t.same(await list('prioritized,wait'), pullOrder, 'beside the waiting jobs, a prioritized job is listed once');
  t.same(await list('wait,waiting'), pullOrder, 'an alias and its state are one status');
  await s.request('POST', '/queues/q/pause');
  t.same(await list('wait'), [], 'wait is waiting: none while the queue is paused');
  t.same(await list('paused,prioritized'), pullOrder, 'listed once beside paused too');
  t.same(await list('prioritized'), [seedFive, bullOne], 'prioritized whether or not the queue is paused, as clean takes them');
  t.same(await list('wait,prioritized'), [seedFive, bullOne]);
  t.same(await list('finished'), [
    400,
    { ok: false, error: 'statuses must be a comma-separated list of: waiting, paused, active, completed, failed, delayed, waiting-children, prioritized, wait' },
  ]);
});
