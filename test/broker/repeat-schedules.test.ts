// Repeat schedule identity (Repeat.key): every instance of a schedule carries its key, and a
// repeating push with the key as jobId answers the schedule's newest live instance instead of
// starting a second chain; once the schedule has ended, the same push starts a fresh one. The
// user-visible path over HTTP and across restarts: test/e2e/repeat-schedule-identity.test.ts.

import t from 'tap';
import type { Broker } from '../../src/broker/broker.js';
import { scheduleHolder } from '../../src/state/index.js';
import { idOf, manualClock, pullToken, startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

async function runOnce(b: Broker, queue: string): Promise<string> {
  const { id, token } = await pullToken(b, queue);
  t.same(await b.ack(id, { token }, ctx), { ok: true });
  return id;
}

t.test('every-instance-carries-the-key-a-push-without-jobId-takes-its-first-id', async (t) => {
  const f = await startBroker({ clock: manualClock().now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const first = await idOf(b.push('q', { data: 1, repeat: { every: 1_000 } }, ctx));
  t.equal(b.getJob(first)?.repeat?.key, first);
  await runOnce(b, 'q');
  const next = scheduleHolder(b.state, 'q', first);
  t.not(next?.id, first, 'the next instance has an id of its own');
  t.equal(next?.repeat?.key, first, 'and the schedule key');
  const plain = await idOf(b.push('q', { data: 2 }, ctx));
  t.equal(b.state.jobs.get(plain)?.options, null, 'a plain job still holds no options');
  t.equal(b.state.schedules.size, 1, 'only schedules are indexed');
});

t.test('a-repeating-push-answers-the-newest-live-instance-whatever-its-repeat-options', async (t) => {
  const f = await startBroker({ clock: manualClock().now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const body = { data: 1, jobId: 'nightly', repeat: { every: 60_000 }, removeOnComplete: true };
  t.equal(await idOf(b.push('q', body, ctx)), 'nightly');
  t.equal(await idOf(b.push('q', body, ctx)), 'nightly', 'the first instance, while it is the only one');
  await runOnce(b, 'q');
  t.equal(b.getJob('nightly'), null, 'the first instance is gone (removeOnComplete)');
  const pending = scheduleHolder(b.state, 'q', 'nightly')?.id as string;
  t.equal(await idOf(b.push('q', body, ctx)), pending, 'the pending next run answers');
  const other = { ...body, repeat: { every: 5_000, limit: 3 } };
  t.equal(await idOf(b.push('q', other, ctx)), pending, 'other repeat options: the same schedule');
  t.equal(b.getJob(pending)?.repeat?.every, 60_000, 'left as it was');
  t.equal(b.state.jobs.size, 1, 'no second chain');
  t.equal(await idOf(b.push('q', { data: 1, jobId: 'nightly' }, ctx)), 'nightly', 'a push without repeat is a plain job, as before');
});

t.test('a-schedule-ends-when-its-last-instance-finishes-then-a-push-starts-it-again', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const removed = { data: 1, jobId: 'gone', repeat: { every: 1_000, limit: 1 }, removeOnComplete: true };
  t.equal(await idOf(b.push('q', removed, ctx)), 'gone');
  const { id, token } = await pullToken(b, 'q');
  t.equal(await idOf(b.push('q', removed, ctx)), 'gone', 'the running last instance still holds the schedule');
  await b.ack(id, { token }, ctx);
  t.equal(await idOf(b.push('q', removed, ctx)), 'gone', 'ended, and the id free: a fresh schedule under it');
  t.equal(b.getJob('gone')?.repeat?.count, 0, 'counted from the start');
  await runOnce(b, 'q');

  const kept = { data: 1, jobId: 'kept', repeat: { every: 1_000, limit: 2 } };
  t.equal(await idOf(b.push('q', kept, ctx)), 'kept');
  await runOnce(b, 'q');
  clock.advance(1_000);
  b.runDueTimers();
  const second = await runOnce(b, 'q');
  t.not(second, 'kept');
  const fresh = await idOf(b.push('q', kept, ctx));
  t.notOk(['kept', second].includes(fresh), 'ended, the first instance kept: a fresh schedule under a new id');
  t.same(b.getJob(fresh)?.repeat, { every: 1_000, limit: 2, count: 0, key: 'kept' });
  t.equal(await idOf(b.push('q', kept, ctx)), fresh, 'which answers from then on');
});

t.test('cancelling-the-pending-run-ends-the-schedule-once-the-running-one-finishes', async (t) => {
  const f = await startBroker({ clock: manualClock().now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const body = { data: 1, jobId: 'c', repeat: { every: 1_000 } };
  await idOf(b.push('q', body, ctx));
  const { token } = await pullToken(b, 'q');
  const pending = scheduleHolder(b.state, 'q', 'c')?.id as string;
  t.same(await b.cancel(pending, ctx), { ok: true });
  t.equal(await idOf(b.push('q', body, ctx)), 'c', 'the running instance still answers');
  await b.ack('c', { token }, ctx);
  const fresh = await idOf(b.push('q', body, ctx));
  t.notOk(['c', pending].includes(fresh), 'a fresh schedule');
  t.equal(b.getJob(fresh)?.state, 'waiting');
});

t.test('the-schedule-index-is-rebuilt-by-replay', async (t) => {
  const f = await startBroker({ clock: manualClock().now, start: false });
  const b = f.broker;
  const body = { data: 1, jobId: 'r', repeat: { every: 1_000 }, removeOnComplete: true };
  await idOf(b.push('q', body, ctx));
  await runOnce(b, 'q');
  const pending = scheduleHolder(b.state, 'q', 'r')?.id as string;
  const again = await f.restart();
  t.teardown(() => again.cleanup());
  t.equal(await idOf(again.broker.push('q', body, ctx)), pending);
});

t.test('a-late-every-run-keeps-the-schedules-phase-and-is-not-followed-at-once-by-another', async (t) => {
  const clock = manualClock();
  const start = clock.now();
  let f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  await idOf(f.broker.push('q', { data: 1, repeat: { every: 1_000 } }, ctx));
  await runOnce(f.broker, 'q');
  f = await f.restart();
  clock.advance(10_500);
  f.broker.runDueTimers();
  const late = await runOnce(f.broker, 'q');
  t.equal(f.broker.getJob(late)?.repeat?.count, 1, 'the missed run 1 runs once, late');
  const next = f.broker.listJobs('q', ['delayed', 'waiting'], 0, 10).jobs;
  t.same(next.map((j) => [j.repeat?.count, j.runAt]), [[2, start + 11_000]], 'the next run is the next slot of the schedule, not now');
  t.same(await f.broker.pull('q', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null }, 'no second run right after the catch-up');
});
