// Worker-thread entry of a scrub run (scrub.ts): reads every sealed segment the job names and
// every snapshot file in the snapshots directory, with the checks a start and `tapeq verify`
// make (a segment's header, its log id, every frame's length and checksum, offsets without a
// gap; a snapshot's header and checksums), and posts one ScrubResult. Strictly read-only.
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
  const result: ScrubResult = { segments: 0, snapshots: 0, bytes: 0, gone: 0, faultCount: 0, faults: [], ms: 0 };
  const fault = (file: string, problem: string): void => {
    result.faultCount++;
    if (result.faults.length < scrubFaultsListedMax) result.faults.push({ file, problem });
  };
  /** Counts a file that is gone, records a failed read as a fault, and throws anything else. */
  const unread = (file: string, err: unknown): void => {
    const code = errnoOf(err);
    if (code === 'ENOENT' || (err instanceof LogError && err.code === 'LOG_NOT_FOUND')) result.gone++;
    else if (code === 'EIO') fault(file, `the device failed the read: ${messageOf(err)}`);
    else throw new Error(`could not read ${file}: ${messageOf(err)}`, { cause: err });
  };
  const opts = { dir: job.logDir, readOnly: true, repair: false, logger: () => {} };
  for (const base of job.bases) {
    await paced(async () => {
      const segment = new Segment(job.logDir, base);
      try {
        const bytes = (await stat(segment.path)).size;
        const { problem, code } = await checkSegment(segment, job.logId, false, opts, emptyReport());
        if (problem !== null) {
          // A segment's frames start after its header: a problem at byte 0 is the header's
          // (unreadable, another base offset, another log's).
          const where =
            problem.position === 0
              ? 'segment header'
              : `${code === 'LOG_GAP' ? 'offset gap' : 'corrupt record'} at byte ${problem.position} (record offset ${problem.expectedOffset})`;
          fault(segment.path, `${where}: ${problem.what}`);
        }
        result.segments++;
        result.bytes += bytes;
      } catch (err) {
        unread(segment.path, err);
      }
    });
  }
  for (const entry of await listSnapshots(job.snapshotsDir)) {
    await paced(async () => {
      try {
        const bytes = (await stat(entry.file)).size;
        const header = await verifySnapshotFile(entry.file);
        if (header.offset !== entry.offset) fault(entry.file, `the file name says offset ${entry.offset} but the header says ${header.offset}`);
        result.snapshots++;
        result.bytes += bytes;
      } catch (err) {
        if (err instanceof SnapshotCorruptError) fault(entry.file, messageOf(err));
        else unread(entry.file, err);
      }
    });
  }
  result.ms = Math.round(performance.now() - started);
  return result;
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
