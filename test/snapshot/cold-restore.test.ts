// A state restored from a snapshot, or rebuilt by a replay at start, keeps most waiting jobs as
// cold rows (src/state/cold-jobs.ts) until they are touched. This proves brokers on such states
// decide exactly what a broker whose jobs are all objects decides, operation by operation, and end
// in the same state.

import t from 'tap';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { waitEntries, type State } from '../../src/state/index.js';
import { comparableState, manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import { prng } from './workload.js';

const seed = Number(process.env.TAPEQ_SEED ?? Date.now() % 1_000_000);
t.comment(`seed ${seed} (TAPEQ_SEED=${seed} replays it)`);

const ctx = { actor: { name: 'test', address: '127.0.0.1' } };
const queues = ['alpha', 'beta', 'gamma'];

/** Every queue's waiting ids in pull order, read without making a cold row into a job. */
function waitingOrder(state: State): string {
  const names = [...state.queues.keys()].sort();
  return JSON.stringify(
    names.map((name) => [...waitEntries(state.queues.get(name)!.waiting)].map((e) => (typeof e === 'number' ? state.cold.row(e).id : e.id))),
  );
}

/** What an outcome tells a client, lock tokens blanked. */
function told(value: unknown): string {
  return JSON.stringify(value, (key, v: unknown) => (key === 'token' || key === 'lockToken') && typeof v === 'string' ? 'token' : v);
}

t.test('a-broker-on-a-snapshot-with-cold-rows-decides-and-ends-as-one-on-the-replayed-state', async (t) => {
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, sync: 'always' });
  t.teardown(() => f.cleanup());
  const scratch = await mkdtemp(join(tmpdir(), 'tapeq-cold-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));

  // Jobs of every kind a restore meets: plain ones (cold rows) and the ones that must be jobs
  // from the start (ids beyond ASCII, ttl, unique keys, payloads too large for the arena,
  // delayed, active, finished).
  const ids: string[] = [];
  for (let i = 0; i < 1_500; i++) {
    clock.advance(1);
    const roll = random();
    const input: Record<string, unknown> = { data: { i, text: 'x'.repeat(Math.floor(random() * 60)) }, priority: Math.floor(random() * 4) };
    input.jobId = roll < 0.05 ? `jöb-${i}` : `job-${i}`;
    if (roll >= 0.05 && roll < 0.1) input.ttl = 3_600_000;
    else if (roll < 0.15) input.uniqueKey = `key-${i % 40}`;
    else if (roll < 0.17) input.data = { big: 'y'.repeat(20_000) };
    else if (roll < 0.2) input.delay = 500;
    else if (roll < 0.25) input.lifo = true;
    else if (roll < 0.35) input.maxAttempts = 5;
    else if (roll < 0.4) input.name = `name-${i % 3}`;
    const out = await f.broker.push(pick(queues), input, ctx);
    if (out.ok) ids.push(out.id);
  }
  for (let i = 0; i < 100; i++) {
    const out = await f.broker.pull(pick(queues), { timeoutMs: 0 }, ctx);
    if (out.ok && out.job && i % 2 === 0) await f.broker.ack(out.job.id, { token: out.token as string }, ctx);
  }

  const snapshots = join(scratch, 'snapshots');
  await writeStateSnapshot(snapshots, f.broker.state);
  const copy = join(scratch, 'log');
  await cp(f.dir, copy, { recursive: true });
  const log = await Log.open({ dir: copy, sync: 'always', logger: () => undefined });
  const loaded = await loadState({ log, dir: snapshots, logger: () => undefined });
  t.ok(loaded.fromSnapshot !== null, 'restored from the snapshot');
  const rows = loaded.state.cold.rows;
  const waiting = queues.reduce((n, q) => n + f.broker.counts(q).waiting, 0);
  t.ok(rows > waiting / 2, `most waiting jobs are cold rows (${rows} of ${waiting})`);
  t.ok(rows < waiting, 'jobs that need more than a row are jobs');
  t.equal(comparableState(loaded.state), comparableState(await replayLog(f.log)), 'restored = replayed');
  t.equal(loaded.state.cold.rows, 0, 'comparing made every job');

  // Again, now untouched, under a broker; and a third broker on a full replay of another copy of
  // the log, whose pushed waiting jobs are cold rows too. The same operations on all three.
  const again = await loadState({ log, dir: snapshots, logger: () => undefined });
  // Writing a snapshot of the restored state leaves its rows cold and writes the same bytes.
  const rowsBefore = again.state.cold.rows;
  const rewritten = await readFile(await writeStateSnapshot(join(scratch, 'rewritten'), again.state));
  t.equal(again.state.cold.rows, rowsBefore, 'the snapshot writer makes no row into a job');
  t.ok(rewritten.equals(await readFile(await writeStateSnapshot(join(scratch, 'original'), f.broker.state))), 'same bytes as a snapshot of the original');
  const replayCopy = join(scratch, 'log-replayed');
  await cp(f.dir, replayCopy, { recursive: true });
  const replayLogCopy = await Log.open({ dir: replayCopy, sync: 'always', logger: () => undefined });
  const replayed = await loadState({ log: replayLogCopy, dir: join(scratch, 'none'), logger: () => undefined });
  t.equal(replayed.fromSnapshot, null, 'the third state is a full replay');
  const replayedRows = replayed.state.cold.rows;
  t.ok(replayedRows > waiting / 2, `and most of its waiting jobs are cold rows (${replayedRows})`);
  const coldClock = manualClock();
  coldClock.set(clock.now());
  const cold = new Broker({ log, state: again.state, clock: coldClock.now });
  const replayClock = manualClock();
  replayClock.set(clock.now());
  const fromReplay = new Broker({ log: replayLogCopy, state: replayed.state, clock: replayClock.now });
  t.teardown(async () => {
    await cold.close();
    await log.close();
    await fromReplay.close();
    await replayLogCopy.close();
  });
  const brokers = [f.broker, cold, fromReplay];
  const active: Array<Array<{ id: string; token: string }>> = [[], [], []];
  let pulls = 0;
  for (let i = 0; i < 1_500; i++) {
    const step = Math.floor(random() * 20);
    clock.advance(step);
    coldClock.advance(step);
    replayClock.advance(step);
    const queue = pick(queues);
    const id = pick(ids);
    const roll = random();
    const priority = Math.floor(random() * 6);
    const which = random();
    const answers: string[] = [];
    for (const [b, broker] of brokers.entries()) {
      let answer: unknown;
      if (roll < 0.35) {
        const out = await broker.pull(queue, { timeoutMs: 0 }, ctx);
        if (out.ok && out.job) (active[b] as Array<{ id: string; token: string }>).push({ id: out.job.id, token: out.token as string });
        answer = out;
        if (b === 0) pulls++;
      } else if (roll < 0.5) {
        const mine = active[b] as Array<{ id: string; token: string }>;
        const job = mine.splice(Math.floor(which * mine.length), 1)[0];
        answer = job === undefined ? null : await (which < 0.7 ? broker.ack(job.id, { token: job.token }, ctx) : broker.fail(job.id, { error: 'no', token: job.token }, ctx));
      } else if (roll < 0.6) answer = broker.getJob(id);
      else if (roll < 0.68) answer = await broker.cancel(id, ctx);
      else if (roll < 0.76) answer = await broker.changePriority(id, priority, ctx);
      else if (roll < 0.8) answer = broker.counts(queue);
      else if (roll < 0.83) answer = await broker.clean(queue, { grace: 0, state: which < 0.5 ? 'waiting' : 'prioritized', limit: 5 }, ctx);
      else if (roll < 0.85) answer = await broker.promote(id, ctx);
      else answer = await broker.push(queue, { data: { i }, jobId: `new-${i}`, priority, lifo: which < 0.3 }, ctx);
      answers.push(told(answer));
    }
    const order = waitingOrder(f.broker.state);
    if (waitingOrder(cold.state) !== order || waitingOrder(fromReplay.state) !== order) {
      t.fail(`operation ${i} left the wait lists different`);
      break;
    }
    if (answers[0] !== answers[1] || answers[0] !== answers[2]) {
      t.fail(`operation ${i} answered differently: ${answers[1]} / ${answers[2]} instead of ${answers[0]}`);
      break;
    }
  }
  t.ok(pulls > 300, `the operations pulled (${pulls} pulls)`);
  t.ok(again.state.cold.rows < rows, 'operations made some rows into jobs');
  t.ok(replayed.state.cold.rows < replayedRows, 'and on the replayed state');
  t.equal(comparableState(again.state), comparableState(f.broker.state), 'the restored broker ends in the same state');
  t.equal(comparableState(replayed.state), comparableState(f.broker.state), 'so does the replayed one');
});
