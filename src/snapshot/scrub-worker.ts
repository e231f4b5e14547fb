// Worker-thread entry of a scrub run (scrub.ts): reads every sealed segment the job names, the
// active segment up to the synced end the job gives (never past it: the writer's later records
// and preallocated zeros lie there), and every snapshot file in the snapshots directory, with
// the checks a start and `tapeq verify` make (a segment's header, its log id, every frame's
// length and checksum, offsets without a gap; a snapshot's header and checksums), and posts one
// ScrubResult. Strictly read-only.
// A fault is damage: what those checks find, and a read the device itself fails (EIO). A file
// that retention or pruning removed meanwhile is passed over. Any other error (descriptors or
// memory short for a moment, a permission changed) says nothing about the files, so it ends the
// run instead (the worker throws: scrub.ts reports the run as not completed), rather than have
// the operator restore sound files. After each file the worker pauses so that it works about
// scrubDutyCycle of the time.

import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { scrubDutyCycle, scrubFaultsListedMax } from '../constants.js';
import { initChecksum } from '../log/checksum.js';
import { errnoOf, LogError, messageOf } from '../log/errors.js';
import { checkSegment, emptyReport } from '../log/recovery.js';
import { Segment } from '../log/segment.js';
import { SnapshotCorruptError } from './format.js';
import type { ScrubJob, ScrubResult } from './scrub.js';
import { listSnapshots, verifySnapshotFile } from './store.js';

async function run(job: ScrubJob): Promise<ScrubResult> {
  const started = performance.now();
  await initChecksum();
  const found = new Findings();
  const { result } = found;
  for (const base of job.bases) {
    await paced(async () => {
      const bytes = await checkSegmentFile(job, base, undefined, found);
      if (bytes === null) return;
      result.segments++;
      result.bytes += bytes;
    });
  }
  const active = job.active;
  if (active !== null) {
    await paced(async () => {
      const bytes = await checkSegmentFile(job, active.baseOffset, active.bytes, found);
      if (bytes === null) return;
      result.activeBytes = bytes;
      result.bytes += bytes;
    });
  }
  for (const entry of await listSnapshots(job.snapshotsDir)) {
    await paced(async () => {
      try {
        const bytes = (await stat(entry.file)).size;
        const header = await verifySnapshotFile(entry.file);
        if (header.offset !== entry.offset) found.fault(entry.file, `the file name says offset ${entry.offset} but the header says ${header.offset}`);
        result.snapshots++;
        result.bytes += bytes;
      } catch (err) {
        if (err instanceof SnapshotCorruptError) found.fault(entry.file, messageOf(err));
        else found.unread(entry.file, err);
      }
    });
  }
  result.ms = Math.round(performance.now() - started);
  return result;
}

/** The result a run builds up, file by file. */
class Findings {
  readonly result: ScrubResult = { segments: 0, snapshots: 0, activeBytes: 0, bytes: 0, gone: 0, faultCount: 0, faults: [], ms: 0 };

  fault(file: string, problem: string): void {
    this.result.faultCount++;
    if (this.result.faults.length < scrubFaultsListedMax) this.result.faults.push({ file, problem });
  }

  /** Counts a file that is gone, records a failed read as a fault, and throws anything else. */
  unread(file: string, err: unknown): void {
    const code = errnoOf(err);
    if (code === 'ENOENT' || (err instanceof LogError && err.code === 'LOG_NOT_FOUND')) this.result.gone++;
    else if (code === 'EIO') this.fault(file, `the device failed the read: ${messageOf(err)}`);
    else throw new Error(`could not read ${file}: ${messageOf(err)}`, { cause: err });
  }
}

/** Checks one segment, whole or (the active one) up to `syncedEnd`, recording what is wrong in
 *  `found`; returns the bytes read, or null when the file could not be read. */
async function checkSegmentFile(job: ScrubJob, base: number, syncedEnd: number | undefined, found: Findings): Promise<number | null> {
  const segment = new Segment(job.logDir, base);
  const opts = { dir: job.logDir, readOnly: true, repair: false, logger: () => {} };
  try {
    const size = (await stat(segment.path)).size;
    const { problem, code } = await checkSegment(segment, job.logId, false, opts, emptyReport(), syncedEnd);
    if (problem !== null) {
      // A segment's frames start after its header: a problem at byte 0 is the header's
      // (unreadable, another base offset, another log's).
      const where =
        problem.position === 0
          ? 'segment header'
          : `${code === 'LOG_GAP' ? 'offset gap' : 'corrupt record'} at byte ${problem.position} (record offset ${problem.expectedOffset})`;
      found.fault(segment.path, `${where}: ${problem.what}`);
    }
    return syncedEnd === undefined ? size : Math.min(size, syncedEnd);
  } catch (err) {
    found.unread(segment.path, err);
    return null;
  }
}

/** Runs `check`, then pauses (1 / scrubDutyCycle − 1) times as long as it took. */
async function paced(check: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await check();
  await sleep((performance.now() - started) * (1 / scrubDutyCycle - 1));
}

if (parentPort !== null) {
  const port = parentPort;
  port.postMessage(await run(workerData as ScrubJob));
}
