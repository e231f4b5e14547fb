// A deterministic-enough workload on a real in-process server (serve(): real log, snapshots,
// job index) that notes checkpoints: the live state's digest at an offset and at a time.
// No timers fire (no delays, long locks), and the clock is left to move >= 2 ms after each
// checkpoint, so "the last record stamped <= T" is exactly the checkpoint's last record.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import { loadConfig } from '../../src/config.js';
import { serve } from '../../src/main.js';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { startBroker } from '../fixtures/broker.js';

export interface Checkpoint {
  /** The state covers records [0, offset). */
  offset: number;
  /** Timestamp of the last record before the checkpoint. */
  timestamp: number;
  digest: string;
  jobs: number;
}

export interface Workload {
  dir: string;
  checkpoints: Checkpoint[];
  /** Ids of every job pushed, in order. */
  ids: string[];
  records: number;
}

const actor = { name: 'tester', address: '127.0.0.1' };

export async function tempDir(t: Test, prefix = 'tapeq-pitr-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs the workload into `<dir>` and shuts the server down cleanly. */
export async function runWorkload(dir: string, steps = 90): Promise<Workload> {
  const config = loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1', SEGMENT_BYTES: '4096', SNAPSHOT_EVERY_RECORDS: '40' });
  const s = await serve(config, { logger: () => undefined });
  const b = s.broker;
  const ids: string[] = [];
  const checkpoints: Checkpoint[] = [];
  try {
    for (let i = 0; i < steps; i++) {
      const queue = `q${i % 3}`;
      const pushed = await b.push(queue, { data: { i, pad: 'x'.repeat(i % 7 * 20) }, maxAttempts: 1 }, { actor });
      if (!pushed.ok) throw new Error(pushed.error);
      ids.push(pushed.id);
      if (i % 3 === 1) {
        const pulled = await b.pull(queue, { timeoutMs: 0 }, { actor, owner: 'w' });
        if (pulled.ok && pulled.job !== null && pulled.token !== null) {
          await b.progress(pulled.job.id, { progress: 40 }, { actor });
          if (i % 5 === 0) await b.fail(pulled.job.id, { error: `e${i}`, token: pulled.token }, { actor });
          else await b.ack(pulled.job.id, { result: { i }, token: pulled.token }, { actor });
        }
      }
      if (i % 11 === 10) await b.cancel(ids[i - 3] as string, { actor });
      if (i % 15 === 14) {
        await new Promise((r) => setTimeout(r, 3));
        checkpoints.push({ offset: s.log.durableOffset, timestamp: b.state.timestamp, digest: digestOf(b.state), jobs: b.state.jobs.size });
        await new Promise((r) => setTimeout(r, 3));
      }
    }
    return { dir, checkpoints, ids, records: s.log.durableOffset };
  } finally {
    await s.close();
  }
}

export interface CompactedDataDir {
  dir: string;
  /** The log's first retained offset (> 0). */
  firstOffset: number;
  /** The end of the log. */
  records: number;
  /** The path of the newest snapshot, which the log extends (an older one it cannot). */
  newer: string;
}

/** A data directory `<dir>` whose first segments retention removed, with two snapshots. */
export async function compactedDataDir(dir: string): Promise<CompactedDataDir> {
  const f = await startBroker({ dir: join(dir, 'log'), segmentBytes: 8192 });
  const pushSome = async (n: number): Promise<void> => {
    for (let i = 0; i < n; i++) await f.broker.push('q', { data: { i, pad: 'x'.repeat(200) } }, { actor: null });
  };
  try {
    await pushSome(150);
    await writeStateSnapshot(join(dir, 'snapshots'), f.broker.state);
    await pushSome(150);
    const newer = await writeStateSnapshot(join(dir, 'snapshots'), f.broker.state);
    await pushSome(150);
    await f.log.dropSegmentsBefore(f.broker.state.offset - 150, Number.POSITIVE_INFINITY);
    if (f.log.firstOffset === 0) throw new Error('compactedDataDir: nothing was removed');
    return { dir, firstOffset: f.log.firstOffset, records: f.broker.state.offset, newer };
  } finally {
    await f.cleanup();
  }
}

export { hashTree } from '../fixtures/hash-tree.js';
