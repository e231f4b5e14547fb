// Worker-thread entry of the Snapshotter: builds one snapshot covering [0, upTo) without touching
// the main thread's state. It loads the newest valid snapshot (or starts empty), opens its own
// read-only view of the log, folds records [snapshot.offset, upTo), exports and writes the image.
// The main thread is never paused: the only thing crossing the thread boundary is the job
// description (workerData) and a few short messages.
//
// The read-only open scans the live log while the broker appends; a half-written frame at the
// end of the active segment is normal there, so the view's open report is not forwarded (it
// would read like a torn tail). What matters is checked instead: the view must reach `upTo`.
//
// Messages to the parent:  { kind: 'log', line } … then exactly one { kind: 'done', result }.
// A failure is thrown: the parent sees the worker's 'error' event.

import { parentPort, workerData } from 'node:worker_threads';
import { Log } from '../log/log.js';
import { loadState } from './recover-state.js';
import { writeStateSnapshot } from './store.js';

export interface SnapshotJob {
  snapshotsDir: string;
  logDir: string;
  /** The snapshot covers records [0, upTo): the log's durableOffset when the job was posted. */
  upTo: number;
  kept: number;
}

export interface SnapshotResult {
  /** The new snapshot's path, or null when the newest snapshot already covers upTo. */
  file: string | null;
  fromSnapshot: string | null;
  replayed: number;
  ms: number;
}

export type WorkerMessage = { kind: 'log'; line: string } | { kind: 'done'; result: SnapshotResult };

async function run(job: SnapshotJob, post: (message: WorkerMessage) => void): Promise<SnapshotResult> {
  const started = performance.now();
  const logger = (line: string) => post({ kind: 'log', line });
  const log = await Log.open({ dir: job.logDir, readOnly: true, logger: () => {} });
  try {
    if (log.durableOffset < job.upTo) {
      throw new Error(`read-only view of ${job.logDir} ends at ${log.durableOffset}, before the requested ${job.upTo}`);
    }
    const loaded = await loadState({ log, dir: job.snapshotsDir, logger, until: job.upTo, readOnly: true });
    const fresh = loaded.fromSnapshot === null || loaded.replayed > 0;
    const file = fresh ? await writeStateSnapshot(job.snapshotsDir, loaded.state, { kept: job.kept }) : null;
    return { file, fromSnapshot: loaded.fromSnapshot, replayed: loaded.replayed, ms: Math.round(performance.now() - started) };
  } finally {
    await log.close();
  }
}

if (parentPort !== null) {
  const port = parentPort;
  const post = (message: WorkerMessage) => port.postMessage(message);
  post({ kind: 'done', result: await run(workerData as SnapshotJob, post) });
}
