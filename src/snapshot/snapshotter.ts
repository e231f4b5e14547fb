// Decides when to snapshot and runs each snapshot in the snapshot process (snapshot-process.ts),
// a child process started once and reused, so building and encoding a large image never pauses
// the request loop; the server only sends { snapshotsDir, logDir, upTo = log.durableOffset } and
// awaits the result.
//
// Why a process and not a worker thread: a worker's heap grows by a whole second copy of the state
// inside the server's own process (its RSS), and its GC runs on V8 helper threads shared with the
// server. Measured on the 2-vCPU benchmark VM, 1,000,000 jobs (src/snapshot/README.md): the
// server loop's p99 pause during a snapshot fell from 9.5–10.6 ms (worker thread) to 2.8–3.4 ms
// (this process, nice 10, single-threaded GC). The process is forked once, when the Snapshotter
// starts, because forking a server that already holds a large heap blocks it for 6–11 ms.
//
// Triggers: `everyRecords` records since the last snapshot (checked by maybeSnapshot(), which the
// owner may call after appends, and by a light poll), or `intervalMs` elapsed with any new
// record. At most one snapshot runs at a time; a request made while one runs is served by a
// second run after it, if records arrived meanwhile. close() kills the process, also in the middle
// of a snapshot: its `.tmp` file is never renamed, so it is never loaded, and the next load
// removes it; such a snapshot is not a failure and is not reported. A snapshot whose process is
// killed under it (a signal other than SIGABRT) is run once more in a new process; a process that
// dies between snapshots is reported and replaced at the next one; after a failed snapshot the
// automatic triggers wait, doubling from 1 s to snapshotRetryMsMax. The process shares the server's heap limits (--max-old-space-size).

import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { snapshotRetryMsMax, snapshotsKept } from '../constants.js';
import type { SpreadPolicy } from './keep.js';
import type { ProcessMessage, SnapshotJob, SnapshotResult } from './snapshot-process.js';
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
  /** Older snapshots kept for point-in-time recovery (keep.ts); default none. */
  spread?: SpreadPolicy | null;
}

/** What the server's snapshots have done since it started (GET /health, /prometheus). */
export interface SnapshotStatus {
  /** Offset covered by the newest snapshot known: its records are below it (0: none). */
  coveredOffset: number;
  /** Snapshots written by this server, and attempts that failed (a close's are not counted). */
  runs: number;
  failedRuns: number;
  /** Wall-clock ms when the last one was written, and how long it took; null before the first. */
  lastFinishedAt: number | null;
  lastMs: number | null;
}

/** How often both triggers are polled (the owner may also call maybeSnapshot() after appends). */
const pollMsMax = 1_000;

const processPath = fileURLToPath(new URL('./snapshot-process.js', import.meta.url));
/** Single-threaded GC: its collections stay on the process's own (niced) thread. --expose-gc: it
 *  gives its pages back after each job. */
const processArgs = ['--single-threaded-gc', '--expose-gc'];

/** The server's own heap limits, which the process must share (fork's execArgv replaces them):
 *  a raised limit fits a state as large as the server's, a lowered one keeps a memory cap. */
function inheritedArgs(): string[] {
  return process.execArgv.filter((arg) => /^--max[-_](old|semi)[-_]space[-_]size=/.test(arg));
}

interface Current {
  child: ChildProcess;
  resolve: (result: SnapshotResult) => void;
  reject: (error: Error) => void;
}

export class Snapshotter {
  private readonly options: SnapshotterOptions;
  /** Offset covered by the newest snapshot this process knows of. */
  private coveredOffset = 0;
  private running: Promise<string | null> | null = null;
  private child: ChildProcess | null = null;
  /** The job the snapshot process is working on. */
  private current: Current | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Elapsed times (the interval trigger, the back-off) are read from the monotonic clock: a
   *  wall-clock step must neither hold snapshots back nor set them all off at once. */
  private lastRunMs = performance.now();
  private closed = false;
  /** Consecutive failed snapshots, and when the automatic triggers may try again. */
  private failures = 0;
  private retryAfterMs = 0;
  private runs = 0;
  private failedRuns = 0;
  private last: { finishedAt: number; ms: number } | null = null;

  constructor(options: SnapshotterOptions) {
    if (!(options.everyRecords >= 1) || !(options.intervalMs >= 1)) {
      throw new RangeError(`snapshot everyRecords and intervalMs must be ≥ 1`);
    }
    this.options = options;
  }

  /** Starts the snapshot process and arms the triggers; the covered offset is taken from the
   *  newest snapshot file name. */
  start(): void {
    if (this.closed) throw new Error('Snapshotter is closed');
    try {
      this.process();
    } catch (error) {
      this.options.logger(`tapeq: snapshot process not started (${String(error)}); trying again at the first snapshot`);
    }
    void listSnapshots(this.options.dir).then(
      (entries) => {
        this.coveredOffset = Math.max(this.coveredOffset, entries[0]?.offset ?? 0);
      },
      (error: unknown) => this.options.logger(`tapeq: snapshot directory unreadable: ${String(error)}`),
    );
    const poll = setInterval(() => {
      this.maybeSnapshot();
      const due = performance.now() - this.lastRunMs >= this.options.intervalMs;
      if (due && this.options.log.durableOffset > this.coveredOffset) this.trigger();
    }, Math.min(pollMsMax, this.options.intervalMs));
    poll.unref();
    this.timer = poll;
  }

  /** The snapshot process's pid while it runs (it lives between snapshots too), else null. */
  get processPid(): number | null {
    const child = this.child;
    return child !== null && child.connected && child.pid !== undefined ? child.pid : null;
  }

  status(): SnapshotStatus {
    const { coveredOffset, runs, failedRuns, last } = this;
    return { coveredOffset, runs, failedRuns, lastFinishedAt: last?.finishedAt ?? null, lastMs: last?.ms ?? null };
  }

  /** Cheap: compares two numbers; starts a snapshot when everyRecords records are not covered. */
  maybeSnapshot(): void {
    if (this.running !== null || this.closed || performance.now() < this.retryAfterMs) return;
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
    const child = this.child;
    if (child !== null) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.ref();
        child.kill('SIGKILL');
        await exited;
      }
    }
    await this.running?.catch(() => null);
  }

  /** Automatic triggers wait after a failed snapshot, twice as long after each further one
   *  (1 s up to snapshotRetryMsMax): a snapshot that cannot succeed (a process that runs out of
   *  memory) must not become a fork-and-crash loop. */
  private trigger(): void {
    if (this.running !== null || this.closed || performance.now() < this.retryAfterMs) return;
    this.launch().then(
      () => {
        this.failures = 0;
        this.retryAfterMs = 0;
      },
      (error: unknown) => {
        // close() stopped it: nothing follows, and it did not fail.
        if (this.closed) return;
        this.failures += 1;
        const waitMs = Math.min(snapshotRetryMsMax, 1_000 * 2 ** (this.failures - 1));
        this.retryAfterMs = performance.now() + waitMs;
        this.options.logger(`tapeq: snapshot failed: ${String(error)}; next attempt in ${waitMs} ms at the earliest`);
      },
    );
  }

  private launch(): Promise<string | null> {
    const job: SnapshotJob = {
      snapshotsDir: this.options.dir,
      logDir: this.options.log.dir,
      upTo: this.options.log.durableOffset,
      kept: this.options.kept ?? snapshotsKept,
      spread: this.options.spread ?? null,
    };
    this.lastRunMs = performance.now();
    const run = this.runJob(job).then(
      (result) => {
        this.coveredOffset = Math.max(this.coveredOffset, job.upTo);
        if (result.file !== null) {
          this.runs += 1;
          this.last = { finishedAt: Date.now(), ms: result.ms };
          this.options.logger(
            `tapeq: snapshot ${result.file} written in ${result.ms} ms ` +
              `(from ${result.fromSnapshot ?? 'empty state'} + ${result.replayed} records; ` +
              `sealed log segments: ${result.sealedScanned} read, ${result.sealedKnown} known)`,
          );
        }
        return result.file;
      },
    );
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = null;
    };
    const failed = () => {
      clear();
      // close() stopped it: it did not fail.
      if (!this.closed) this.failedRuns += 1;
    };
    run.then(clear, failed);
    return run;
  }

  /** The snapshot process, forked when there is none (first use) or the last one is gone
   *  (its IPC channel closed: it died, even if its exit has not been reported yet). */
  private process(): ChildProcess {
    if (this.child !== null && this.child.connected) return this.child;
    const execArgv = [...inheritedArgs(), ...processArgs];
    const child = fork(processPath, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child = child;
    idle(child);
    child.on('message', (message: ProcessMessage) => {
      if (message.kind === 'log') this.options.logger(`tapeq: ${message.line}`);
      else if (message.kind === 'done') this.settle(child, (c) => c.resolve(message.result));
      else if (message.kind === 'failed') this.settle(child, (c) => c.reject(Object.assign(new Error(message.error.message), message.error)));
    });
    // Also a failed fork, after which no 'exit' may follow: the job must not wait forever.
    child.on('error', (error) => this.gone(child, `snapshot process error: ${error.message}`, false));
    // Killed from outside (SIGKILL, SIGTERM…): worth one more try. A non-zero exit or SIGABRT (V8
    // out of memory) would most likely happen again.
    child.once('exit', (code, signal) => {
      const how = signal === null ? `with code ${code}` : `on ${signal}`;
      // Killed or crashed between snapshots (an OOM kill, kill -9): said here, as nothing fails.
      if (!this.closed && this.child === child && this.current?.child !== child) {
        this.options.logger(`tapeq: snapshot process exited ${how} while idle; the next snapshot starts a new one`);
      }
      this.gone(child, `snapshot process exited ${how} before finishing`, signal !== null && signal !== 'SIGABRT');
    });
    return child;
  }

  /** `child` cannot finish its job: fail the job, and fork a new process for the next one. */
  private gone(child: ChildProcess, why: string, retryable: boolean): void {
    if (this.child === child) this.child = null;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    this.settle(child, (c) => c.reject(new ProcessGone(why, retryable)));
  }

  /** Ends the current job with `how`, if `child` is the process running it. */
  private settle(child: ChildProcess, how: (current: Current) => void): void {
    const current = this.current;
    if (current === null || current.child !== child) return;
    this.current = null;
    // Once closing, the process stays referenced: close() holds the event loop open with it until
    // the killed process's exit arrives, and a reply still on its way must not let go of it.
    if (!this.closed) idle(child);
    how(current);
  }

  /** Runs `job`; if the snapshot process dies under it (killed, crashed, or already dead when the
   *  job was sent), once more in a new one. */
  private async runJob(job: SnapshotJob): Promise<SnapshotResult> {
    try {
      return await this.runOnce(job);
    } catch (error) {
      if (!(error instanceof ProcessGone) || !error.retryable || this.closed) throw error;
      this.options.logger(`tapeq: ${error.message}; retrying the snapshot in a new snapshot process`);
      return this.runOnce(job);
    }
  }

  /** Runs `job` in the snapshot process, which keeps the event loop alive only meanwhile. */
  private runOnce(job: SnapshotJob): Promise<SnapshotResult> {
    const child = this.process();
    child.ref();
    child.channel?.ref();
    return new Promise<SnapshotResult>((resolve, reject) => {
      this.current = { child, resolve, reject };
      child.send(job, (error) => {
        if (error !== null) this.gone(child, `snapshot process unreachable (${error.message})`, true);
      });
    });
  }
}

class ProcessGone extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

/** An idle snapshot process never keeps the server's event loop alive. */
function idle(child: ChildProcess): void {
  child.unref();
  child.channel?.unref();
}
