import t, { type Test } from 'tap';
import type { Broker } from '../../src/broker/broker.js';
import { DueHeap, noteRecord } from '../../src/broker/timers.js';
import { dueHeapSlackEntries, processingTimeoutMsMax } from '../../src/constants.js';
import { idOf, manualClock, startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

/** Up to four times: pulls a repeat run of `queue` and acks it, then moves the clock 1 s on and
 *  runs the due timers. The runs' repeat counts, in order. */
async function ackEachRun(b: Broker, clock: { advance: (ms: number) => void }, queue: string): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    const p = await b.pull(queue, { timeoutMs: 0 }, ctx);
    if (!p.ok || p.job === null) break;
    seen.push(p.job.repeat?.count ?? -1);
    await b.ack(p.job.id, { token: p.token as string }, ctx);
    clock.advance(1000);
    b.runDueTimers();
  }
  return seen;
}

t.test('delayed-job-is-promoted-by-timer', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, delay: 5000 }, ctx);
  const id = r.ok ? r.id : '';
  clock.advance(4999);
  b.runDueTimers();
  t.equal(b.jobState(id), 'delayed');
  clock.advance(1);
  b.runDueTimers();
  t.equal(b.jobState(id), 'waiting');
});

t.test('ttl-expired-job-is-never-pulled', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, ttl: 1000 }, ctx);
  const keep = await b.push('q', { data: 2 }, ctx);
  clock.advance(1000);
  const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
  t.equal(pulled.ok && pulled.job?.id, keep.ok && keep.id, 'the expired head is skipped');
  t.equal(b.getJob(r.ok ? r.id : ''), null, 'and removed (reason expired)');
  const r2 = await b.push('q', { data: 3, ttl: 500 }, ctx);
  clock.advance(500);
  b.runDueTimers();
  t.equal(b.getJob(r2.ok ? r2.id : ''), null, 'the timer expires it too');
});

t.test('processing-timeout-fails-the-attempt', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, timeout: 2000, maxAttempts: 1 }, ctx);
  const id = r.ok ? r.id : '';
  await b.pull('q', { timeoutMs: 0 }, ctx);
  clock.advance(2000);
  b.runDueTimers();
  t.equal(b.jobState(id), 'failed');
  t.equal(b.getJob(id)?.failedReason, 'Job timed out after 2000 ms');
});

t.test('a-processing-timeout-longer-than-the-lock-holds-the-lock-until-it', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 1500 });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const long = await b.push('q', { data: 1, timeout: 4000 }, ctx);
  const id = long.ok ? long.id : '';
  const p = await b.pull('q', { timeoutMs: 0 }, ctx);
  clock.advance(2400);
  b.runDueTimers();
  t.equal(b.jobState(id), 'active', 'not stalled at LOCK_MS: the timeout decides');
  t.same(await b.ack(id, { token: p.ok ? (p.token as string) : '' }, ctx), { ok: true });
  const short = await b.push('q', { data: 2 }, ctx);
  await b.pull('q', { timeoutMs: 0 }, ctx);
  clock.advance(1500);
  b.runDueTimers();
  t.equal(b.getJob(short.ok ? short.id : '')?.stalledCount, 1, 'a job without a timeout keeps LOCK_MS');
});

t.test('a-processing-timeout-is-at-most-what-a-lock-can-cover-and-the-longest-one-fails-before-any-stall', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const over = await b.push('q', { data: 1, timeout: processingTimeoutMsMax + 1 }, ctx);
  t.match(over, { ok: false, code: 'BAD_REQUEST', error: `timeout must be at most ${processingTimeoutMsMax}` }, 'a timeout its lock could not cover is refused');
  const r = await b.push('q', { data: 1, timeout: processingTimeoutMsMax, maxAttempts: 1 }, ctx);
  const id = r.ok ? r.id : '';
  await b.pull('q', { timeoutMs: 0 }, ctx);
  clock.advance(processingTimeoutMsMax);
  b.runDueTimers();
  t.equal(b.jobState(id), 'failed', 'the timeout fails the attempt');
  t.equal(b.getJob(id)?.stalledCount, 0, 'before the lock ran out: no stall handed it to another consumer');
});

t.test('a-progress-report-renews-an-active-jobs-lock', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 1500 });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1 }, ctx);
  const id = r.ok ? r.id : '';
  await b.pull('q', { timeoutMs: 0 }, ctx);
  clock.advance(1000);
  t.same(await b.progress(id, { progress: 50 }, ctx), { ok: true });
  clock.advance(1400);
  b.runDueTimers();
  t.equal(b.jobState(id), 'active', 'at 2.4 s: the report at 1 s renewed the 1.5 s lock');
  clock.advance(100);
  b.runDueTimers();
  t.equal(b.getJob(id)?.stalledCount, 1, 'at 2.5 s, with no further report, it stalls');
});

t.test('repeat-every-schedules-the-next-instance-until-the-limit', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('q', { data: 'tick', repeat: { every: 1000, limit: 3 } }, ctx);
  const seen = await ackEachRun(b, clock, 'q');
  t.same(seen, [0, 1, 2], 'three runs, then the limit stops it');
});

t.test('repeat-pattern-runs-at-the-next-cron-time', async (t) => {
  const clock = manualClock(Date.UTC(2030, 0, 1, 0, 0, 0, 500));
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, repeat: { pattern: '*/10 * * * * *' } }, ctx);
  t.equal(b.getJob(r.ok ? r.id : '')?.runAt, Date.UTC(2030, 0, 1, 0, 0, 10));
  t.same(await b.push('q', { data: 1, repeat: { pattern: 'nope' } }, ctx).then((x) => x.ok), false);
});

t.test('a-repeat-with-a-ttl-shorter-than-its-interval-keeps-its-schedule', async (t) => {
  const clock = manualClock(Date.UTC(2030, 0, 1, 0, 0, 0, 500));
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('every', { data: 'tick', ttl: 500, repeat: { every: 1000, limit: 3 } }, ctx);
  const cron = await b.push('cron', { data: 'tock', ttl: 2000, repeat: { pattern: '*/10 * * * * *', limit: 2 } }, ctx);
  const seen = await ackEachRun(b, clock, 'every');
  t.same(seen, [0, 1, 2], 'every instance runs: its ttl counts from its run time, not from its push');
  clock.set(Date.UTC(2030, 0, 1, 0, 0, 10) + 1999);
  b.runDueTimers();
  const first = await b.pull('cron', { timeoutMs: 0 }, ctx);
  t.equal(first.ok && first.job?.id, cron.ok && cron.id, 'the first cron run, 9.5 s after the push, is not expired by a 2 s ttl');
  await b.ack(cron.ok ? cron.id : '', { token: first.ok ? (first.token ?? '') : '' }, ctx);
  clock.set(Date.UTC(2030, 0, 1, 0, 0, 20) + 2000);
  b.runDueTimers();
  t.same(b.counts('cron'), { waiting: 0, active: 0, delayed: 0, completed: 1, failed: 0, 'waiting-children': 0, paused: 0 }, 'a run not started within its ttl is skipped');
  await b.push('promoted', { data: 'p', ttl: 500, repeat: { every: 60_000 } }, ctx);
  const run = await b.pull('promoted', { timeoutMs: 0 }, ctx);
  await b.ack(run.ok && run.job ? run.job.id : '', { token: run.ok ? (run.token ?? '') : '' }, ctx);
  const next = b.listJobs('promoted', ['delayed'], 0, 1).jobs[0]?.id ?? '';
  t.same(await b.promote(next, ctx), { ok: true });
  clock.advance(500);
  b.runDueTimers();
  t.equal(b.jobState(next), null, 'a promoted instance expires ttl ms after its promotion');
});

t.test('a-repeat-run-skipped-for-its-ttl-does-not-end-the-schedule', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('q', { data: 'tick', ttl: 300, repeat: { every: 1000, limit: 5 } }, ctx);
  const seen: number[] = [];
  const pullAndAck = async (): Promise<void> => {
    const p = await b.pull('q', { timeoutMs: 0 }, ctx);
    if (!p.ok || p.job === null) return;
    seen.push(p.job.repeat?.count ?? -1);
    await b.ack(p.job.id, { token: p.token as string }, ctx);
  };
  clock.advance(1500);
  b.runDueTimers();
  await pullAndAck();
  t.same(seen, [], 'run 0 expired unpulled (found by the timer) at 1.5 s; run 1 keeps its slot at 2 s');
  clock.advance(500);
  b.runDueTimers();
  await pullAndAck();
  t.same(seen, [1], 'run 1 was scheduled in its place');
  clock.advance(1000);
  b.runDueTimers();
  await pullAndAck();
  clock.advance(1000);
  b.runDueTimers();
  clock.advance(300);
  await pullAndAck();
  t.same(seen, [1, 2], 'run 3 expired (found by a pull)');
  clock.advance(700);
  b.runDueTimers();
  await pullAndAck();
  t.same(seen, [1, 2, 4], 'and run 4 took its place; the limit of 5 runs still holds');
  clock.advance(5000);
  b.runDueTimers();
  t.same(b.counts('q'), { waiting: 0, active: 0, delayed: 0, completed: 3, failed: 0, 'waiting-children': 0, paused: 0 });
});

t.test('restart-turns-expired-locks-into-stalls', async (t) => {
  const clock = manualClock();
  let f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 1000 });
  t.teardown(() => f.cleanup());
  const r = await f.broker.push('q', { data: 1 }, ctx);
  await f.broker.pull('q', { timeoutMs: 0 }, ctx);
  f = await f.restart();
  t.equal(f.broker.jobState(r.ok ? r.id : ''), 'active', 'the lock survives the restart in the log');
  clock.advance(1000);
  f.broker.runDueTimers();
  t.equal(f.broker.jobState(r.ok ? r.id : ''), 'waiting');
  t.equal(f.broker.getJob(r.ok ? r.id : '')?.stalledCount, 1);
});

t.test('real-timers-promote-a-delayed-job', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, delay: 30 }, ctx);
  const p = await b.pull('q', { timeoutMs: 2000 }, ctx);
  t.equal(p.ok && p.job?.id, r.ok && r.id, 'a long-poll is woken by the timer promotion');
});

/** A manual-clock broker with a job and a dependent of it pushed with `delay`. */
async function parentAndDelayedChild(t: Test, delay: number) {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const parent = await b.push('q', { data: 'parent' }, ctx);
  const parentId = parent.ok ? parent.id : '';
  const child = await b.push('q', { data: 'child', delay, dependsOn: [parentId] }, ctx);
  return { clock, b, parentId, childId: child.ok ? child.id : '' };
}

t.test('delayed-job-whose-dependency-completes-early-is-promoted-when-due', async (t) => {
  const { clock, b, parentId, childId } = await parentAndDelayedChild(t, 500);
  t.equal(b.jobState(childId), 'waiting-children');
  const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
  t.equal(pulled.ok && pulled.job?.id, parentId);
  await b.ack(parentId, {}, ctx);
  t.equal(b.jobState(childId), 'delayed', 'the dependency is done before the delay is');
  clock.advance(499);
  b.runDueTimers();
  t.equal(b.jobState(childId), 'delayed');
  clock.advance(1);
  b.runDueTimers();
  t.equal(b.jobState(childId), 'waiting', 'promoted by the timer, as after a replay');
});

t.test('delay-that-passes-while-dependencies-wait-leaves-the-job-waiting-for-them', async (t) => {
  const { clock, b, parentId, childId } = await parentAndDelayedChild(t, 100);
  clock.advance(200);
  b.runDueTimers();
  t.equal(b.jobState(childId), 'waiting-children');
  await b.pull('q', { timeoutMs: 0 }, ctx);
  await b.ack(parentId, {}, ctx);
  t.equal(b.jobState(childId), 'waiting');
});

t.test('a-repeat-instance-retried-from-the-dlq-does-not-schedule-its-successor-again', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const first = await b.push('q', { data: 'r', maxAttempts: 1, repeat: { every: 200, limit: 2 } }, ctx);
  const firstId = first.ok ? first.id : '';
  const run = async () => {
    const p = await b.pull('q', { timeoutMs: 0 }, ctx);
    return p.ok && p.job !== null ? { id: p.job.id, count: p.job.repeat?.count, token: p.token as string } : null;
  };
  const a = await run();
  await b.fail(firstId, { error: 'boom', token: a?.token ?? '' }, ctx);
  t.equal(b.jobState(firstId), 'failed', 'dead: in the DLQ');
  t.same(await b.retry(firstId, ctx), { ok: true });
  const again = await run();
  t.equal(again?.id, firstId, 'the retried instance runs again');
  await b.ack(firstId, { token: again?.token ?? '' }, ctx);
  clock.advance(200);
  b.runDueTimers();
  const second = await run();
  t.equal(second?.count, 1, 'its one successor');
  await b.ack(second?.id ?? '', { token: second?.token ?? '' }, ctx);
  clock.advance(1_000);
  b.runDueTimers();
  t.equal(await run(), null, 'limit 2: nothing more');
  const pushed: unknown[] = [];
  for await (const r of f.log.read(0)) if (r.body.type === 'pushed') pushed.push(r.body.job.repeat?.count);
  t.same(pushed, [0, 1], 'two instances were ever pushed');
});

t.test('a-wall-clock-step-forward-is-noticed-within-a-second', async (t) => {
  // The broker's timer sleeps on the monotonic clock: a step of the wall clock (NTP, a resumed
  // VM) while it sleeps is only seen when it next reads the wall clock.
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { data: 1, delay: 3_600_000 }, ctx));
  clock.advance(3_600_000);
  const p = await b.pull('q', { timeoutMs: 3000 }, ctx);
  t.equal(p.ok && p.job?.id, id, 'promoted after the step, not an hour later');
});

t.test('a-progress-report-adds-only-its-lock-to-the-due-heap', async (t) => {
  // Every report used to add a processing-timeout entry too, kept until the timeout came due: a
  // job with a day's timeout reporting every 100 ms piled up 864,000 of them.
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { data: 1, timeout: 86_000_000 }, ctx));
  await b.pull('q', { timeoutMs: 0 }, ctx);
  const heap = new DueHeap();
  const off = b.onRecords((records) => {
    for (const record of records) noteRecord(heap, b.state, record);
  });
  t.teardown(off);
  for (let i = 0; i < 10; i++) {
    clock.advance(100);
    await b.progress(id, { progress: i }, ctx);
  }
  t.equal(heap.size, 10, 'one lock entry per report');
});

t.test('moments-of-jobs-gone-long-before-them-do-not-pile-up-in-the-due-heap', async (t) => {
  // Seed 004's example job has a one-day ttl; a job done in a millisecond left its ttl entry in
  // the heap for the day (and a cancelled or drained delayed job its delay entry until it was
  // due): at 1,000 jobs/s, 86 million entries a day, the job ids with them.
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const heap = (b as unknown as { heap: DueHeap }).heap;
  const job = { data: 1, ttl: 86_400_000, delay: 365 * 86_400_000 };
  for (let round = 0; round < 20; round++) {
    const r = await b.pushBulk('q', Array.from({ length: 1_000 }, () => job), ctx);
    t.equal(r.ok, true);
    await b.drain('q', ctx);
  }
  t.equal(b.state.jobs.size, 0);
  t.ok(heap.size <= dueHeapSlackEntries, `${heap.size} entries for no job`);
  // The jobs still held keep their moments: a rebuild drops only stale entries.
  const kept = await idOf(b.push('q', { data: 2, delay: 5_000 }, ctx));
  for (let round = 0; round < 10; round++) {
    await b.pushBulk('other', Array.from({ length: 1_000 }, () => job), ctx);
    await b.drain('other', ctx);
  }
  t.ok(heap.size <= dueHeapSlackEntries + 8, `${heap.size} entries for one job`);
  clock.advance(5_000);
  b.runDueTimers();
  t.equal(b.jobState(kept), 'waiting', 'and is promoted when due');
});
