// A seeded, mixed broker workload over a real log (push with options, pull, ack, fail, progress,
// logs, cancel, pause/resume, priority changes, worker registration), and the digest helper the
// determinism tests compare. The seed is printed by the caller so a failure can be replayed.

import { createHash } from 'node:crypto';
import type { Broker } from '../../src/broker/broker.js';
import { exportState, type State } from '../../src/state/index.js';

const ctx = { actor: { name: 'test', address: '127.0.0.1' } };

/** Small deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export function digestOf(state: State): string {
  return createHash('sha256').update(JSON.stringify(exportState(state))).digest('hex');
}

export async function runWorkload(broker: Broker, ops: number, random: () => number, advance: (ms: number) => void): Promise<void> {
  const queues = ['alpha', 'beta', 'gamma'];
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const active: Array<{ id: string; token: string }> = [];
  const known: string[] = [];
  for (let i = 0; i < ops; i++) {
    advance(Math.floor(random() * 50));
    const queue = pick(queues);
    const roll = random();
    if (roll < 0.4) {
      const out = await broker.push(
        queue,
        {
          data: { i, text: 'x'.repeat(Math.floor(random() * 100)) },
          priority: Math.floor(random() * 5),
          ...(random() < 0.2 ? { delay: 1_000 } : {}),
          ...(random() < 0.2 ? { tags: ['t1', 't2'] } : {}),
          ...(random() < 0.1 ? { ttl: 60_000 } : {}),
          maxAttempts: 2,
        },
        ctx,
      );
      if (out.ok) known.push(out.id);
    } else if (roll < 0.65) {
      const out = await broker.pull(queue, { timeoutMs: 0 }, ctx);
      if (out.ok && out.job !== null && out.job !== undefined) active.push({ id: out.job.id, token: out.token as string });
    } else if (roll < 0.8 && active.length > 0) {
      const job = active.splice(Math.floor(random() * active.length), 1)[0];
      if (job === undefined) continue;
      if (random() < 0.7) await broker.ack(job.id, { result: { ok: i }, token: job.token }, ctx);
      else await broker.fail(job.id, { error: `boom ${i}`, token: job.token }, ctx);
    } else if (roll < 0.86 && active.length > 0) {
      const job = pick(active);
      await broker.progress(job.id, { progress: Math.floor(random() * 100), message: `at ${i}` }, ctx);
      await broker.addLog(job.id, `log ${i}`, ctx);
    } else if (roll < 0.9 && known.length > 0) {
      await broker.cancel(pick(known), ctx);
    } else if (roll < 0.93 && known.length > 0) {
      await broker.changePriority(pick(known), Math.floor(random() * 10), ctx);
    } else if (roll < 0.95) {
      await (random() < 0.5 ? broker.pause(queue, ctx) : broker.resume(queue, ctx));
    } else if (roll < 0.96) {
      await broker.registerWorker(
        {
          queue,
          endpoint: { url: `http://127.0.0.1:9/${queue}`, method: 'POST', headers: {}, timeout: 3_000 },
          opts: { concurrency: 2, limiter: null, removeOnComplete: null, removeOnFail: { count: 5 }, maxStalledCount: 1 },
        },
        ctx,
      );
    }
  }
}
