// Verifying the sealed segments of a log in a worker thread, so that the server's startup can
// decode its newest snapshot on the main thread meanwhile (the two are independent until the
// tail is folded). The worker runs recovery's own check on each sealed segment; the opener then
// adopts each clean result in order, and checks anything else (a problem, a worker that could
// not run) itself, so every error, repair and log line is exactly what a scan on the main
// thread would have produced.

import { Worker } from 'node:worker_threads';
import type { SegmentScanState } from './segment.js';

export interface SealedScanJob {
  dir: string;
  /** Base offsets of the sealed segments, ascending. */
  bases: number[];
}

export interface SealedScanResult {
  base: number;
  logId: string | null;
  /** Header and every frame verified, offsets continuous from the base. */
  clean: boolean;
  scan: SegmentScanState;
}

const workerUrl = new URL('./sealed-scan-worker.js', import.meta.url);

/** Results by base offset, up to the first segment that is not clean. A worker that fails
 *  yields what it posted until then: the opener scans the rest itself. */
export function scanSealedInWorker(job: SealedScanJob, logger: (line: string) => void): Promise<Map<number, SealedScanResult>> {
  return new Promise((resolve) => {
    const found = new Map<number, SealedScanResult>();
    let worker: Worker;
    try {
      worker = new Worker(workerUrl, { workerData: job });
    } catch (error) {
      logger(`verifying sealed segments in a worker failed (${String(error)}); verifying them here`);
      resolve(found);
      return;
    }
    worker.on('message', (result: SealedScanResult) => found.set(result.base, result));
    worker.once('error', (error) => logger(`verifying sealed segments in a worker failed (${error.message}); verifying them here`));
    worker.once('exit', () => resolve(found));
  });
}
