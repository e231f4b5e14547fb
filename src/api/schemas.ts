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

/** Standard error responses every route may give besides its own. */
export const errorResponses = {
  400: errorResponse,
  401: errorResponse,
  404: errorResponse,
  409: errorResponse,
  413: errorResponse,
  429: errorResponse,
  500: errorResponse,
  503: errorResponse,
  507: errorResponse,
} as const;
