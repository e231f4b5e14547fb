// Decides when to snapshot and runs each snapshot in a fresh worker thread (snapshot-worker.ts),
// so building and encoding a large image never pauses the request loop; the main thread only
// posts { snapshotsDir, logDir, upTo = log.durableOffset } and awaits the result.
//
// Triggers: `everyRecords` records since the last snapshot (checked by maybeSnapshot(), which the
// owner may call after appends, and by a light poll), or `intervalMs` elapsed with any new
// record. At most one snapshot runs at a time; a request made while one runs is served by a
// second run after it, if records arrived meanwhile. The worker holds its own copy of the state
// while it runs (memory ≈ one more image) and frees it by exiting. close() terminates a running
// worker: its `.tmp` file is never renamed, so it is never loaded, and the next load removes it.

import { Worker } from 'node:worker_threads';
import { snapshotsKept } from '../constants.js';
import type { SnapshotJob, SnapshotResult, WorkerMessage } from './snapshot-worker.js';
import { listSnapshots, type Logger } from './store.js';

/** What the Snapshotter needs from the log (the real Log satisfies it). */
export interface SnapshotLogView {
  readonly dir: string;
  readonly durableOffset: number;
}

export interface SnapshotterOptions {
  /** The snapshots directory. */
  dir: string;
  log: SnapshotLogView;
  everyRecords: number;
  intervalMs: number;
  logger: Logger;
  /** Valid snapshots kept (default constants.snapshotsKept). */
  kept?: number;
}

/** How often both triggers are polled (the owner may also call maybeSnapshot() after appends). */
const pollMsMax = 1_000;

const workerUrl = new URL('./snapshot-worker.js', import.meta.url);

export class Snapshotter {
  private readonly options: SnapshotterOptions;
  /** Offset covered by the newest snapshot this process knows of. */
  private coveredOffset = 0;
  private running: Promise<string | null> | null = null;
  private worker: Worker | null = null;
  private timer: NodeJS.Timeout | null = null;
  private lastRunMs = Date.now();
  private closed = false;

  constructor(options: SnapshotterOptions) {
    if (!(options.everyRecords >= 1) || !(options.intervalMs >= 1)) {
      throw new RangeError(`snapshot everyRecords and intervalMs must be ≥ 1`);
    }
    this.options = options;
  }

  /** Arms the triggers; the covered offset is taken from the newest snapshot file name. */
  start(): void {
    if (this.closed) throw new Error('Snapshotter is closed');
    void listSnapshots(this.options.dir).then(
      (entries) => {
        this.coveredOffset = Math.max(this.coveredOffset, entries[0]?.offset ?? 0);
      },
      (error: unknown) => this.options.logger(`tapeq: snapshot directory unreadable: ${String(error)}`),
    );
    const poll = setInterval(() => {
      this.maybeSnapshot();
      const due = Date.now() - this.lastRunMs >= this.options.intervalMs;
      if (due && this.options.log.durableOffset > this.coveredOffset) this.trigger();
    }, Math.min(pollMsMax, this.options.intervalMs));
    poll.unref();
    this.timer = poll;
  }

  /** Cheap: compares two numbers; starts a snapshot when everyRecords records are not covered. */
  maybeSnapshot(): void {
    if (this.running !== null || this.closed) return;
    if (this.options.log.durableOffset - this.coveredOffset >= this.options.everyRecords) this.trigger();
  }

  /** Snapshots now (after any running one); null when the newest snapshot already covers the log. */
  async snapshotNow(): Promise<string | null> {
    while (this.running !== null) await this.running.catch(() => null);
    if (this.closed) return null;
    if (this.options.log.durableOffset <= this.coveredOffset) return null;
    return this.launch();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    const worker = this.worker;
    if (worker !== null) await worker.terminate();
    await this.running?.catch(() => null);
  }

  private trigger(): void {
    if (this.running !== null || this.closed) return;
    this.launch().catch((error: unknown) => this.options.logger(`tapeq: snapshot failed: ${String(error)}`));
  }

  private launch(): Promise<string | null> {
    const job: SnapshotJob = {
      snapshotsDir: this.options.dir,
      logDir: this.options.log.dir,
      upTo: this.options.log.durableOffset,
      kept: this.options.kept ?? snapshotsKept,
    };
    this.lastRunMs = Date.now();
    const run = this.runWorker(job).then(
      (result) => {
        this.coveredOffset = Math.max(this.coveredOffset, job.upTo);
        if (result.file !== null) {
          this.options.logger(
            `tapeq: snapshot ${result.file} written in ${result.ms} ms ` +
              `(from ${result.fromSnapshot ?? 'empty state'} + ${result.replayed} records)`,
          );
        }
        return result.file;
      },
    );
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = null;
    };
    run.then(clear, clear);
    return run;
  }

  private runWorker(job: SnapshotJob): Promise<SnapshotResult> {
    return new Promise((resolve, reject) => {
      const worker = new Worker(workerUrl, { workerData: job });
      this.worker = worker;
      let result: SnapshotResult | null = null;
      worker.on('message', (message: WorkerMessage) => {
        if (message.kind === 'log') this.options.logger(`tapeq: ${message.line}`);
        else result = message.result;
      });
      worker.on('error', (error) => reject(error));
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        if (result !== null) resolve(result);
        else reject(new Error(`snapshot worker exited with code ${code} before finishing`));
      });
    });
  }
}
