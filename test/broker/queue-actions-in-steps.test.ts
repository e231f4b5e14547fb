// Queue-wide actions over more than actionStepJobsMax jobs run in steps, one per event-loop turn
// (broker.ts: stepped), so that other clients are served meanwhile. These tests pin what the steps
// must keep: the answer counts what was done, a job that moved on between steps (pulled, retried
// on its own, removed) is left as it is and not counted, a job pushed meanwhile is not drained,
// a drain, a clean of every waiting job or an obliterate hands out no job of its queue between its steps, obliterate leaves no
// job of the queue behind, a dependent set free goes before its dependency, and the log replays
// to the live state.

import t, { type Test } from 'tap';
import { actionStepJobsMax } from '../../src/constants.js';
import { digestOf } from '../../src/broker/digest.js';
import type { Broker } from '../../src/broker/broker.js';
import type { JobView, Outcome } from '../../src/broker/types.js';
import { manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import { ctx, many, pushMany } from './steps-fixture.js';


async function finishMany(b: Broker, queue: string, ids: string[], how: 'ack' | 'fail'): Promise<void> {
  for (let i = 0; i < ids.length; i += 1_000) {
    const calls: Promise<unknown>[] = [];
    for (const id of ids.slice(i, i + 1_000)) {
      calls.push(b.pull(queue, { timeoutMs: 0 }, ctx));
      calls.push(how === 'ack' ? b.ack(id, {}, ctx) : b.fail(id, { error: 'x' }, ctx));
    }
    await Promise.all(calls);
  }
}

/** Runs `between` after the action's first step and before its second (an immediate queued
 *  before the action's own). */
function meanwhile<T>(between: () => void, action: () => Promise<T>): Promise<T> {
  let ran = false;
  setImmediate(() => {
    between();
    ran = true;
  });
  const done = action();
  return done.then((value) => {
    if (!ran) throw new Error('the action ended before another client had a turn');
    return value;
  });
}

/** Between the steps of an action that holds the pulls of `queue`: a pull, a long poll and a push.
 *  Without the hold the pull would get a later step's job, handed to a worker by the action meant
 *  to remove it. `check` then asserts the hold: no job for the pull, and the push's job for the
 *  long poll once the action has ended. */
function pullsMeanwhile(b: Broker, queue: string): { run: () => void; check: (t: Test) => Promise<void> } {
  let pulled: unknown = 'unseen';
  let pushed = '';
  let polled: Promise<Outcome<{ job: JobView | null }>> = Promise.resolve({ ok: true, job: null });
  return {
    run() {
      void b.pull(queue, { timeoutMs: 0 }, ctx).then((r) => (pulled = r.ok ? r.job : r.code));
      polled = b.pull(queue, { timeoutMs: 60_000 }, ctx);
      const r = b.pushNow(queue, { data: 'late' }, ctx);
      pushed = 'id' in r ? r.id : '';
    },
    async check(t) {
      t.equal(pulled, null, 'a pull between the steps gets no job');
      const polledJob = await polled;
      t.equal(polledJob.ok && polledJob.job?.id, pushed, 'a long poll kept waiting gets the job pushed meanwhile once the action ends');
    },
  };
}

t.test('a-drain-in-steps-removes-what-waited-when-asked-and-hands-none-of-it-out', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const waiting = await pushMany(b, 'q', many);
  const delayed = await pushMany(b, 'q', 700, { delay: 60_000 });
  const pulls = pullsMeanwhile(b, 'q');
  const answer = await meanwhile(
    () => {
      pulls.run();
      void b.cancel(waiting[waiting.length - 1] as string, ctx);
      void b.promote(delayed[0] as string, ctx);
    },
    () => b.drain('q', ctx),
  );
  t.same(answer, { ok: true, removed: many + 700 - 1 }, 'the answer counts the jobs removed: not the one cancelled meanwhile, the one promoted meanwhile yes');
  await pulls.check(t);
  t.same(b.counts('q'), { waiting: 0, active: 1, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 });
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('a-clean-of-every-waiting-job-holds-pulls-and-one-of-some-does-not', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const waiting = await pushMany(b, 'q', many);
  const pulls = pullsMeanwhile(b, 'q');
  const all = await meanwhile(
    () => {
      pulls.run();
      // The last step's jobs go meanwhile: it appends nothing, and the long poll is woken anyway.
      for (const id of waiting.slice(actionStepJobsMax)) void b.cancel(id, ctx);
    },
    () => b.clean('q', { grace: 0, state: 'waiting' }, ctx),
  );
  t.same(all, { ok: true, removed: waiting.slice(0, actionStepJobsMax) }, 'the first step took its jobs; the rest went meanwhile');
  await pulls.check(t);

  const some = await pushMany(b, 'r', many + 10);
  let got: unknown = 'unseen';
  const limited = await meanwhile(
    () => void b.pull('r', { timeoutMs: 0 }, ctx).then((r) => (got = r.ok ? r.job?.id : r.code)),
    () => b.clean('r', { grace: 0, state: 'waiting', limit: many }, ctx),
  );
  t.ok(typeof got === 'string', 'a clean of some waiting jobs holds no pull');
  t.ok(limited.ok && limited.removed.length === many - (some.slice(0, many).includes(got as string) ? 1 : 0), 'and a job pulled meanwhile is not in its answer');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('an-obliterate-in-steps-hands-out-no-job-and-leaves-none-of-the-queue', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await finishMany(b, 'q', await pushMany(b, 'q', 600), 'ack');
  await pushMany(b, 'q', many);
  await pushMany(b, 'other', 3);
  let late = '';
  let pulled: unknown = 'unseen';
  const answer = await meanwhile(
    () => {
      const r = b.pushNow('q', { data: 'late', lifo: true }, ctx);
      late = 'id' in r ? r.id : '';
      // Unforced, an obliterate never removes an active job: none may become active meanwhile.
      void b.pull('q', { timeoutMs: 0 }, ctx).then((p) => (pulled = p.ok ? p.job : p.code));
    },
    () => b.obliterate('q', ctx),
  );
  t.same(answer, { ok: true });
  t.equal(pulled, null, 'a pull between the steps gets no job');
  t.notOk(b.state.jobs.has(late), 'a job pushed during the obliterate went with the queue');
  t.equal(b.state.queues.has('q'), false);
  t.equal(b.state.jobs.size, 3, "only the other queue's jobs are left");
  t.same(await b.pull('other', { timeoutMs: 0 }, ctx).then((p) => p.ok && p.job !== null), true, 'other queues were served throughout');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('an-obliterate-whose-jobs-all-went-meanwhile-still-forgets-the-queue', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ids = await pushMany(b, 'q', many);
  // Every job after the first step is cancelled between the steps: the last step finds the queue
  // empty, so only an idle queue's name is left for it to obliterate.
  const answer = await meanwhile(() => {
    for (const id of ids.slice(actionStepJobsMax)) void b.cancel(id, ctx);
  }, () => b.obliterate('q', ctx));
  t.same(answer, { ok: true });
  t.same(b.listQueues(), [], 'the emptied queue is not left listed with zero counts');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('dlq-retry-purge-promote-and-clean-in-steps-count-what-they-did', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const dead = await pushMany(b, 'r', many, { maxAttempts: 1 });
  await finishMany(b, 'r', dead, 'fail');
  const last = dead[dead.length - 1] as string;
  const retried = await meanwhile(() => void b.retry(last, ctx), () => b.dlqRetry('r', undefined, ctx));
  t.same(retried, { ok: true, retried: many - 1 }, 'a job retried on its own meanwhile is not counted twice');
  t.same(b.counts('r').waiting, many);

  const purgeable = await pushMany(b, 'p', many, { maxAttempts: 1 });
  await finishMany(b, 'p', purgeable, 'fail');
  const purged = await meanwhile(() => void b.cancel(purgeable[purgeable.length - 1] as string, ctx), () => b.dlqPurge('p', ctx));
  t.same(purged, { ok: true, purged: many - 1 }, 'a job removed meanwhile is not counted');
  t.same(b.counts('p').failed, 0);

  const delayed = await pushMany(b, 'd', many, { delay: 60_000 });
  const promoted = await meanwhile(() => void b.cancel(delayed[delayed.length - 1] as string, ctx), () => b.promoteJobs('d', {}, ctx));
  t.same(promoted, { ok: true, promoted: many - 1 });
  t.same(b.counts('d'), { waiting: many - 1, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 });

  const waiting = await pushMany(b, 'c', many);
  const cleaned = await meanwhile(() => void b.cancel(waiting[waiting.length - 1] as string, ctx), () => b.clean('c', { grace: 0, state: 'waiting', limit: many }, ctx));
  t.same(cleaned, { ok: true, removed: waiting.slice(0, -1) }, 'the answer lists the jobs removed, oldest first, not the one cancelled meanwhile');
  t.equal(b.counts('c').waiting, 0);
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});

t.test('a-close-between-steps-ends-the-action-with-the-steps-taken-in-the-log', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await pushMany(b, 'q', many);
  const answer = await meanwhile(() => void b.close(), () => b.drain('q', ctx));
  t.same(answer, { ok: false, code: 'UNAVAILABLE', error: `Broker is closed; stopped after ${actionStepJobsMax} of ${many} jobs` }, 'the answer says how far the action went');
  t.equal(b.counts('q').waiting, many - actionStepJobsMax, 'the first step was taken, no later one');
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log holds exactly the steps taken');
});

t.test('a-log-failing-between-steps-ends-the-action-saying-how-far-it-went', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const failed = await pushMany(b, 'r', many, { maxAttempts: 1 });
  await finishMany(b, 'r', failed, 'fail');
  // The next step's append throws at once, as it does once a sync has failed (LOG_FAILED); a
  // closed log is the way to get there without waiting for a sync.
  const answer = await meanwhile(() => void f.log.close(), () => b.dlqRetry('r', undefined, ctx));
  t.same(answer, { ok: false, code: 'STORAGE_FAULT', error: `Storage failure: log is closed; stopped after ${actionStepJobsMax} of ${many} jobs` }, 'the answer counts only the steps applied');
  t.equal(b.counts('r').failed, many - actionStepJobsMax, 'the step whose append failed applied nothing');
});

t.test('a-dependent-an-action-sets-free-goes-in-its-first-step-never-left-waiting-between-steps', async (t) => {
  const f = await startBroker({ clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  // `after` waits for the first job only; removing that job (first step) would set it free at the
  // front of the queue, to be pulled between the steps and run without the work it waits for.
  const waiting = await pushMany(b, 'c', many);
  const [after] = await pushMany(b, 'c', 1, { dependsOn: [waiting[0]] });
  let between: string | null = 'unseen';
  let pulled: unknown = 'unseen';
  const cleaned = await meanwhile(
    () => {
      between = b.jobState(after as string);
      void b.pull('c', { timeoutMs: 0 }, ctx).then((r) => (pulled = r.ok ? (r.job?.id ?? null) : r.code));
    },
    () => b.clean('c', { grace: 0, state: 'waiting', limit: many }, ctx),
  );
  t.equal(between, null, 'the dependent was removed in the first step, with its dependency');
  t.equal(pulled, null, 'it was never handed out, nor any job the clean removes (it takes every waiting job)');
  if (!cleaned.ok) throw new Error(cleaned.error);
  t.equal(cleaned.removed.length, many + 1, 'every waiting job, and the dependent');
  t.equal(cleaned.removed[cleaned.removed.length - 1], after, 'the answer lists it after the jobs picked, as always');

  const head = (await pushMany(b, 'd', many))[0] as string;
  const [parent] = await pushMany(b, 'd', 1, { dependsOn: [head] });
  let state: string | null = 'unseen';
  const drained = await meanwhile(() => (state = b.jobState(parent as string)), () => b.drain('d', ctx));
  t.equal(state, null, "a drain's dependent goes in its first step too");
  t.same(drained, { ok: true, removed: many + 1 });
  t.equal(digestOf(await replayLog(f.log)), digestOf(b.state), 'the log replays to the live state');
});
