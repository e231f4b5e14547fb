// A drain or an obliterate of a restored queue, whose waiting jobs are cold rows
// (src/state/cold-jobs.ts), makes them into jobs a step at a time: the first step has made at most
// a step's worth (it made every one before, doubling the server's memory for a big queue), also
// when the drain removes a job waiting for children with the child it waits for; and a
// row removed between two steps is passed over, not counted or removed twice; and with work between
// its steps, or an obliterate of the same queue at once, it decides what the same actions over
// jobs decide (the steps fall in the same places, whatever became of their rows).

import t, { type Test } from 'tap';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { actionStepJobsMax } from '../../src/constants.js';
import { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { JobState } from '../../src/record/types.js';
import { waitIterate } from '../../src/state/index.js';
import { comparableState, manualClock, startBroker } from '../fixtures/broker.js';
import { ctx, many, pushMany } from './steps-fixture.js';

/** A data directory holding `many` waiting jobs in each of `queues` (and one delayed job each;
 *  with `parents`, also a job `parent-<queue>` waiting for the last of them), and their ids,
 *  pushed at the clock's start. */
async function filled(t: Test, queues: string[], parents = false): Promise<{ dir: string; ids: Map<string, string[]> }> {
  const f = await startBroker({ sync: 'always', clock: manualClock().now });
  t.teardown(() => f.cleanup());
  const ids = new Map<string, string[]>();
  for (const queue of queues) {
    const mine = await pushMany(f.broker, queue, many);
    await f.broker.push(queue, { data: 'later', delay: 60_000 }, ctx);
    if (parents) await f.broker.push(queue, { data: 'parent', jobId: `parent-${queue}`, dependsOn: [mine.at(-1) as string] }, ctx);
    ids.set(queue, mine);
  }
  await f.broker.close();
  await f.log.close();
  return { dir: f.dir, ids };
}

/** A broker on a copy of `dir`, its state rebuilt by a replay (the waiting jobs are cold rows). */
async function restoredCopy(t: Test, dir: string): Promise<Broker> {
  const scratch = await mkdtemp(join(tmpdir(), 'tapeq-cold-actions-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  await cp(dir, join(scratch, 'data'), { recursive: true });
  const log = await Log.open({ dir: join(scratch, 'data'), sync: 'always', logger: () => undefined });
  const loaded = await loadState({ log, dir: join(scratch, 'no-snapshots'), logger: () => undefined });
  const broker = new Broker({ log, state: loaded.state, clock: manualClock().now });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  return broker;
}

async function restored(t: Test, queues: string[]): Promise<{ broker: Broker; ids: Map<string, string[]> }> {
  const { dir, ids } = await filled(t, queues);
  const broker = await restoredCopy(t, dir);
  t.equal(broker.state.cold.rows, many * queues.length, 'every waiting job is a cold row after the replay');
  return { broker, ids };
}

t.test('a-drain-of-a-restored-queue-makes-its-jobs-a-step-at-a-time-and-passes-over-rows-removed-meanwhile', async (t) => {
  const { broker, ids } = await restored(t, ['q']);
  const draining = broker.drain('q', ctx);
  t.ok(broker.state.cold.rows >= many - actionStepJobsMax, `after the first step ${broker.state.cold.rows} rows are still rows`);
  const last = ids.get('q')?.at(-1) as string;
  const cancelled = await broker.cancel(last, ctx);
  t.ok(cancelled.ok, 'a job still a row is cancelled between two steps');
  const out = await draining;
  // Every waiting job but the cancelled one, and the delayed one.
  t.same(out, { ok: true, removed: many }, 'the cancelled job is not counted');
  t.equal(broker.counts('q').waiting, 0);
  t.equal(broker.counts('q').delayed, 0);
  t.equal(broker.state.cold.rows, 0, 'no row left');
  t.equal(broker.getJob(last), null);
});

t.test('an-obliterate-of-a-restored-queue-makes-its-jobs-a-step-at-a-time', async (t) => {
  const { broker } = await restored(t, ['q', 'other']);
  const obliterating = broker.obliterate('q', ctx);
  t.ok(broker.state.cold.rows >= 2 * many - actionStepJobsMax, `after the first step ${broker.state.cold.rows} rows are still rows`);
  t.same(await obliterating, { ok: true });
  t.notOk(broker.state.queues.has('q'), 'the queue is gone');
  t.equal(broker.state.cold.rows, many, "the other queue's rows are still rows");
  t.equal(broker.counts('other').waiting, many);
});

t.test('a-drain-over-rows-with-work-between-its-steps-decides-as-the-same-drain-over-jobs', async (t) => {
  const { dir, ids } = await filled(t, ['q']);
  const mine = ids.get('q') as string[];
  const rows = await restoredCopy(t, dir);
  const made = await restoredCopy(t, dir);
  let waiting = 0;
  for (const queue of made.state.queues.values()) for (const job of waitIterate(queue.waiting)) waiting += job.id === '' ? 0 : 1;
  t.equal(waiting, many);
  t.equal(made.state.cold.rows, 0, 'every row of the second broker made into a job before the drain');
  const run = async (broker: Broker): Promise<string[]> => {
    const draining = broker.drain('q', ctx);
    // Between the first and the second step (each call below applies its record at once):
    const seen = JSON.stringify(broker.getJob(mine[actionStepJobsMax + 7] as string)); // a row of a later step made into a job now
    const cancel = broker.cancel(mine[many - 1] as string, ctx); // one of the last step removed first
    const push = broker.push('q', { data: 'between', jobId: 'between' }, ctx); // pushed during the drain
    const pull = broker.pull('q', { timeoutMs: 0 }, ctx); // pulls of a draining queue get no job
    const answers = (await Promise.all([draining, cancel, push, pull])).map((answer) => JSON.stringify(answer));
    return [seen, ...answers, comparableState(broker.state)];
  };
  const overRows = await run(rows);
  const overJobs = await run(made);
  t.same(overRows.slice(0, -1), overJobs.slice(0, -1), 'the same answers');
  t.ok(overRows.at(-1) === overJobs.at(-1), 'the same state after');
  t.same(JSON.parse(overRows[1] as string), { ok: true, removed: many }, 'the waiting jobs but the cancelled one, and the delayed one');
  t.same(JSON.parse(overRows[4] as string), { ok: true, job: null, token: null });
  t.equal(rows.counts('q').waiting, 1, 'the job pushed during the drain waits');
  t.equal(rows.state.cold.rows, 0);
});

t.test('a-drain-and-an-obliterate-of-one-restored-queue-at-once-decide-as-over-jobs', async (t) => {
  const { dir } = await filled(t, ['q']);
  const rows = await restoredCopy(t, dir);
  const made = await restoredCopy(t, dir);
  for (const queue of made.state.queues.values()) for (const job of waitIterate(queue.waiting)) job.id.toString();
  t.equal(made.state.cold.rows, 0, 'every row of the second broker made into a job first');
  const run = async (broker: Broker): Promise<string[]> => {
    const answers = await Promise.all([broker.drain('q', ctx), broker.obliterate('q', ctx, true)]);
    return [...answers.map((answer) => JSON.stringify(answer)), comparableState(broker.state)];
  };
  const overRows = await run(rows);
  const overJobs = await run(made);
  t.same(overRows, overJobs, 'the same answers and the same state after');
  t.same(JSON.parse(overRows[1] as string), { ok: true });
  t.notOk(rows.state.queues.has('q'));
  t.equal(rows.state.cold.rows, 0);
});

t.test('a-drain-that-removes-a-parent-with-its-child-still-makes-the-rows-a-step-at-a-time', async (t) => {
  const { dir } = await filled(t, ['q'], true);
  const broker = await restoredCopy(t, dir);
  t.equal(broker.state.jobs.get('parent-q')?.state, JobState.WAITING_CHILDREN, 'the parent waits for its child, a row');
  const rowsBefore = broker.state.cold.rows;
  const draining = broker.drain('q', ctx);
  t.ok(broker.state.cold.rows >= rowsBefore - actionStepJobsMax - 1, `after the first step ${broker.state.cold.rows} of ${rowsBefore} rows are still rows`);
  t.equal(broker.state.jobs.get('parent-q'), undefined, 'the parent went in the first step, before its child');
  t.same(await draining, { ok: true, removed: many + 2 }, 'every waiting job, the delayed one and the parent');
  t.equal(broker.state.cold.rows, 0);
});
