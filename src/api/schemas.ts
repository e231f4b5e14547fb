// JSON schema fragments shared by the routes. They drive request validation (src/api/validation.ts)
// and the OpenAPI document (src/api/openapi.ts). Response schemas document the shapes only:
// responses are serialized with JSON.stringify (see server.ts), and a test checks real responses
// against these schemas so the documentation cannot drift from the code.

import { stateAliasNames } from '../broker/validate.js';
import { dotSegments, jobIdLengthMax, listLengthMax, queueNameLengthMax, queueNamePattern } from '../constants.js';

/** Its length is in the pattern, so a bad name gets one text however it is bad (queueNameRule). */
export const queueName = {
  type: 'string',
  pattern: queueNamePattern.source,
  not: { enum: dotSegments },
  description: `Queue name: 1-${queueNameLengthMax} letters, digits, ".", "_", "-", ":" (not "." or "..")`,
} as const;

export const LIST_STATUSES = ['waiting', 'paused', 'active', 'completed', 'failed', 'delayed', 'waiting-children', 'prioritized'] as const;
/** What `statuses` takes: LIST_STATUSES, then BullMQ's names for them, as clean's `state` does. */
export const LIST_STATUS_NAMES: readonly string[] = [...LIST_STATUSES, ...stateAliasNames];
const statusAlternatives = LIST_STATUS_NAMES.join('|');
/** `statuses` of GET /queues/:q/jobs/list: a comma-separated list of LIST_STATUS_NAMES. */
export const statusesPattern = `^(${statusAlternatives})(,(${statusAlternatives}))*$`;

export const jobId = { type: 'string', minLength: 1, maxLength: jobIdLengthMax } as const;

export const queueParams = {
  type: 'object',
  required: ['queue'],
  additionalProperties: false,
  properties: { queue: queueName },
} as const;

export const idParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: jobId },
} as const;

export const queueIdParams = {
  type: 'object',
  required: ['queue', 'id'],
  additionalProperties: false,
  properties: { queue: queueName, id: jobId },
} as const;

/** A page of a list: `start` (offset) and `length` (≤ lengthMax). */
export function pageQuery(lengthDefault: number, lengthMax: number = listLengthMax) {
  return {
    start: { type: 'integer', minimum: 0, default: 0 },
    length: { type: 'integer', minimum: 1, maximum: lengthMax, default: lengthDefault },
  } as const;
}

/** The envelope of every error (SPEC section 4): `{"ok": false, "error": "<text>"}`. */
export const errorResponse = {
  type: 'object',
  required: ['ok', 'error'],
  properties: { ok: { type: 'boolean', enum: [false] }, error: { type: 'string' } },
} as const;

export const okResponse = {
  type: 'object',
  required: ['ok'],
  properties: { ok: { type: 'boolean', enum: [true] } },
} as const;

/** `{ok: true, ...fields}` */
export function okWith(properties: Record<string, unknown>, required: string[] = Object.keys(properties)) {
  return {
    type: 'object',
    required: ['ok', ...required],
    properties: { ok: { type: 'boolean', enum: [true] }, ...properties },
  } as const;
}

const numberOrNull = { type: ['number', 'null'] } as const;
const keep = {
  anyOf: [
    { type: 'boolean' },
    { type: 'number' },
    { type: 'object', properties: { count: { type: 'number' }, age: { type: 'number' } } },
  ],
} as const;

export const jobView = {
  type: 'object',
  required: ['id', 'queue', 'name', 'priority', 'createdAt', 'attempts', 'maxAttempts', 'progress', 'state'],
  properties: {
    id: { type: 'string' },
    queue: { type: 'string' },
    name: { type: 'string' },
    data: {},
    priority: { type: 'number' },
    createdAt: { type: 'number' },
    runAt: { type: 'number' },
    startedAt: numberOrNull,
    completedAt: numberOrNull,
    attempts: { type: 'number' },
    maxAttempts: { type: 'number' },
    backoff: {
      anyOf: [
        { type: 'number' },
        { type: 'object', properties: { type: { type: 'string' }, delay: { type: 'number' } } },
      ],
    },
    progress: { type: 'number' },
    progressMessage: { type: ['string', 'null'] },
    tags: { type: 'array', items: { type: 'string' } },
    lifo: { type: 'boolean' },
    removeOnComplete: keep,
    removeOnFail: keep,
    state: { type: 'string' },
    ttl: numberOrNull,
    timeout: numberOrNull,
    uniqueKey: { type: ['string', 'null'] },
    groupId: { type: ['string', 'null'] },
    dependsOn: { type: 'array', items: { type: 'string' } },
    repeat: { type: ['object', 'null'] },
    result: {},
    failedReason: { type: ['string', 'null'] },
    stalledCount: { type: 'number' },
  },
} as const;

export const counts = {
  type: 'object',
  properties: {
    waiting: { type: 'number' },
    active: { type: 'number' },
    delayed: { type: 'number' },
    completed: { type: 'number' },
    failed: { type: 'number' },
    'waiting-children': { type: 'number' },
    paused: { type: 'number' },
  },
} as const;

// ── Error responses, documented by when they are answered ─────────────────────────────────
//
// Each route lists exactly the error statuses it can answer, each with a one-line description of
// when: `errors({404: jobMissing}, idRefused, writeRefused)`. The fragments a status gets from
// several parts are joined in the order given (the route's own reason first). The result is the
// envelope's schema with a `description`, which @fastify/swagger makes the OpenAPI response's
// description. Statuses that follow from a route's config rather than its handler (401 from
// `config.auth`, 429 from the rate limiter, 503 while starting or draining) and the `default`
// response are added by openapi.ts's documented(), with the texts below.

/** Why a route answers each error status, one line per status. */
export type ErrorWhen = Readonly<Record<number, string>>;

type DescribedError = typeof errorResponse & { description: string };

/** The envelope once per status, described by every fragment `parts` give that status. */
export function errors(...parts: ErrorWhen[]): Record<number, DescribedError> {
  const reasons = new Map<number, string[]>();
  for (const part of parts) {
    for (const [status, reason] of Object.entries(part)) {
      const list = reasons.get(Number(status)) ?? [];
      list.push(reason);
      reasons.set(Number(status), list);
    }
  }
  const out: Record<number, DescribedError> = {};
  for (const [status, list] of [...reasons].sort(([a], [b]) => a - b)) out[status] = { ...errorResponse, description: list.join('; ') };
  return out;
}

export const jobMissing = 'no job with this id ("Job not found")';
export const fieldRefused = 'a field is missing, invalid or not allowed (the message names it)';
export const queryRefused = 'a query parameter is invalid or not allowed (the message names it)';
export const queueRefused: ErrorWhen = { 400: 'queue is not a valid queue name' };
export const idRefused: ErrorWhen = { 400: `id is empty or longer than ${jobIdLengthMax} characters` };

const bodyTooLarge = 'the body is larger than MAX_BODY_BYTES ("Request body is too large")';
const contentTypeInvalid = 'the Content-Type header is not a media type (type/subtype)';
/** A route that reads its body as JSON (body.ts). */
export const jsonBodyRefused: ErrorWhen = { 400: 'the body is not valid JSON ("Invalid JSON body")', 413: bodyTooLarge, 415: contentTypeInvalid };
/** A route that takes no body (body.ts noBody): one with a field is refused, not ignored. */
export const noBodyRefused: ErrorWhen = { 400: 'the body has a field (this route takes none) or is not valid JSON', 413: bodyTooLarge, 415: contentTypeInvalid };
/** A route that appends to the log: the broker's gate and its storage faults (broker.ts). A
 *  storage fault is a documented 500 here, not only an unexpected one: see openapi.ts. */
export const writeRefused: ErrorWhen = {
  409: 'the server is read-only (serve --until)',
  500: 'the log could not be written or synced ("Storage failure: …"): nothing was acknowledged, and writes are refused until a restart',
  507: 'the disk is full ("No space left on device: …"): nothing was acknowledged, and writes are refused until a restart',
};

/** The texts of documented()'s automatic responses (openapi.ts). */
export const automaticErrors = {
  unauthorized: 'no valid bearer token (one of AUTH_TOKENS); only when AUTH_TOKENS is set',
  unauthorizedJobToken: "neither a valid bearer token nor the job's lock token while the job is active with it; only when AUTH_TOKENS is set",
  rateLimited: 'this client sent RATE_LIMIT_MAX_REQUESTS requests in the last RATE_LIMIT_WINDOW_MS ("Rate limit exceeded"; Retry-After says when to retry)',
  unavailable: 'the server is starting (replaying its log) or draining for shutdown (Retry-After: 1)',
  unexpected:
    'an unexpected failure (500 "Internal server error"), or what the HTTP layer answers before any route is chosen: ' +
    '400 for a malformed request or URL, 408 for a request too slow to arrive, 431 for headers too large',
} as const;
