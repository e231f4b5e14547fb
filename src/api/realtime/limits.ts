// The real-time layer's limits, defaulting to src/constants.ts. Tests inject small values (a 64 KiB
// backlog, a short stall window) to exercise the cut-offs without megabytes of traffic.

import * as C from '../../constants.js';

export interface RealtimeLimits {
  /** Bytes buffered for one client before the stream stops pulling from the log. */
  backlogBytesMax: number;
  /**
   * How long a client over its backlog limit may take to drain before it is cut off. One SSE
   * keep-alive interval: a client that takes no bytes for that long is gone or hopelessly behind.
   */
  stallMs: number;
  /** How long a cut-off client gets to read its final message before its socket is destroyed. */
  closeGraceMs: number;
  sseKeepAliveMs: number;
  wsFrameBytesMax: number;
  wsInflightMax: number;
  /** A socket opened without credentials is closed if no Auth command succeeds by then. */
  wsAuthDeadlineMs: number;
  /** Ping period; a socket that has not answered one ping by the next is closed. */
  wsPingMs: number;
}

export const realtimeLimitsDefault: RealtimeLimits = {
  backlogBytesMax: C.subscriberBacklogBytesMax,
  stallMs: C.subscriberStallMs,
  closeGraceMs: C.subscriberCloseGraceMs,
  sseKeepAliveMs: C.sseKeepAliveMs,
  wsFrameBytesMax: C.wsFrameBytesMax,
  wsInflightMax: C.wsInflightMax,
  wsAuthDeadlineMs: C.wsAuthDeadlineMs,
  wsPingMs: C.wsPingMs,
};
