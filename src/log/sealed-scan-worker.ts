// Worker-thread entry of scanSealedInWorker (sealed-scan.ts): the same header check and frame
// scan recovery runs on a segment (checkSegment), for each sealed segment in order, stopping at
// the first one that is not clean. Posts exactly one message: SealedScanResult[]. Read-only.

import { parentPort, workerData } from 'node:worker_threads';
import { initChecksum } from './checksum.js';
import { checkSegment, emptyReport } from './recovery.js';
import { Segment } from './segment.js';
import type { SealedScanJob, SealedScanResult } from './sealed-scan.js';

async function run(job: SealedScanJob): Promise<SealedScanResult[]> {
  await initChecksum();
  const opts = { dir: job.dir, readOnly: true, repair: false, logger: () => {} };
  const report = emptyReport();
  const results: SealedScanResult[] = [];
  let logId: string | null = null;
  for (const base of job.bases) {
    const segment = new Segment(job.dir, base);
    const checked = await checkSegment(segment, logId, false, opts, report);
    const clean = checked.problem === null && checked.logId !== null;
    results.push({ base, logId: checked.logId, clean, scan: segment.scanState() });
    if (!clean) break;
    logId = checked.logId;
  }
  return results;
}

if (parentPort !== null) parentPort.postMessage(await run(workerData as SealedScanJob));
