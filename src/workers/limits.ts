// Push-worker timing limits that only the dispatcher uses. They sit next to the workers (not in
// src/constants.ts, which the broker team owns) and are checked by `checkWorkerLimits()`.

import { lockMsMax, workerTimeoutMsDefault } from '../constants.js';

/** Added to the endpoint timeout to form the lock of a pushed job: the ack/fail has this long to land. */
export const workerLockMarginMs = 2_000;
/** First pause of a worker after its endpoint stopped answering (network error or timeout). */
export const workerBackoffMsFirst = 100;
/** The pause doubles per consecutive unreachable round, up to this. */
export const workerBackoffMsMax = 5_000;
/** Sockets one origin may get; above the largest concurrency of one worker. */
export const workerConnectionsPerOriginMax = 1_024;
/** Idle keep-alive socket lifetime when the endpoint sends no Keep-Alive hint. */
export const workerKeepAliveMs = 4_000;
/** Cap on opening one socket to an endpoint (the endpoint timeout applies when shorter). */
export const workerConnectTimeoutMs = 10_000;

export function checkWorkerLimits(): void {
  const rules: Array<[boolean, string]> = [
    [workerBackoffMsFirst > 0 && workerBackoffMsFirst <= workerBackoffMsMax, 'backoff first <= max'],
    [workerTimeoutMsDefault + workerLockMarginMs <= lockMsMax, 'a pushed job lock fits lockMsMax'],
    [workerKeepAliveMs > 0 && workerConnectionsPerOriginMax > 0, 'positive pool limits'],
  ];
  const broken = rules.filter(([ok]) => !ok).map(([, name]) => name);
  if (broken.length > 0) throw new Error(`worker limits broken: ${broken.join('; ')}`);
}
