// Request schemas of the job routes. Push bodies are checked here only for shape and the seed's
// field types; the broker owns the rest of push validation (BullMQ `opts`, limits, unknown keys)
// because the WebSocket PUSH command needs exactly the same rules.

import { bulkJobsMax, errorTextLengthMax, logMessageLengthMax, progressMessageLengthMax, pullTimeoutMsMax } from '../../constants.js';
import { counts, jobView, LIST_STATUS_NAMES, okWith, pageQuery, statusesPattern } from '../schemas.js';

const nullable = (type: string) => ({ type: [type, 'null'] });
const keep = { anyOf: [{ type: 'boolean' }, { type: 'number' }, { type: 'object' }], description: 'a boolean, a count or {count, age}' };

/** One job, seed-004 shaped (`data` + flat options) or BullMQ shaped (`name`, `data`, `opts`). */
export const pushItem = {
  type: 'object',
  properties: {
    data: { description: 'Job payload (any JSON)' },
    name: { type: 'string', description: 'Job name (default "default")' },
    priority: { type: 'number', description: 'Higher value = processed sooner (default 0)' },
    delay: { type: 'number', description: 'Delay before processing, ms (default 0)' },
    maxAttempts: { type: 'number', description: 'Maximum attempts (default 3)' },
    backoff: { anyOf: [{ type: 'number' }, { type: 'object' }], description: 'a number (ms, default 1000) or {type, delay}' },
    ttl: nullable('number'),
    timeout: nullable('number'),
    uniqueKey: nullable('string'),
    jobId: nullable('string'),
    tags: { type: 'array', items: { type: 'string' } },
    groupId: nullable('string'),
    lifo: { type: 'boolean' },
    removeOnComplete: keep,
    removeOnFail: keep,
    durable: { type: 'boolean', description: 'Wait for fsync even when LOG_SYNC=interval' },
    dependsOn: { type: 'array', items: { type: 'string' } },
    repeat: { type: ['object', 'null'] },
    opts: { type: 'object', description: 'BullMQ job options (attempts, backoff, delay, priority, lifo, jobId, removeOnComplete, removeOnFail, repeat)' },
  },
} as const;

export const pushBody = {
  description: 'a job object or a non-empty array of jobs',
  oneOf: [pushItem, { type: 'array', minItems: 1, maxItems: bulkJobsMax, items: pushItem }],
} as const;

export const bulkBody = {
  type: 'object',
  required: ['jobs'],
  additionalProperties: false,
  properties: { jobs: { type: 'array', minItems: 1, maxItems: bulkJobsMax, items: pushItem } },
} as const;

export const pullQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    timeout: {
      type: 'integer',
      minimum: 0,
      maximum: pullTimeoutMsMax,
      default: 0,
      description: 'Long-poll timeout in ms (0 = return immediately)',
    },
  },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    statuses: {
      type: 'string',
      pattern: statusesPattern,
      default: 'waiting,paused,active,completed,failed,delayed',
      description: `Comma-separated: ${LIST_STATUS_NAMES.join(', ')} (BullMQ's names as clean takes them: wait = waiting, prioritized = the waiting jobs with a priority)`,
    },
    ...pageQuery(10),
  },
} as const;

export const ackBody = {
  type: 'object',
  additionalProperties: false,
  properties: { result: { description: 'Job result (any JSON)' }, token: { type: 'string' } },
} as const;

export const failBody = {
  type: 'object',
  additionalProperties: false,
  properties: { error: { type: 'string', maxLength: errorTextLengthMax }, token: { type: 'string' } },
} as const;

const progressValue = { type: 'number', minimum: 0, maximum: 100 } as const;
export const progressBody = {
  description: 'a number from 0 to 100 or {"progress": <0-100>, "message"?: <string>}',
  oneOf: [
    progressValue,
    {
      type: 'object',
      required: ['progress'],
      additionalProperties: false,
      properties: { progress: progressValue, message: { type: 'string', maxLength: progressMessageLengthMax } },
    },
  ],
} as const;

const logMessage = { type: 'string', minLength: 1, maxLength: logMessageLengthMax } as const;
export const logBody = {
  description: `a string or {"message": <string>} of 1 to ${logMessageLengthMax} characters`,
  oneOf: [
    logMessage,
    { type: 'object', required: ['message'], additionalProperties: false, properties: { message: logMessage } },
  ],
} as const;

export const priorityBody = {
  type: 'object',
  required: ['priority'],
  additionalProperties: false,
  properties: { priority: { type: 'integer' } },
} as const;

export const jobResponses = {
  job: okWith({ job: jobView }),
  pulled: okWith({
    job: { anyOf: [jobView, { type: 'null' }] },
    token: { type: ['string', 'null'] },
  }),
  list: okWith({
    counts,
    jobs: { type: 'array', items: jobView },
    start: { type: 'integer' },
    length: { type: 'integer' },
  }),
} as const;
