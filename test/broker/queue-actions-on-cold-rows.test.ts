// A drain or an obliterate of a restored queue, whose waiting jobs are cold rows
// (src/state/cold-jobs.ts), makes them into jobs a step at a time: the first step has made at most
// a step's worth (it made every one before, doubling the server's memory for a big queue), and a
// row removed between two steps is passed over, not counted or removed twice.

import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { actionStepJobsMax } from '../../src/constants.js';
import { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };
const jobs = 2 * actionStepJobsMax + 1_000;

/** A broker whose state was rebuilt by a replay of `jobs` waiting jobs in each of `queues` (and
 *  one delayed job each): the waiting ones are cold rows. */
async function restored(t: Test, queues: string[]): Promise<{ broker: Broker; ids: Map<string, string[]> }> {
  const f = await startBroker({ sync: 'always' });
  t.teardown(() => f.cleanup());
  const ids = new Map<string, string[]>();
  for (const queue of queues) {
    const mine: string[] = [];
    for (let i = 0; i < jobs; i += 1_000) {
      const out = await f.broker.pushBulk(queue, Array.from({ length: Math.min(1_000, jobs - i) }, (_, k) => ({ data: { n: i + k } })), ctx);
      if (!out.ok) throw new Error(out.error);
      mine.push(...out.ids);
    }
    await f.broker.push(queue, { data: 'later', delay: 60_000 }, ctx);
    ids.set(queue, mine);
  }
  await f.broker.close();
  await f.log.close();
  const log = await Log.open({ dir: f.dir, sync: 'always', logger: () => undefined });
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-no-snapshots-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  const loaded = await loadState({ log, dir: snapshots, logger: () => undefined });
  const broker = new Broker({ log, state: loaded.state });
  t.teardown(async () => {
    await broker.close();
    await log.close();
  });
  t.equal(broker.state.cold.rows, jobs * queues.length, 'every waiting job is a cold row after the replay');
  return { broker, ids };
}

t.test('a-drain-of-a-restored-queue-makes-its-jobs-a-step-at-a-time-and-passes-over-rows-removed-meanwhile', async (t) => {
  const { broker, ids } = await restored(t, ['q']);
  const draining = broker.drain('q', ctx);
  t.ok(broker.state.cold.rows >= jobs - actionStepJobsMax, `after the first step ${broker.state.cold.rows} rows are still rows`);
  const last = ids.get('q')?.at(-1) as string;
  const cancelled = await broker.cancel(last, ctx);
  t.ok(cancelled.ok, 'a job still a row is cancelled between two steps');
  const out = await draining;
  // Every waiting job but the cancelled one, and the delayed one.
  t.same(out, { ok: true, removed: jobs }, 'the cancelled job is not counted');
  t.equal(broker.counts('q').waiting, 0);
  t.equal(broker.counts('q').delayed, 0);
  t.equal(broker.state.cold.rows, 0, 'no row left');
  t.equal(broker.getJob(last), null);
});

t.test('an-obliterate-of-a-restored-queue-makes-its-jobs-a-step-at-a-time', async (t) => {
  const { broker } = await restored(t, ['q', 'other']);
  const obliterating = broker.obliterate('q', ctx);
  t.ok(broker.state.cold.rows >= 2 * jobs - actionStepJobsMax, `after the first step ${broker.state.cold.rows} rows are still rows`);
  t.same(await obliterating, { ok: true });
  t.notOk(broker.state.queues.has('q'), 'the queue is gone');
  t.equal(broker.state.cold.rows, jobs, "the other queue's rows are still rows");
  t.equal(broker.counts('other').waiting, jobs);
});
