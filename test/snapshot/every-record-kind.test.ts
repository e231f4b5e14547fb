// Snapshot + tail = full replay for a workload that writes every record kind: repeats,
// dependencies, unique keys, DLQ retries and purges, drains, cleans, obliterations, worker
// registrations, stalls and timeouts (a manual clock and runDueTimers), progress and logs,
// paused queues, removeOnComplete/removeOnFail. A snapshot is taken at many cut points (a replay
// of the prefix, written in format 2 and in format 1), loaded with loadState, and compared with a
// full replay by the state digest and by the indexes the digest does not hold (unique keys,
// dependents). Seeded: TAPEQ_SEED replays a run.

import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Broker } from '../../src/broker/broker.js';
import { digestOf } from '../../src/broker/digest.js';
import type { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { writeSnapshot, writeStateSnapshot } from '../../src/snapshot/store.js';
import { apply, createState, exportState, type State } from '../../src/state/index.js';
import { manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import { prng } from './workload.js';

const seed = Number(process.env.TAPEQ_SEED ?? Date.now() % 1_000_000);
t.comment(`seed ${seed} (TAPEQ_SEED=${seed} replays it)`);

const ctx = { actor: { name: 'test', address: '127.0.0.1' } };
const queues = ['alpha', 'beta', 'gamma'];

/** The indexes derived from the jobs that the digest does not hash. */
function indexes(state: State): string {
  const unique = [...state.uniqueKeys.entries()].map(([k, j]) => [k, j.id]).sort();
  const shared = [...state.uniqueShared.entries()].map(([k, js]) => [k, js.map((j) => j.id)]).sort();
  const dependents = [...state.dependents.entries()]
    .filter(([, set]) => set.size > 0)
    .map(([k, set]) => [k, [...set].map((j) => j.id).sort()])
    .sort();
  return JSON.stringify({ unique, shared, dependents });
}

async function workload(broker: Broker, ops: number, random: () => number, clock: ReturnType<typeof manualClock>): Promise<void> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const known: string[] = [];
  const active: Array<{ id: string; token: string }> = [];
  for (let i = 0; i < ops; i++) {
    clock.advance(Math.floor(random() * 400));
    broker.runDueTimers();
    const queue = pick(queues);
    const roll = random();
    if (roll < 0.3) {
      const opts: Record<string, unknown> = { data: { i, s: 'x'.repeat(Math.floor(random() * 40)) }, priority: Math.floor(random() * 4) };
      const kind = random();
      if (kind < 0.08) opts.repeat = { every: 1_000 + Math.floor(random() * 2_000), limit: 1 + Math.floor(random() * 4) };
      else if (kind < 0.18 && known.length > 0) opts.dependsOn = [pick(known), pick(known)];
      else if (kind < 0.28) opts.uniqueKey = `u-${i % 7}`;
      else if (kind < 0.34) opts.delay = Math.floor(random() * 3_000);
      else if (kind < 0.4) opts.ttl = 500 + Math.floor(random() * 2_000);
      else if (kind < 0.45) opts.timeout = 300 + Math.floor(random() * 1_000);
      else if (kind < 0.52) opts.removeOnComplete = random() < 0.5 ? true : { count: 2 };
      else if (kind < 0.58) opts.removeOnFail = { count: 1 };
      else if (kind < 0.63) opts.lifo = true;
      else if (kind < 0.68) opts.jobId = `custom-${i % 50}`;
      else if (kind < 0.7) opts.jobId = `jöb-${i}`;
      else if (kind < 0.75) opts.name = `n${i % 3}`;
      opts.maxAttempts = 1 + Math.floor(random() * 3);
      opts.backoff = Math.floor(random() * 500);
      const out = await broker.push(queue, opts, ctx);
      if (out.ok) known.push(out.id);
    } else if (roll < 0.5) {
      const lockMs = random() < 0.3 ? 200 : 30_000;
      const out = await broker.pull(queue, { timeoutMs: 0, lockMs }, ctx);
      if (out.ok && out.job) active.push({ id: out.job.id, token: out.token as string });
    } else if (roll < 0.64 && active.length > 0) {
      const job = active.splice(Math.floor(random() * active.length), 1)[0] as { id: string; token: string };
      if (random() < 0.6) await broker.ack(job.id, { result: { r: i }, token: job.token }, ctx);
      else await broker.fail(job.id, { error: `e${i}`, token: job.token }, ctx);
    } else if (roll < 0.69 && active.length > 0) {
      const job = pick(active);
      await broker.progress(job.id, { progress: Math.floor(random() * 100), message: `m${i}` }, ctx);
      await broker.addLog(job.id, `log ${i}`, ctx);
    } else if (roll < 0.72 && known.length > 0) await broker.cancel(pick(known), ctx);
    else if (roll < 0.75 && known.length > 0) await broker.promote(pick(known), ctx);
    else if (roll < 0.78 && known.length > 0) await broker.retry(pick(known), ctx);
    else if (roll < 0.8 && known.length > 0) await broker.changePriority(pick(known), Math.floor(random() * 9), ctx);
    else if (roll < 0.83) await (random() < 0.5 ? broker.pause(queue, ctx) : broker.resume(queue, ctx));
    else if (roll < 0.84) await broker.drain(queue, ctx);
    else if (roll < 0.86) await broker.clean(queue, { grace: 0, state: pick(['completed', 'failed', 'waiting', 'delayed']), limit: 3 }, ctx);
    else if (roll < 0.865) await broker.obliterate(queue, ctx, true);
    else if (roll < 0.88) await broker.promoteJobs(queue, {}, ctx);
    else if (roll < 0.9) await broker.dlqRetry(queue, random() < 0.5 || known.length === 0 ? undefined : pick(known), ctx);
    else if (roll < 0.91) await broker.dlqPurge(queue, ctx);
    else if (roll < 0.93) {
      await broker.registerWorker(
        {
          queue,
          endpoint: { url: `http://127.0.0.1:9/${queue}`, method: 'POST', headers: {}, timeout: 3_000 },
          opts: { concurrency: 2, limiter: null, removeOnComplete: { count: 3 }, removeOnFail: { count: 2 }, maxStalledCount: 1 },
        },
        ctx,
      );
    } else if (roll < 0.94) await broker.removeWorker(queue, ctx);
    else if (roll < 0.95) await broker.releaseOwner('test', 'gone');
  }
  clock.advance(60_000);
  broker.runDueTimers();
  await broker.push('alpha', { data: 'last' }, ctx);
}

async function replayPrefix(log: Log, until: number): Promise<State> {
  const state = createState();
  for await (const record of log.read(0, until)) apply(state, record);
  return state;
}

/** A broker on a log of small segments after 1,500 steps of the workload from `seedValue`, and a
 *  scratch directory for the snapshots a test writes. */
async function afterWorkload(t: Test, scratchPrefix: string, seedValue: number) {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, segmentBytes: 32 * 1024, sync: 'always' });
  t.teardown(() => f.cleanup());
  const scratch = await mkdtemp(join(tmpdir(), scratchPrefix));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const random = prng(seedValue);
  await workload(f.broker, 1_500, random, clock);
  return { f, scratch, random };
}

t.test('snapshot-plus-tail-equals-full-replay-for-every-record-kind-at-every-cut', async (t) => {
  const { f, scratch, random } = await afterWorkload(t, 'tapeq-kinds-', seed);

  const types = new Set<string>();
  for await (const record of f.log.read(0)) types.add(record.body.type);
  t.comment(`record kinds written: ${[...types].sort().join(', ')}`);
  const full = await replayLog(f.log);
  const end = f.log.durableOffset;
  t.equal(digestOf(full), digestOf(f.broker.state), 'full replay = live state');
  t.equal(indexes(full), indexes(f.broker.state), 'full replay indexes = live indexes');

  const cuts = new Set<number>([0, 1, end - 1, end]);
  while (cuts.size < 24) cuts.add(Math.floor(random() * end));
  let n = 0;
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    for (const format of ['format-1', 'format-2'] as const) {
      const dir = join(scratch, `s${n++}`);
      const prefix = await replayPrefix(f.log, cut);
      const written = format === 'format-1' ? await writeSnapshot(dir, exportState(prefix)) : await writeStateSnapshot(dir, prefix);
      const lines: string[] = [];
      const loaded = await loadState({ log: f.log, dir, logger: (line) => lines.push(line), readOnly: true });
      t.equal(loaded.fromSnapshot, written, `${format} at ${cut}: loaded from the snapshot`);
      t.strictSame(lines, [], `${format} at ${cut}: nothing reported`);
      if (digestOf(loaded.state) !== digestOf(full)) {
        t.fail(`${format} cut ${cut}: snapshot + tail differs from full replay`);
        t.strictSame(exportState(loaded.state), exportState(full));
        return;
      }
      t.equal(indexes(loaded.state), indexes(full), `${format} at ${cut}: derived indexes agree`);
    }
  }
});

t.test('chained-snapshots-built-as-the-snapshot-process-builds-them-equal-full-replay', async (t) => {
  // Each snapshot is the previous one + a fold of the records since (with its cold rows, as the
  // snapshot process's loadState makes them), written in format 2; each must equal the replay of
  // the same prefix.
  const { f, scratch, random } = await afterWorkload(t, 'tapeq-chain-', seed + 1);
  const end = f.log.durableOffset;
  const cuts = new Set<number>([end]);
  while (cuts.size < 16) cuts.add(1 + Math.floor(random() * end));
  const dir = join(scratch, 'snapshots');
  for (const cut of [...cuts].sort((a, b) => a - b)) {
    const loaded = await loadState({ log: f.log, dir, logger: () => undefined, until: cut, readOnly: true });
    const expected = await replayPrefix(f.log, cut);
    if (digestOf(loaded.state) !== digestOf(expected) || indexes(loaded.state) !== indexes(expected)) {
      t.fail(`cut ${cut} (from ${loaded.fromSnapshot ?? 'offset 0'}): differs from the replay of [0, ${cut})`);
      t.strictSame(exportState(loaded.state), exportState(expected));
      return;
    }
    await writeStateSnapshot(dir, loaded.state, { kept: 3 });
    t.pass(`cut ${cut} from ${loaded.fromSnapshot ?? 'offset 0'}`);
  }
  const last = await loadState({ log: f.log, dir, logger: () => undefined, readOnly: true });
  t.equal(last.replayed, 0);
  t.equal(digestOf(last.state), digestOf(f.broker.state), 'the last snapshot = the live state');
});
