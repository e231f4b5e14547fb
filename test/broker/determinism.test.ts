// A seeded random workload over every command kind, with a simulated clock and timers run by
// hand, on a real Log. Proves SPEC 2.4: live state == full replay == snapshot image + tail replay,
// at several cut points (the digest covers the repeat schedule index too). Replay a failure with SEED=<n>.

import { join } from 'node:path';
import t from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import type { Broker } from '../../src/broker/broker.js';
import type { Ctx, WorkerConfig } from '../../src/broker/types.js';
import { JobState } from '../../src/record/types.js';
import { loadNewestState, writeStateSnapshot } from '../../src/snapshot/store.js';
import { createState, exportState, importState } from '../../src/state/index.js';
import type { StateImage } from '../../src/state/image.js';
import { manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import { mulberry32 } from '../fixtures/random.js';

const seed = process.env['SEED'] !== undefined ? Number(process.env['SEED']) : Math.floor(Math.random() * 2 ** 31);
const commandCount = Number(process.env['COMMANDS'] ?? 20_000);

t.test('live-replay-and-snapshot-digests-agree', async (t) => {
  t.comment(`SEED=${seed} COMMANDS=${commandCount}`);
  const rnd = mulberry32(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const pick = <T>(xs: readonly T[]): T | undefined => xs[int(xs.length)];
  const chance = (p: number): boolean => rnd() < p;

  const clock = manualClock(1_700_000_000_000);
  const f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 5_000, sync: 'interval', syncIntervalMs: 5 });
  t.teardown(() => f.cleanup());
  const b: Broker = f.broker;
  const queues = ['q1', 'q2', 'q3'] as const;
  const owners = ['w1', 'w2', 'w3', 'http'];
  const ctx = (owner?: string): Ctx => ({ actor: { name: 'sim', address: '127.0.0.1' }, ...(owner ? { owner } : {}) });
  const pending: Array<Promise<unknown>> = [];
  type Outcome = { ok: boolean; code?: string; error?: string } | undefined;
  const outcomes: Outcome[] = [];
  const cuts: Array<{ at: number; image: StateImage; digest: string }> = [];
  const cutAt = new Set([Math.floor(commandCount / 4), Math.floor(commandCount / 2), Math.floor((commandCount * 3) / 4)]);

  const anyJobId = (): string => {
    const ids = [...b.state.jobs.values()].map((j) => j.id);
    return chance(0.05) || ids.length === 0 ? `missing-${int(10)}` : (ids[int(ids.length)] as string);
  };
  const jobsIn = (state: number): string[] => [...b.state.jobs.values()].filter((j) => j.state === state).map((j) => j.id);

  const pushInput = (): unknown => {
    const opts: Record<string, unknown> = {};
    if (chance(0.3)) opts['delay'] = int(20_000);
    if (chance(0.4)) opts['priority'] = int(5) - 2;
    if (chance(0.1)) opts['lifo'] = true;
    if (chance(0.1)) opts['uniqueKey'] = `u${int(8)}`;
    if (chance(0.08)) opts['jobId'] = `custom-${int(40)}`;
    if (chance(0.1)) opts['dependsOn'] = [anyJobId(), anyJobId()].filter((id, i, a) => a.indexOf(id) === i);
    if (chance(0.04)) {
      opts['repeat'] = chance(0.5) ? { every: 3_000 + int(5_000), limit: 1 + int(4) } : { pattern: '*/10 * * * * *', limit: 2 };
      // A few schedule keys, pushed again and again: live schedules answer, ended ones restart.
      if (chance(0.6)) opts['jobId'] = `sched-${int(4)}`;
    }
    if (chance(0.15)) opts['ttl'] = 1_000 + int(30_000);
    if (chance(0.15)) opts['timeout'] = 1_000 + int(8_000);
    if (chance(0.2)) opts['removeOnComplete'] = pick([true, 3, { count: 5, age: 10 }]);
    if (chance(0.2)) opts['removeOnFail'] = pick([true, 2, { age: 30 }]);
    if (chance(0.3)) opts['backoff'] = chance(0.5) ? int(3_000) : { type: 'fixed', delay: int(2_000) };
    if (chance(0.1)) opts['tags'] = ['a', 'b'];
    if (chance(0.05)) opts['groupId'] = 'g';
    const data = { n: int(1_000), s: 'x'.repeat(int(20)) };
    if (chance(0.3)) {
      const bull: Record<string, unknown> = { ...opts };
      if (opts['priority'] !== undefined) bull['priority'] = int(4);
      bull['attempts'] = 1 + int(3);
      return { name: `n${int(3)}`, data, opts: bull };
    }
    return { data, maxAttempts: 1 + int(3), ...opts };
  };

  const worker = (queue: string): WorkerConfig => ({
    queue,
    endpoint: { url: 'http://127.0.0.1:9/x', method: 'POST', headers: {}, timeout: 3_000 },
    opts: { concurrency: 1, limiter: null, removeOnComplete: { count: 3 }, removeOnFail: null, maxStalledCount: 1 + int(2) },
  });

  type Op = [weight: number, run: () => Promise<unknown> | void];
  const ops: Op[] = [
    [30, () => b.push(pick(queues) as string, pushInput(), ctx())],
    [3, () => b.pushBulk(pick(queues) as string, [pushInput(), pushInput(), pushInput()], ctx())],
    [22, () => b.pull(pick(queues) as string, { timeoutMs: 0, ...(chance(0.2) ? { lockMs: 1_000 + int(10_000) } : {}) }, ctx(pick(owners)))],
    [14, () => {
      const id = pick(jobsIn(JobState.ACTIVE)) ?? anyJobId();
      const token = chance(0.9) ? (b.state.jobs.get(id)?.lockToken ?? undefined) : 'stale';
      return b.ack(id, { result: { ok: int(3) }, ...(token ? { token } : {}) }, ctx());
    }],
    [10, () => {
      const id = pick(jobsIn(JobState.ACTIVE)) ?? anyJobId();
      return b.fail(id, { error: `boom ${int(5)}` }, ctx());
    }],
    [2, () => b.cancel(anyJobId(), ctx())],
    [2, () => b.progress(anyJobId(), { progress: int(101), ...(chance(0.5) ? { message: 'm' } : {}) }, ctx())],
    [2, () => b.addLog(anyJobId(), `log ${int(100)}`, ctx())],
    [2, () => b.promote(pick(jobsIn(JobState.DELAYED)) ?? anyJobId(), ctx())],
    [2, () => b.retry(pick(jobsIn(JobState.FAILED)) ?? anyJobId(), ctx())],
    [2, () => b.changePriority(anyJobId(), int(7) - 3, ctx())],
    [1, () => b.pause(pick(queues) as string, ctx())],
    [2, () => b.resume(pick(queues) as string, ctx())],
    [0.3, () => b.drain(pick(queues) as string, ctx())],
    [0.5, () => b.clean(pick(queues) as string, { grace: int(20_000), state: pick(['completed', 'failed', 'waiting', 'delayed', 'wait', 'paused', 'prioritized', 'active']), ...(chance(0.5) ? { limit: 1 + int(5) } : {}) }, ctx())],
    [0.1, () => b.obliterate(pick(queues) as string, ctx(), true)],
    [0.5, () => b.promoteJobs(pick(queues) as string, chance(0.5) ? { count: 1 + int(3) } : {}, ctx())],
    [0.5, () => b.dlqRetry(pick(queues) as string, chance(0.5) ? (pick(jobsIn(JobState.FAILED)) ?? undefined) : undefined, ctx())],
    [0.3, () => b.dlqPurge(pick(queues) as string, ctx())],
    [0.5, () => b.registerWorker(worker(pick(queues) as string), ctx())],
    [0.3, () => b.removeWorker(pick(queues) as string, ctx())],
    [1, () => b.releaseOwner(pick(owners) as string, 'disconnect')],
  ];
  const totalWeight = ops.reduce((s, [w]) => s + w, 0);
  const runOne = (): void => {
    let r = rnd() * totalWeight;
    for (const [w, run] of ops) {
      r -= w;
      if (r <= 0) {
        const out = run();
        if (out !== undefined) pending.push(out);
        return;
      }
    }
  };

  let schedulesSeen = 0;
  for (let i = 1; i <= commandCount; i++) {
    clock.advance(chance(0.01) ? 20_000 + int(60_000) : int(300));
    runOne();
    schedulesSeen = Math.max(schedulesSeen, b.state.schedules.size);
    if (chance(0.2)) b.runDueTimers();
    if (cutAt.has(i)) {
      const image = exportState(b.state);
      cuts.push({ at: b.state.offset, image, digest: digestOf(importState(image)) });
      t.equal(digestOf(importState(image)), digestOf(b.state), `import(export) at command ${i} has the live digest`);
    }
    if (pending.length >= 500) outcomes.push(...((await Promise.all(pending.splice(0))) as Outcome[]));
  }
  clock.advance(200_000);
  b.runDueTimers();
  outcomes.push(...((await Promise.all(pending.splice(0))) as Outcome[]));
  const codes = new Map<string, number>();
  for (const o of outcomes) if (o !== undefined && o.ok === false) codes.set(`${o.code}`, (codes.get(`${o.code}`) ?? 0) + 1);
  t.comment(`rejections: ${JSON.stringify(Object.fromEntries(codes))}`);
  if (process.env['SIM_DEBUG']) for (const o of outcomes) if (o !== undefined && o.ok === false && o.code === 'BAD_REQUEST') t.comment(JSON.stringify(o));
  const accepted = outcomes.filter((o) => o !== undefined && o.ok).length;
  t.comment(`accepted: ${accepted} of ${outcomes.length}`);
  t.notOk(outcomes.some((o) => o !== undefined && o.ok === false && (o.code === 'STORAGE_FAULT' || o.code === 'NO_SPACE')), 'no storage faults');
  await b.close();
  t.equal(f.log.durableOffset, f.log.nextOffset, 'every record durable');
  t.equal(b.state.offset, f.log.nextOffset, 'state covers the log');

  const live = digestOf(b.state);
  const replayed = digestOf(await replayLog(f.log, 0, createState()));
  t.equal(replayed, live, 'full replay digest == live digest');
  for (const cut of cuts) {
    const restored = await replayLog(f.log, cut.at, importState(cut.image));
    t.equal(digestOf(restored), live, `snapshot at offset ${cut.at} + tail == live`);
    // The same cut through a snapshot file as the server writes it (format 2).
    const dir = join(f.dir, `snapshots-${cut.at}`);
    await writeStateSnapshot(dir, importState(cut.image));
    const loaded = await loadNewestState(dir, (line) => t.fail(line));
    if (loaded === null) throw new Error('snapshot not loaded');
    t.equal(digestOf(await replayLog(f.log, cut.at, loaded.state)), live, `snapshot file at offset ${cut.at} + tail == live`);
  }
  const counts = { jobs: b.state.jobs.size, records: f.log.nextOffset, ...b.stats() };
  t.ok(counts.totalPulled > 100 && counts.totalCompleted > 50 && counts.totalStalled > 0, `workload exercised: ${JSON.stringify(counts)}`);
  t.ok(schedulesSeen > 1, `repeat schedules exercised: up to ${schedulesSeen} live at once`);
});
