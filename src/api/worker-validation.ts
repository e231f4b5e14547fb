// Validation of a push-worker registration (SPEC section 6, BullMQ Proxy's POST /workers):
//   {queue, endpoint: {url, method, headers?, timeout?},
//    opts?: {concurrency, limiter: {max, duration}, removeOnComplete: {count?, age?},
//            removeOnFail: {count?, age?}, maxStalledCount}}
// The JSON schema rejects unknown fields (naming them), wrong types and integers ≤ 0;
// `toWorkerConfig` then checks what a schema cannot say well (the URL parses, http/https only),
// uppercases the method and fills the defaults (timeout 3000 ms, concurrency 1, maxStalledCount 1).

import type { WorkerConfig } from '../broker/types.js';
import {
  durationMsMax,
  maxStalledDefault,
  workerConcurrencyDefault,
  workerConcurrencyMax,
  workerTimeoutMsDefault,
} from '../constants.js';
import { queueName } from './schemas.js';

/** POST, PUT or PATCH in any letter case. */
export const workerMethodPattern = '^([Pp][Oo][Ss][Tt]|[Pp][Uu][Tt]|[Pp][Aa][Tt][Cc][Hh])$';
/** An absolute http:// or https:// URL (scheme in any case). */
export const workerUrlPattern = '^[Hh][Tt][Tt][Pp][Ss]?://';

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
        timeout: { ...positiveInt(durationMsMax), description: 'ms, default 3000' },
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
