// POST /queues/:q/clean over a real broker on a real log, served on 127.0.0.1: which jobs each
// state name takes, and what a clean touches on a queue restored from a snapshot.

import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Broker } from '../../src/broker/broker.js';
import { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { startServer, type TestServer } from '../fixtures/server.js';

const ctx = { actor: null };

interface Served {
  s: TestServer<Broker>;
  broker: Broker;
  close(): Promise<void>;
}

/** The server's start: the newest snapshot of `dir` plus the log's tail, then the API on loopback. */
async function serve(dir: string): Promise<Served> {
  const logger = (): void => undefined;
  const log = await Log.open({ dir: join(dir, 'log'), sync: 'interval', syncIntervalMs: 2, logger });
  const { state } = await loadState({ log, dir: join(dir, 'snapshots'), logger });
  const broker = new Broker({ log, state, logger });
  broker.start();
  const s = await startServer({ broker });
  let closed = false;
  return {
    s,
    broker,
    async close() {
      if (closed) return;
      closed = true;
      await s.close();
      await broker.close();
      await log.close();
    },
  };
}

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-clean-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

t.test('clean-with-a-limit-makes-only-the-jobs-it-removes-out-of-a-restored-queue', async (t) => {
  const dir = await tempDir(t);
  let served = await serve(dir);
  t.teardown(() => served.close());
  // Priorities spread the oldest jobs over several buckets of the wait list.
  const ids: string[] = [];
  for (let bulk = 0; bulk < 5; bulk++) {
    const jobs = Array.from({ length: 1_000 }, (_, i) => ({ data: { i }, priority: (bulk * 1_000 + i) % 3 }));
    const pushed = await served.broker.pushBulk('q', jobs, ctx);
    if (!pushed.ok) throw new Error(pushed.error);
    ids.push(...pushed.ids);
  }
  await writeStateSnapshot(join(dir, 'snapshots'), served.broker.state);
  await served.close();
  served = await serve(dir);
  const cold = served.broker.state.cold;
  t.equal(cold.rows, 5_000, 'the restored waiting jobs are cold rows');

  const cleaned = await served.s.request('POST', '/queues/q/clean', { body: { grace: 0, state: 'waiting', limit: 3 } });
  t.equal(cleaned.status, 200);
  t.same(cleaned.json.removed, ids.slice(0, 3), 'the three pushed first, whatever their priority');
  t.equal(cold.rows, 4_997, 'no row but the three removed was made into a job');
  t.equal(served.broker.counts('q').waiting, 4_997);
});
