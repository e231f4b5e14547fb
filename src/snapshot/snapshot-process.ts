// Child-process entry of the Snapshotter: builds snapshots covering [0, upTo) without touching
// the server's state or heap. Started once per server (child_process.fork), it runs at a lower
// CPU priority (snapshotProcessNice) with a single-threaded GC, and takes one job at a time:
// load the newest valid snapshot (or start empty), open a read-only view of the log, fold records
// [snapshot.offset, upTo), write the State (format 2). Between jobs it drops that state and runs
// a full GC, so it holds little memory while idle. It keeps what each open verified about the
// sealed segments (a few numbers and the sparse index of each), so every sealed segment is read
// once per process, not once per snapshot: with days of retained log that scan would otherwise
// outgrow the snapshot itself. It exits when its parent goes away (the IPC
// channel closes), so a killed server leaves no snapshot process behind.
//
// The read-only open scans the live log while the broker appends; a half-written frame at the
// end of the active segment is normal there, so the view's open report is not forwarded (it
// would read like a torn tail). What matters is checked instead: the view must reach `upTo`.
//
// Messages to the parent, per job: { kind: 'log', line } …, then exactly one
// { kind: 'done', result } or { kind: 'failed', error }.

import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';
import { snapshotProcessNice } from '../constants.js';
import { Log } from '../log/log.js';
import type { SealedScanResult } from '../log/sealed-scan.js';
import { loadState } from './recover-state.js';
import type { SpreadPolicy } from './keep.js';
import { writeStateSnapshot } from './store.js';

export interface SnapshotJob {
  snapshotsDir: string;
  logDir: string;
  /** The snapshot covers records [0, upTo): the log's durableOffset when the job was posted. */
  upTo: number;
  kept: number;
  spread: SpreadPolicy | null;
}

export interface SnapshotResult {
  /** The new snapshot's path, or null when the newest snapshot already covers upTo. */
  file: string | null;
  fromSnapshot: string | null;
  replayed: number;
  /** Sealed segments read and verified by this snapshot's log open, and those known from before. */
  sealedScanned: number;
  sealedKnown: number;
  ms: number;
}

export type ProcessMessage =
  | { kind: 'log'; line: string }
  | { kind: 'done'; result: SnapshotResult }
  | { kind: 'failed'; error: { name: string; message: string; code?: string } };

/** What earlier jobs' log opens verified about the sealed segments, by base offset. */
let knownSealed = new Map<number, SealedScanResult>();

async function run(job: SnapshotJob, post: (message: ProcessMessage) => void): Promise<SnapshotResult> {
  const started = performance.now();
  const logger = (line: string) => post({ kind: 'log', line });
  const log = await Log.open({ dir: job.logDir, readOnly: true, logger: () => {}, knownSealed });
  knownSealed = log.sealedScanResults();
  const sealedKnown = log.openReport.knownSealed;
  const sealedScanned = log.segments().length - 1 - sealedKnown;
  try {
    if (log.durableOffset < job.upTo) {
      throw new Error(`read-only view of ${job.logDir} ends at ${log.durableOffset}, before the requested ${job.upTo}`);
    }
    const loaded = await loadState({ log, dir: job.snapshotsDir, logger, until: job.upTo, readOnly: true });
    const fresh = loaded.fromSnapshot === null || loaded.replayed > 0;
    const file = fresh ? await writeStateSnapshot(job.snapshotsDir, loaded.state, { kept: job.kept, spread: job.spread }) : null;
    const ms = Math.round(performance.now() - started);
    return { file, fromSnapshot: loaded.fromSnapshot, replayed: loaded.replayed, sealedScanned, sealedKnown, ms };
  } finally {
    await log.close();
  }
}

if (process.send !== undefined) {
  // A send that fails means the server is gone (killed before this process saw the channel
  // close): exit as the 'disconnect' handler does, not with an unhandled EPIPE 'error' event and
  // its stack in the dead server's log.
  const post = (message: ProcessMessage) => process.send?.(message, undefined, undefined, (error) => error && process.exit(0));
  lowerPriority();
  process.on('disconnect', () => process.exit(0));
  // A terminal's Ctrl-C or a SIGTERM to the whole group is for the server, which stops this process
  // itself when it shuts down (or by closing the IPC channel, if it dies).
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => {});
  process.on('message', (job: SnapshotJob) => {
    run(job, post).then(
      (result) => post({ kind: 'done', result }),
      (error: unknown) => post({ kind: 'failed', error: describe(error) }),
    ).finally(() => {
      // The job's state is garbage now; give its pages back before waiting for the next job.
      (globalThis as { gc?: () => void }).gc?.();
    });
  });
}

/** Every thread of this process at snapshotProcessNice: on Linux a nice value belongs to a thread,
 *  and V8's platform threads exist before this code runs (threads started later inherit it). */
function lowerPriority(): void {
  let threads: number[] = [0];
  try {
    // The main thread (tid = pid) last: once it runs at the nice level, every thread listed does,
    // which is what an observer (the test) can wait for.
    threads = readdirSync('/proc/self/task')
      .map(Number)
      .sort((a, b) => Number(a === process.pid) - Number(b === process.pid));
  } catch {
    // No /proc: this thread only.
  }
  for (const tid of threads) {
    try {
      setPriority(tid, snapshotProcessNice);
    } catch {
      // Not permitted here: that thread keeps the parent's priority.
    }
  }
}

function describe(error: unknown): { name: string; message: string; code?: string } {
  if (!(error instanceof Error)) return { name: 'Error', message: String(error) };
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? { name: error.name, message: error.message, code } : { name: error.name, message: error.message };
}
