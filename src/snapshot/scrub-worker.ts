// Worker-thread entry of a scrub run (scrub.ts): reads every sealed segment the job names and
// every snapshot file in the snapshots directory, with the checks a start and `tapeq verify`
// make (a segment's header, its log id, every frame's length and checksum, offsets without a
// gap; a snapshot's header and checksums), and posts one ScrubResult. Strictly read-only. A
// file that retention or pruning removed meanwhile is passed over, not a fault. After each file
// it pauses so that it works at most scrubDutyCycle of the time.

import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';
import { scrubDutyCycle, scrubFaultsListedMax } from '../constants.js';
import { initChecksum } from '../log/checksum.js';
import { errnoOf, LogError, messageOf } from '../log/errors.js';
import { checkSegment, emptyReport } from '../log/recovery.js';
import { Segment } from '../log/segment.js';
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
  const opts = { dir: job.logDir, readOnly: true, repair: false, logger: () => {} };
  for (const base of job.bases) {
    await paced(async () => {
      const segment = new Segment(job.logDir, base);
      try {
        const bytes = (await stat(segment.path)).size;
        const checked = await checkSegment(segment, job.logId, false, opts, emptyReport());
        const { problem } = checked;
        if (problem !== null) {
          const what = checked.code === 'LOG_GAP' ? 'offset gap' : 'corrupt record';
          fault(segment.path, `${what} at byte ${problem.position} (record offset ${problem.expectedOffset}): ${problem.what}`);
        } else if (checked.logId !== job.logId) {
          fault(segment.path, `written by log ${checked.logId ?? '(none)'}, not by this log ${job.logId}`);
        }
        result.segments++;
        result.bytes += bytes;
      } catch (err) {
        if (errnoOf(err) === 'ENOENT' || (err instanceof LogError && err.code === 'LOG_NOT_FOUND')) result.gone++;
        else fault(segment.path, messageOf(err));
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
        if (errnoOf(err) === 'ENOENT') result.gone++;
        else fault(entry.file, messageOf(err));
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
