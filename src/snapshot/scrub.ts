// The scrub: every SCRUB_INTERVAL_MS the writing server re-reads its log segments (the active
// one up to its synced end, below) and its snapshot files in a worker thread, with the checks a
// start makes (scrub-worker.ts), so that damage at rest (bit rot, a bad sector, a stray write)
// is found while the records it hit are still in memory and in other copies (an archive, a
// backup), not the day a restart or a `recover --until` needs them. The live state is
// unaffected, since it lives in memory: a fault does not stop the server; it is reported in the
// server's log (one line per fault, each naming the file, byte position and record offset), in
// `GET /health` (`scrub`) and in `/prometheus` (`<prefix>_scrub_faults`), until a run finds the
// files sound again (or they are gone).
//
// The active segment is checked too, up to the end its group commit had synced when the run
// started (Log.syncedEnd(), taken on the main thread in the same synchronous step as the list
// of sealed segments, and handed to the worker in the job): those bytes are whole frames that
// the writer never touches again, so any problem among them is damage, as in a sealed segment.
// Nothing after that end is read: neither records written since (their write may be under way)
// nor the zeros preallocated ahead of them. A roll during the run seals the segment with its
// records, never shorter than that end, so the bytes read are the same either way; the next run
// reads it whole, as a sealed segment. A long-lived server's active segment can hold up to
// SEGMENT_BYTES of acknowledged records for days on a quiet queue: damage there, if it waited
// for the next start, would make that start refuse the log (recovery.ts) at the worst moment.
//
// What a run checks is what a read returns, and reads go through the page cache (Node has no
// clean O_DIRECT read: it opens with the flag, but offers no way to allocate, or even to find,
// a buffer aligned as such a read needs; nor does it offer posix_fadvise(DONTNEED) to drop the
// pages first). A file whose pages are still cached is checked as cached, and the disk under it
// is read only once the kernel has let those pages go. That holds most of all for the active
// segment: its recent records were written through the cache and are likely still there, so for
// them a run checks the cached copy (it finds a stray write into the file, or a bug that wrote
// wrong bytes), not the disk. A clean run does not prove the disk sound.
//
// One run at a time: a tick that finds a run under way is skipped. The worker works about a
// quarter of the time (scrubDutyCycle), so a run over G GiB takes about four times what reading
// G GiB takes.

import { Worker } from 'node:worker_threads';
import type { Log } from '../log/log.js';
import { forgetVerdict, forgetVerdictsExcept } from './store.js';

export interface ScrubJob {
  logDir: string;
  snapshotsDir: string;
  logId: string;
  /** Base offsets of the sealed segments when the run starts, ascending. */
  bases: number[];
  /** The active segment when the run starts and the end of its synced bytes (Log.syncedEnd()):
   *  read up to there and no further. Null: not read. */
  active: { baseOffset: number; bytes: number } | null;
}

export interface ScrubResult {
  /** Sealed segments and snapshot files read in full. */
  segments: number;
  snapshots: number;
  /** Bytes of the active segment read: its header and records up to its synced end when the run
   *  started (0 when it was not read). */
  activeBytes: number;
  /** Every byte read and checked, the active segment's included. */
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

/** What a run reads, as the log stands now: its sealed segments, and its active segment up to
 *  its synced end. Taken in one synchronous step, so a roll cannot fall between the two. */
export function scrubJobOf(log: Log, snapshotsDir: string): ScrubJob {
  const sealed = log.segments().slice(0, -1);
  return { logDir: log.dir, snapshotsDir, logId: log.logId, bases: sealed.map((s) => s.baseOffset), active: log.syncedEnd() };
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
    const job = scrubJobOf(this.o.log, this.o.snapshotsDir);
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
    const active = r.activeBytes > 0 ? `, the active segment up to byte ${r.activeBytes}` : '';
    const what = `${r.segments} sealed segment(s)${active} and ${r.snapshots} snapshot(s), ${r.bytes} bytes, in ${r.ms} ms`;
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
