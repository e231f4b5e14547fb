// Worker-thread entry of scanSealedInWorker (sealed-scan.ts): the same header check and frame
// scan recovery runs on a segment (checkSegment), for each sealed segment in order, stopping at
// the first one that is not clean. Posts one SealedScanResult per segment as soon as it has it,
// so a failure later (an unreadable file) loses nothing verified before it. Read-only.

import { parentPort, workerData } from 'node:worker_threads';
import { initChecksum } from './checksum.js';
import { checkSegment, emptyReport } from './recovery.js';
import { Segment } from './segment.js';
import type { SealedScanJob, SealedScanResult } from './sealed-scan.js';

async function run(job: SealedScanJob, post: (result: SealedScanResult) => void): Promise<void> {
  await initChecksum();
  const opts = { dir: job.dir, readOnly: true, repair: false, logger: () => {} };
  const report = emptyReport();
  let logId: string | null = null;
  for (const base of job.bases) {
    const segment = new Segment(job.dir, base);
    const checked = await checkSegment(segment, logId, false, opts, report);
    const clean = checked.problem === null && checked.logId !== null;
    post({ base, logId: checked.logId, clean, scan: segment.scanState() });
    if (!clean) break;
    logId = checked.logId;
  }
}

if (parentPort !== null) {
  const port = parentPort;
  await run(workerData as SealedScanJob, (result) => port.postMessage(result));
}
