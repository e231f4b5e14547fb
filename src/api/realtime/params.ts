// Request parameters shared by the SSE and WebSocket routes: the queue filter and the resume
// offset. Both are validated before any stream starts; a bad value is a 400 with the standard
// error envelope, never a silently-ignored filter or a stream from the wrong place.

import { queueNameError } from '../../broker/validate.js';

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

export interface StreamParams {
  queue: string | null;
  after: number | null;
}

/** Queue filter and resume offset of a stream request; the first problem when one is bad.
 *  `endOffset` is the log's durable end (streams deliver nothing past it): an offset at or past
 *  it names a record the client cannot have seen (a typo, or a log restored to an earlier point),
 *  and streaming "after" it would silently skip the records written before the log reaches it. */
export function parseStreamParams(
  params: unknown,
  lastEventId: string | string[] | undefined,
  query: unknown,
  endOffset: number,
): Parsed<StreamParams> {
  const queue = parseQueueParam(params);
  if (!queue.ok) return queue;
  const after = parseResumeOffset(lastEventId, query, endOffset);
  if (!after.ok) return after;
  return { ok: true, value: { queue: queue.value, after: after.value } };
}

/** `:queue` of `/events/queues/:queue` and `/ws/queues/:queue`; null on the unfiltered paths. */
export function parseQueueParam(params: unknown): Parsed<string | null> {
  const queue = (params as { queue?: unknown } | undefined)?.queue;
  if (queue === undefined) return { ok: true, value: null };
  if (typeof queue !== 'string') return { ok: false, error: 'queue must be a string' };
  const bad = queueNameError(queue);
  return bad === null ? { ok: true, value: queue } : { ok: false, error: bad };
}

/**
 * The offset a client has already seen: the `Last-Event-ID` header (what an EventSource sends when
 * it reconnects, so it wins over a `?from` left in the URL from the first connect), else `?from`.
 * Null means "live only". -1 is the point before the first record: "after -1" is the whole log
 * (retention permitting), what no other offset can ask for, and the id an SSE stream on an empty
 * log starts after (sse.ts).
 */
export function parseResumeOffset(lastEventId: string | string[] | undefined, query: unknown, endOffset: number): Parsed<number | null> {
  const header = Array.isArray(lastEventId) ? lastEventId[0] : lastEventId;
  if (header !== undefined && header.trim() !== '') return parseOffset(header.trim(), 'Last-Event-ID', endOffset);
  const from = (query as { from?: unknown } | undefined)?.from;
  if (from === undefined || from === '') return { ok: true, value: null };
  return parseOffset(typeof from === 'string' ? from : String(from), 'from', endOffset);
}

function parseOffset(text: string, name: string, endOffset: number): Parsed<number> {
  const value = /^(?:\d{1,16}|-1)$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value)) return { ok: false, error: `${name} must be a log offset (a non-negative integer, or -1 for the whole log)` };
  if (value >= endOffset) {
    const end = endOffset === 0 ? 'the log is empty' : `its last offset is ${endOffset - 1}`;
    return { ok: false, error: `${name} ${value} is beyond the end of the log (${end})` };
  }
  return { ok: true, value };
}
