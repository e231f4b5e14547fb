import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Broker } from '../../src/broker/broker.js';
import { Log } from '../../src/log/log.js';
import { createState } from '../../src/state/index.js';
import { manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import type { WorkerConfig } from '../../src/broker/types.js';

const ctx = { actor: null };

/** Pushes one job and returns its id (a refusal fails the test). */
async function pushedId(b: Broker, queue: string, input: object): Promise<string> {
  const r = await b.push(queue, input, ctx);
  if (!r.ok) throw new Error(r.error);
  return r.id;
}

t.test('drain-clean-obliterate', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.pushBulk('q', [{ data: 1 }, { data: 2, delay: 10_000 }, { name: 'b', data: 3, opts: {} }], ctx);
  const active = await b.push('q', { data: 4, priority: 9 }, ctx);
  await b.pull('q', { timeoutMs: 0 }, ctx);
  t.same(await b.drain('q', ctx), { ok: true, removed: 3 });
  t.same(b.counts('q'), { waiting: 0, active: 1, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 });
  const token = active.ok ? (b.state.jobs.get(active.id)?.lockToken ?? '') : '';
  await b.ack(active.ok ? active.id : '', { token }, ctx);
  t.same(await b.clean('q', { state: 'completed' }, ctx), { ok: false, code: 'BAD_REQUEST', error: 'grace is required' });
  t.same(await b.clean('q', { grace: 0, state: 'completed', foo: 1 }, ctx), { ok: false, code: 'BAD_REQUEST', error: 'foo is not an allowed field' });
  await new Promise((r) => setTimeout(r, 5));
  const cleaned = await b.clean('q', { grace: 0, state: 'completed' }, ctx);
  t.same(cleaned, { ok: true, removed: [active.ok ? active.id : ''] });
  await b.push('q', { data: 5 }, ctx);
  await b.pause('q', ctx);
  t.same(b.listQueues().map((q) => q.name), ['q']);
  t.same(await b.obliterate('q', ctx), { ok: true });
  t.same(b.listQueues(), []);
  t.equal(b.isPaused('q'), false);
});

t.test('promote-jobs-and-dlq-purge', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.pushBulk('q', [{ data: 1, delay: 5000 }, { data: 2, delay: 9000 }], ctx);
  t.same(await b.promoteJobs('q', { count: 1 }, ctx), { ok: true, promoted: 1 });
  t.same(b.counts('q').waiting, 1);
  const p = await b.pull('q', { timeoutMs: 0 }, ctx);
  const id = p.ok && p.job ? p.job.id : '';
  t.equal(p.ok && p.job?.data, 1, 'the earliest due was promoted');
  await b.push('q', { data: 3, maxAttempts: 1, jobId: 'dead' }, ctx);
  const q = await b.pull('q', { timeoutMs: 0 }, ctx);
  t.equal(q.ok && q.job?.id, 'dead');
  await b.fail('dead', { error: 'x' }, ctx);
  t.same(b.dlq('q', 0, 10).count, 1);
  t.same(await b.dlqRetry('q', 'nope', ctx), { ok: false, code: 'NOT_FOUND', error: 'Job not found' });
  t.same(await b.dlqPurge('q', ctx), { ok: true, purged: 1 });
  t.equal(b.getJob('dead'), null);
  t.ok(b.getJob(id));
});

t.test('workers-register-replace-remove', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const config: WorkerConfig = {
    queue: 'mail',
    endpoint: { url: 'http://localhost:1/x', method: 'POST', headers: {}, timeout: 3000 },
    opts: { concurrency: 2, limiter: null, removeOnComplete: null, removeOnFail: null, maxStalledCount: 1 },
  };
  t.same(await b.registerWorker(config, ctx), { ok: true });
  t.same(await b.registerWorker({ ...config, opts: { ...config.opts, concurrency: 5 } }, ctx), { ok: true });
  t.same(b.workers().map((w) => w.opts.concurrency), [5]);
  t.same(b.listQueues().map((q) => q.name), ['mail']);
  t.same(await b.removeWorker('mail', ctx), { ok: true });
  t.same(await b.removeWorker('mail', ctx), { ok: false, code: 'NOT_FOUND', error: 'Worker not found' });
});

t.test('stats-count-the-last-complete-second-of-the-monotonic-clock', async (t) => {
  let now = 1_700_000_000_000;
  let monotonic = 5_000;
  const f = await startBroker({ clock: () => now, monotonicClock: () => monotonic, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('q', { data: 1 }, ctx);
  await b.push('q', { data: 2 }, ctx);
  await b.pull('q', { timeoutMs: 0 }, ctx);
  t.match(b.stats(), { pushPerSec: 0, pullPerSec: 0 }, 'the second is not complete yet');
  monotonic += 1000;
  const s = b.stats();
  t.equal(s.pushPerSec, 2);
  t.equal(s.pullPerSec, 1);
  t.equal(s.totalPushed, 2);
  t.equal(s.queued, 1);
  t.equal(s.processing, 1);
  monotonic += 1000;
  t.match(b.stats(), { pushPerSec: 0, pullPerSec: 0 }, 'a second without traffic');

  // The wall clock steps back an hour: records keep the log's time (it never goes backwards),
  // and the rates go on counting what happens.
  now -= 3_600_000;
  for (let i = 0; i < 3; i++) await b.push('q', { data: i }, ctx);
  await b.pull('q', { timeoutMs: 0 }, ctx);
  monotonic += 1000;
  t.match(b.stats(), { pushPerSec: 3, pullPerSec: 1 }, 'while the wall clock is behind the log');
  monotonic += 2500;
  t.match(b.stats(), { pushPerSec: 0, pullPerSec: 0 }, 'a gap of seconds reads 0');
  const restarted = await f.restart();
  t.teardown(() => restarted.cleanup());
  t.match(restarted.broker.stats(), { pushPerSec: 0, pullPerSec: 0, totalPushed: 5, totalPulled: 2 }, 'a replay is not traffic');
});

t.test('a-paused-queue-counts-and-lists-its-waiting-jobs-once-as-paused', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.pushBulk('p', [{ data: 1 }, { data: 2 }, { data: 3 }, { data: 4, delay: 10_000 }], ctx);
  await b.pull('p', { timeoutMs: 0 }, ctx);
  await b.pause('p', ctx);
  const counts = b.counts('p');
  t.same(counts, { waiting: 0, active: 1, delayed: 1, completed: 0, failed: 0, 'waiting-children': 0, paused: 2 });
  const every = b.listJobs('p', ['waiting', 'paused', 'active', 'delayed'], 0, 100);
  t.equal(every.jobs.length, 4, 'each job listed once');
  t.same(b.listJobs('p', ['waiting'], 0, 100).jobs, []);
  t.equal(b.listJobs('p', ['paused'], 0, 100).jobs.length, 2);
  await b.resume('p', ctx);
  t.same(b.counts('p'), { ...counts, waiting: 2, paused: 0 });
  t.same(b.listJobs('p', ['paused'], 0, 100).jobs, []);
});

t.test('obliterate-keeps-a-queue-with-active-jobs-unless-forced', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.pushBulk('o', [{ data: 1 }, { data: 2 }], ctx);
  await b.pull('o', { timeoutMs: 0 }, ctx);
  const before = f.log.nextOffset;
  t.same(await b.obliterate('o', ctx), { ok: false, code: 'CONFLICT', error: 'Queue has 1 active job: obliterate with {"force": true} to remove them too' });
  t.equal(f.log.nextOffset, before, 'nothing appended');
  t.same(b.counts('o'), { waiting: 1, active: 1, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 });
  t.same(await b.obliterate('o', ctx, true), { ok: true });
  t.same(b.listQueues(), []);
});

t.test('clean-takes-jobs-finished-exactly-grace-ms-ago', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const pushed = await b.push('q', { data: i }, ctx);
    const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
    await b.ack(pushed.ok ? pushed.id : '', { token: pulled.ok ? (pulled.token ?? '') : '' }, ctx);
    ids.push(pushed.ok ? pushed.id : '');
    clock.advance(100);
  }
  // The first finished 200 ms ago, the second 100 ms ago.
  t.same(await b.clean('q', { grace: 101, state: 'completed' }, ctx), { ok: true, removed: [ids[0]] });
  t.same(await b.clean('q', { grace: 100, state: 'completed' }, ctx), { ok: true, removed: [ids[1]] }, 'grace is "at least this long ago"');
  const pushed = await b.push('q', { data: 'now' }, ctx);
  const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
  await b.ack(pushed.ok ? pushed.id : '', { token: pulled.ok ? (pulled.token ?? '') : '' }, ctx);
  t.same(await b.clean('q', { grace: 0, state: 'completed' }, ctx), { ok: true, removed: [pushed.ok ? pushed.id : ''] }, 'grace 0 takes a job finished this very millisecond');
});

t.test('a-deep-page-of-waiting-jobs-leaves-the-cold-rows-before-it-cold', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-deep-page-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = await startBroker({ dir });
  const pushed = await f.broker.pushBulk('q', Array.from({ length: 50 }, (_, i) => ({ data: i })), ctx);
  const ids = pushed.ok ? pushed.ids : [];
  await f.cleanup();
  // A replay at start, as main.ts runs it, keeps the replayed waiting jobs as cold rows.
  const log = await Log.open({ dir, sync: 'interval', syncIntervalMs: 2, logger: () => undefined });
  const state = createState();
  state.cold.takesPushes = true;
  await replayLog(log, 0, state);
  state.cold.takesPushes = false;
  const b = new Broker({ log, state });
  t.teardown(async () => {
    await b.close();
    await log.close();
  });
  t.equal(state.cold.rows, 50);
  t.same(b.listJobs('q', ['waiting'], 40, 5).jobs.map((j) => j.id), ids.slice(40, 45));
  t.equal(state.cold.rows, 45, 'only the page was made into jobs');
  await b.pause('q', ctx);
  t.same(b.listJobs('q', ['waiting', 'paused', 'delayed'], 48, 5).jobs.map((j) => j.id), ids.slice(48), 'a paused queue lists them as paused');
  t.equal(state.cold.rows, 43);
});

t.test('drain-also-removes-the-jobs-of-the-queue-it-would-set-free', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = (queue: string, input: object): Promise<string> => pushedId(b, queue, input);
  // charge (waiting) ← ship (waiting-children) ← notify (waiting-children): draining charge sets
  // ship free, then notify; left in place they would be waiting once the drain is done (BullMQ's
  // drain removes such a parent of the same queue with its child).
  const charge = await id('orders', { data: 1 });
  const ship = await id('orders', { data: 2, dependsOn: [charge] });
  const notify = await id('orders', { data: 3, dependsOn: [ship], delay: 60_000 });
  // Still waiting for a job of another queue that the drain does not touch: it stays.
  const audit = await id('audit', { data: 4 });
  const report = await id('orders', { data: 5, dependsOn: [charge, audit] });
  // A dependent in another queue is set free, as by any removal of its dependency.
  const invoice = await id('billing', { data: 6, dependsOn: [charge] });
  const offset = f.log.nextOffset;
  t.same(await b.drain('orders', ctx), { ok: true, removed: 3 });
  t.same(b.counts('orders'), { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 1, paused: 0 });
  for (const gone of [charge, ship, notify]) t.equal(b.jobState(gone), null);
  t.equal(b.jobState(report), 'waiting-children');
  t.equal(b.jobState(invoice), 'waiting');
  const removed: unknown[] = [];
  for await (const rec of f.log.read(offset)) if (rec.body.type === 'removed') removed.push(...rec.body.jobs.map((j) => j.jobId));
  t.same(removed, [charge, ship, notify], 'one removed record names all three, in push order');
  const restarted = await f.restart();
  t.teardown(() => restarted.cleanup());
  t.same(restarted.broker.counts('orders'), b.counts('orders'), 'replay agrees');
});

t.test('clean-of-live-jobs-also-removes-the-jobs-of-the-queue-it-would-set-free', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = (queue: string, input: object): Promise<string> => pushedId(b, queue, input);
  const stale = await id('q', { data: 1 });
  const after = await id('q', { data: 2, dependsOn: [stale] });
  const elsewhere = await id('other', { data: 3, dependsOn: [stale] });
  const kept = await id('q', { data: 4 });
  const failing = await id('q', { data: 5, maxAttempts: 1 });
  const held = await id('q', { data: 6, dependsOn: [failing] });
  clock.advance(1_000);
  const fresh = await id('q', { data: 7 });
  // `wait` with a limit of 1 takes `stale`; `after`, free once it is gone, goes with it.
  t.same(await b.clean('q', { grace: 500, state: 'wait', limit: 1 }, ctx), { ok: true, removed: [stale, after] });
  t.equal(b.jobState(elsewhere), 'waiting', 'a dependent in another queue is set free, as by any removal');
  t.same(b.listJobs('q', ['waiting'], 0, 10).jobs.map((j) => j.id), [kept, failing, fresh]);
  // A failed dependency never sets its dependents free, so cleaning it takes only itself.
  for (let i = 0; i < 2; i++) {
    const next = await b.pull('q', { timeoutMs: 0 }, ctx);
    const nextId = next.ok ? (next.job?.id ?? '') : '';
    if (nextId === failing) await b.fail(nextId, {}, ctx);
  }
  t.equal(b.jobState(failing), 'failed');
  t.same(await b.clean('q', { grace: 0, state: 'failed' }, ctx), { ok: true, removed: [failing] });
  t.equal(b.jobState(held), 'waiting-children');
});

t.test('delayed-jobs-page-in-due-order-with-ties-in-push-order-and-promote-jobs-takes-the-first-due', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const pushed: Array<{ id: string; delay: number; n: number }> = [];
  for (let n = 0; n < 300; n++) {
    const delay = 1_000 + ((n * 37) % 50) * 10; // 50 distinct due times, six jobs each
    const r = await b.push('q', { data: n, delay }, ctx);
    if (!r.ok) throw new Error(r.error);
    pushed.push({ id: r.id, delay, n });
  }
  const due = [...pushed].sort((a, b) => a.delay - b.delay || a.n - b.n).map((j) => j.id);
  const paged: string[] = [];
  for (let start = 0; start < 310; start += 7) {
    paged.push(...b.listJobs('q', ['delayed'], start, 7).jobs.map((j) => j.id));
  }
  t.same(paged, due, 'every page, ties in push order');
  t.same(b.listJobs('q', ['waiting', 'delayed'], 5, 3).jobs.map((j) => j.id), due.slice(5, 8), 'a page after other statuses');
  t.same(await b.promoteJobs('q', { count: 8 }, ctx), { ok: true, promoted: 8 });
  t.same(b.listJobs('q', ['waiting'], 0, 100).jobs.map((j) => j.id), due.slice(0, 8), 'the first 8 due, in due order');
});

t.test('clean-of-delayed-jobs-takes-the-first-pushed-that-pass-the-grace', async (t) => {
  // Pins cleanable's order for delayed jobs, whatever selects them: as sorting every delayed job by
  // push order and taking the first `limit` that are old enough.
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ids: string[] = [];
  const first = await b.push('q', { data: 'first', backoff: 100_000 }, ctx);
  for (let i = 0; i < 40; i++) {
    const r = await b.push('q', { data: i, delay: 60_000 + ((i * 17) % 11) * 1_000 }, ctx);
    ids.push(r.ok ? r.id : '');
    clock.advance(10);
  }
  // The first job fails its first attempt: back among the delayed ones last, though pushed first.
  await b.pull('q', { timeoutMs: 0 }, ctx);
  await b.fail(first.ok ? first.id : '', { error: 'x' }, ctx);
  for (const i of [0, 5, 6, 21]) await b.cancel(ids[i] as string, ctx);
  const left = [first.ok ? first.id : '', ...ids.filter((_, i) => ![0, 5, 6, 21].includes(i))];
  t.same(await b.clean('q', { grace: 0, state: 'delayed', limit: 7 }, ctx), { ok: true, removed: left.slice(0, 7) });
  // Pushed at 0, 10, ..., 390 ms; now 400: a grace of 250 ms takes those pushed at 150 ms or before.
  const old = left.slice(7).filter((id) => ids.indexOf(id) <= 15);
  t.same(await b.clean('q', { grace: 250, state: 'delayed', limit: 100 }, ctx), { ok: true, removed: old });
  t.same(await b.clean('q', { grace: 0, state: 'delayed', limit: 0 }, ctx), { ok: true, removed: left.slice(7).filter((id) => !old.includes(id)) }, 'limit 0: every one, oldest first');
});
