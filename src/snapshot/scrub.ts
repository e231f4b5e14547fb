// The scrub: every SCRUB_INTERVAL_MS the writing server re-reads its sealed log segments and its
// snapshot files in a worker thread, with the checks a start makes (scrub-worker.ts), so that
// damage at rest (bit rot, a bad sector, a stray write) is found while the records it hit are
// still in memory and in other copies (an archive, a backup), not the day a restart or a
// `recover --until` needs them. The live state is unaffected, since it lives in memory: a fault
// does not stop the server; it is reported in the server's log (one line per fault, each naming
// the file, byte position and record offset), in `GET /health` (`scrub`) and in `/prometheus`
// (`<prefix>_scrub_faults`), until a run finds the files sound again (or they are gone).
// The files are read through the page cache (Node has neither O_DIRECT reads into aligned
// buffers nor fadvise): a file whose pages are still cached is checked as cached, so the disk
// under it is read only once the kernel has let those pages go.
//
// Not scrubbed: the active segment (its records are in the page cache and its write is under
// way; the next start checks it, and it becomes sealed, so scrubbed, once it rolls). One run at
// a time: a tick that finds a run under way is skipped. The worker works about a quarter of the
// time (scrubDutyCycle), so a run over G GiB takes about four times what reading G GiB takes.

import { Worker } from 'node:worker_threads';
import type { Log } from '../log/log.js';
import { forgetVerdict, forgetVerdictsExcept } from './store.js';

export interface ScrubJob {
  logDir: string;
  snapshotsDir: string;
  logId: string;
  /** Base offsets of the sealed segments when the run starts, ascending. */
  bases: number[];
}

export interface ScrubResult {
  /** Sealed segments and snapshot files read in full. */
  segments: number;
  snapshots: number;
  bytes: number;
  /** Files listed when the run started and removed (by retention, by pruning) before it read them. */
  gone: number;
  faultCount: number;
  /** The first scrubFaultsListedMax faults. */
  faults: ScrubFault[];
  ms: number;
}

export interface ScrubFault {
  file: string;
  /** What is wrong, and where in the file: for a segment the byte position and record offset. */
  problem: string;
}

/** What GET /health and /prometheus show. */
export interface ScrubStatus {
  intervalMs: number;
  /** Completed runs since the server started. */
  runs: number;
  /** Runs that could not complete (the worker failed, or a file could not be read for a reason
   *  that says nothing about it, such as descriptors short for a moment). */
  failedRuns: number;
  running: boolean;
  /** Epoch ms of the last completed run's end; null before the first. */
  lastFinishedAt: number | null;
  /** The last completed run; null before the first. */
  last: ScrubResult | null;
  /** Why the last run could not complete (see failedRuns); null when it did. */
  lastError: string | null;
}

const workerUrl = new URL('./scrub-worker.js', import.meta.url);

/** One scrub run in a worker thread; rejects if the worker fails or `signal` ends it. The
 *  server's worker does not keep the process alive (`keepAlive` false); a benchmark's does. */
export function scrubInWorker(job: ScrubJob, signal?: AbortSignal, keepAlive = false): Promise<ScrubResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(workerUrl, { workerData: job });
    if (!keepAlive) worker.unref();
    const abort = (): void => void worker.terminate();
    signal?.addEventListener('abort', abort, { once: true });
    let result: ScrubResult | null = null;
    worker.on('message', (message: ScrubResult) => {
      result = message;
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      signal?.removeEventListener('abort', abort);
      if (result !== null) resolve(result);
      else reject(new Error(signal?.aborted ? 'stopped by the server\'s close' : `the scrub worker exited with code ${code} before its result`));
    });
  });
}

export class Scrubber {
  /** The status but `running`, which is whether `current` is set. */
  private readonly state: Omit<ScrubStatus, 'running'>;
  private timer: NodeJS.Timeout | null = null;
  /** The run under way, if any. */
  private current: Promise<void> | null = null;
  /** Aborted by close(): ends a run under way. */
  private readonly stop = new AbortController();

  constructor(
    private readonly o: { log: Log; snapshotsDir: string; intervalMs: number; logger: (line: string) => void },
  ) {
    this.state = { intervalMs: o.intervalMs, runs: 0, failedRuns: 0, lastFinishedAt: null, last: null, lastError: null };
  }

  status(): ScrubStatus {
    return { ...this.state, running: this.current !== null, last: this.state.last === null ? null : { ...this.state.last, faults: this.state.last.faults.map((f) => ({ ...f })) } };
  }

  /** The first run one interval after the start: the start itself has just checked every file. */
  start(): void {
    if (this.o.intervalMs <= 0 || this.timer !== null) return;
    this.timer = setInterval(() => void this.run(), this.o.intervalMs);
    this.timer.unref();
  }

  /** One run now, unless one is under way or the scrubber is not started; resolves when it ends. */
  async run(): Promise<void> {
    if (this.current !== null || this.timer === null) return;
    this.current = this.runOnce().finally(() => {
      this.current = null;
    });
    await this.current;
  }

  private async runOnce(): Promise<void> {
    const job: ScrubJob = {
      logDir: this.o.log.dir,
      snapshotsDir: this.o.snapshotsDir,
      logId: this.o.log.logId,
      bases: this.o.log.segments().slice(0, -1).map((s) => s.baseOffset),
    };
    try {
      const result = await scrubInWorker(job, this.stop.signal);
      this.state.runs++;
      this.state.last = result;
      this.state.lastFinishedAt = Date.now();
      this.state.lastError = null;
      this.report(result);
    } catch (error) {
      if (this.stop.signal.aborted) return;
      this.state.failedRuns++;
      this.state.lastError = error instanceof Error ? error.message : String(error);
      this.o.logger(`tapeq: scrub: the run did not complete (the last completed run's findings stand): ${this.state.lastError}`);
    }
  }

  private report(r: ScrubResult): void {
    const what = `${r.segments} sealed segment(s) and ${r.snapshots} snapshot(s), ${r.bytes} bytes, in ${r.ms} ms`;
    if (r.faultCount === 0) {
      this.o.logger(`tapeq: scrub: ok: ${what}`);
      return;
    }
    // Retention's cached verdicts on snapshots (store.ts) must not outlive a fault found in one:
    // the listed files', or every one's when some faults are not listed.
    for (const { file, problem } of r.faults) {
      this.o.logger(`tapeq: scrub: FAULT ${file}: ${problem}`);
      forgetVerdict(file);
    }
    const unlisted = r.faultCount - r.faults.length;
    if (unlisted > 0) forgetVerdictsExcept(this.o.snapshotsDir, []);
    this.o.logger(
      `tapeq: scrub: ${r.faultCount} fault(s)${unlisted > 0 ? ` (${unlisted} not listed)` : ''} in ${what}; ` +
        'the live state is unaffected; restore the file from a copy (README "Durability": damage at rest)',
    );
  }

  async close(): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.stop.abort();
    await this.current;
  }
}
