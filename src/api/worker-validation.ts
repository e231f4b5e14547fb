// Validation of a push-worker registration (SPEC section 6, BullMQ Proxy's POST /workers):
//   {queue, endpoint: {url, method, headers?, timeout?},
//    opts?: {concurrency, limiter: {max, duration}, removeOnComplete: {count?, age?},
//            removeOnFail: {count?, age?}, maxStalledCount}}
// The JSON schema rejects unknown fields (naming them), wrong types and integers ≤ 0;
// `toWorkerConfig` then checks what a schema cannot say well (the URL parses, http/https only, no
// credentials in it; header names and values an HTTP request can carry, each name once in any
// letter case, at most workerHeadersBytesMax of them, none of the headers the broker sets itself),
// uppercases the method and fills the defaults (timeout 3000 ms, concurrency
// 1, maxStalledCount 1). Whatever is accepted here can be sent: a registration that could only
// fail every job is refused instead.

import type { WorkerConfig } from '../broker/types.js';
import {
  durationMsMax,
  maxStalledDefault,
  processingTimeoutMsMax,
  workerConcurrencyDefault,
  workerConcurrencyMax,
  workerHeadersBytesMax,
  workerTimeoutMsDefault,
} from '../constants.js';
import { queueName } from './schemas.js';

/** POST, PUT or PATCH in any letter case. */
export const workerMethodPattern = '^([Pp][Oo][Ss][Tt]|[Pp][Uu][Tt]|[Pp][Aa][Tt][Cc][Hh])$';
/** An absolute http:// or https:// URL (scheme in any case). */
export const workerUrlPattern = '^[Hh][Tt][Tt][Pp][Ss]?://';

/** An HTTP header name (RFC 9110 token). */
const headerName = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Control characters no header value may hold (tab excepted): CR and LF would split the request. */
const headerValueControl = /[\x00-\x08\x0a-\x1f\x7f]/;
/** Beyond Latin-1: an HTTP header carries bytes, one per character. */
const headerValueWide = /[^\x00-\xff]/;
/** Headers the broker's HTTP client sets or that frame the request: a registration cannot set them. */
const reservedHeaders = new Set(['content-type', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'host', 'upgrade', 'te', 'trailer', 'expect']);

const positiveInt = (maximum: number = Number.MAX_SAFE_INTEGER) => ({ type: 'integer', minimum: 1, maximum }) as const;
const keepFinished = {
  type: 'object',
  additionalProperties: false,
  properties: { count: positiveInt(), age: { ...positiveInt(), description: 'seconds' } },
} as const;

export const workerBody = {
  type: 'object',
  required: ['queue', 'endpoint'],
  additionalProperties: false,
  properties: {
    queue: queueName,
    endpoint: {
      type: 'object',
      required: ['url', 'method'],
      additionalProperties: false,
      properties: {
        url: { type: 'string', pattern: workerUrlPattern, maxLength: 2048 },
        method: { type: 'string', pattern: workerMethodPattern },
        headers: { type: 'object', additionalProperties: { type: 'string' } },
        // A call's job is locked for its timeout plus a margin, and a lock is at most lockMsMax.
        timeout: { ...positiveInt(processingTimeoutMsMax), description: 'ms, default 3000' },
      },
    },
    opts: {
      type: 'object',
      additionalProperties: false,
      properties: {
        concurrency: positiveInt(workerConcurrencyMax),
        limiter: {
          type: 'object',
          required: ['max', 'duration'],
          additionalProperties: false,
          properties: { max: positiveInt(), duration: { ...positiveInt(durationMsMax), description: 'ms' } },
        },
        removeOnComplete: keepFinished,
        removeOnFail: keepFinished,
        maxStalledCount: positiveInt(),
      },
    },
  },
} as const;

/** The body after `workerBody` accepted it. */
export interface WorkerBody {
  queue: string;
  endpoint: { url: string; method: string; headers?: Record<string, string>; timeout?: number };
  opts?: {
    concurrency?: number;
    limiter?: { max: number; duration: number };
    removeOnComplete?: { count?: number; age?: number };
    removeOnFail?: { count?: number; age?: number };
    maxStalledCount?: number;
  };
}

export type WorkerValidation = { ok: true; config: WorkerConfig } | { ok: false; error: string };

export function toWorkerConfig(body: WorkerBody): WorkerValidation {
  let url: URL;
  try {
    url = new URL(body.endpoint.url);
  } catch {
    return { ok: false, error: 'endpoint.url must be a valid http or https URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return { ok: false, error: 'endpoint.url must be a valid http or https URL' };
  }
  // WHATWG URLs keep port 0 ("http://host:0/"), which no connection can reach: every call would fail.
  if (url.port === '0') return { ok: false, error: 'endpoint.url must not name port 0 (no endpoint can listen there)' };
  if (url.username !== '' || url.password !== '') {
    return { ok: false, error: 'endpoint.url must not contain credentials (send them in endpoint.headers)' };
  }
  const headersError = checkHeaders(body.endpoint.headers ?? {});
  if (headersError !== null) return { ok: false, error: headersError };
  const method = body.endpoint.method.toUpperCase() as WorkerConfig['endpoint']['method'];
  const opts = body.opts ?? {};
  return {
    ok: true,
    config: {
      queue: body.queue,
      endpoint: {
        url: url.href,
        method,
        headers: { ...(body.endpoint.headers ?? {}) },
        timeout: body.endpoint.timeout ?? workerTimeoutMsDefault,
      },
      opts: {
        concurrency: opts.concurrency ?? workerConcurrencyDefault,
        limiter: opts.limiter ? { max: opts.limiter.max, duration: opts.limiter.duration } : null,
        removeOnComplete: opts.removeOnComplete ? { ...opts.removeOnComplete } : null,
        removeOnFail: opts.removeOnFail ? { ...opts.removeOnFail } : null,
        maxStalledCount: opts.maxStalledCount ?? maxStalledDefault,
      },
    },
  };
}

/** Headers an HTTP request can carry as given: a name twice in different letter cases would be
 *  sent as two lines, which the endpoint joins or (Authorization) reduces to the first. */
function checkHeaders(headers: Record<string, string>): string | null {
  const seen = new Set<string>();
  let bytes = 0;
  for (const [name, value] of Object.entries(headers)) {
    if (!headerName.test(name)) return `endpoint.headers: ${JSON.stringify(name)} is not a valid header name`;
    const lower = name.toLowerCase();
    if (reservedHeaders.has(lower)) return `endpoint.headers.${name} is set by the broker`;
    if (seen.has(lower)) return `endpoint.headers.${name} is given twice (header names ignore letter case)`;
    seen.add(lower);
    if (headerValueControl.test(value)) return `endpoint.headers.${name} must not contain control characters`;
    if (headerValueWide.test(value)) return `endpoint.headers.${name} must contain only Latin-1 characters`;
    bytes += name.length + 2 + value.length + 2;
  }
  if (bytes > workerHeadersBytesMax) return `endpoint.headers must be at most ${workerHeadersBytesMax} bytes as sent (got ${bytes})`;
  return null;
}
