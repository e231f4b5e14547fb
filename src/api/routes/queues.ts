// Queue routes (SPEC section 4 "queue actions" and "DLQ"):
//   GET  /queues                       → {ok, queues: [{name, paused, counts}]}
//   GET  /queues/:q/counts             → {ok, counts}
//   POST /queues/:q/pause | resume     → {ok}
//   GET  /queues/:q/paused             → {ok, paused}
//   POST /queues/:q/drain              remove waiting + delayed (+ dependents they free) → {ok, removed}
//   POST /queues/:q/clean              {grace, state, limit} → {ok, removed: [ids]}
//   POST /queues/:q/obliterate         {force?} → {ok}; 409 while jobs are active, unless force
//   POST /queues/:q/promote-jobs       {count?} → {ok, promoted}
//   GET  /queues/:q/dlq                ?start=&length= → {ok, jobs, count}
//   POST /queues/:q/dlq/retry          {id?} (absent = all) → {ok, retried}
//   POST /queues/:q/dlq/purge          → {ok, purged}

import type { FastifyInstance } from 'fastify';
import { cleanStates } from '../../broker/validate.js';
import { emptyBodyAsObject, noBody } from '../body.js';
import { ctxOf } from '../context.js';
import { sendOutcome } from '../errors.js';
import { queuesMax } from '../../constants.js';
import { counts, type ErrorWhen, errors, fieldRefused, jobId, jobView, jsonBodyRefused, noBodyRefused, okResponse, okWith, pageQuery, queryRefused, queueParams, queueRefused, writeRefused } from '../schemas.js';
import type { RouteDeps } from './types.js';

type QueueParams = { queue: string };

const cleanBody = {
  type: 'object',
  additionalProperties: false,
  required: ['grace'],
  properties: {
    grace: {
      type: 'integer',
      minimum: 0,
      description: 'Only jobs finished (completed, failed), started (active) or created (the others) at least this many ms ago',
    },
    state: {
      type: 'string',
      enum: cleanStates,
      description:
        'Which jobs (default completed). BullMQ names: wait = waiting (prioritized jobs included), paused = the waiting jobs of a paused queue, ' +
        'prioritized = waiting jobs with a priority, active = active jobs whose lock ran out (a job whose lock is held is never taken)',
    },
    limit: { type: 'integer', minimum: 0, description: 'Most jobs to remove (0 = no limit)' },
  },
} as const;
const obliterateBody = {
  type: 'object',
  additionalProperties: false,
  properties: { force: { type: 'boolean', description: 'Also remove active jobs (default false)' } },
} as const;
const promoteJobsBody = {
  type: 'object',
  additionalProperties: false,
  properties: { count: { type: 'integer', minimum: 1, description: 'Most delayed jobs to promote' } },
} as const;
const dlqRetryBody = { type: 'object', additionalProperties: false, properties: { id: jobId } } as const;
const dlqQuery = { type: 'object', additionalProperties: false, properties: pageQuery(10) } as const;

/** A read of one queue's numbers (an unknown queue has none: 200, not 404). */
const readErrors = errors(queueRefused);
/** A queue action that takes no body (pause, resume, drain, dlq/purge). */
const actionErrors = errors(queueRefused, noBodyRefused, writeRefused);
/** A queue action whose body is optional (clean, obliterate, promote-jobs, dlq/retry). */
const bodyActionErrors = (own: ErrorWhen = {}) => errors({ 400: fieldRefused, ...own }, queueRefused, jsonBodyRefused, writeRefused);

export function queueRoutes(app: FastifyInstance, { broker }: RouteDeps): void {
  const tags = ['queues'];
  app.get(
    '/queues',
    {
      schema: {
        operationId: 'listQueues',
        summary: 'Every queue with its counts',
        tags,
        response: {
          200: okWith({
            queues: {
              type: 'array',
              items: { type: 'object', properties: { name: { type: 'string' }, paused: { type: 'boolean' }, counts } },
            },
          }),
        },
      },
    },
    async () => ({ ok: true, queues: broker.listQueues() }),
  );

  app.get<{ Params: QueueParams }>(
    '/queues/:queue/counts',
    { schema: { operationId: 'getJobCounts', summary: 'Job counts by state', tags, params: queueParams, response: { 200: okWith({ counts }), ...readErrors } } },
    async (request) => ({ ok: true, counts: broker.counts(request.params.queue) }),
  );

  const simple = { params: queueParams, response: { 200: okResponse, ...actionErrors } };
  const pauseErrors = errors({ 409: `the queue is new and ${queuesMax} queues exist` }, queueRefused, noBodyRefused, writeRefused);
  app.post<{ Params: QueueParams }>(
    '/queues/:queue/pause',
    { preValidation: noBody, schema: { operationId: 'pauseQueue', summary: 'Pause a queue', tags, params: queueParams, response: { 200: okResponse, ...pauseErrors } } },
    async (request, reply) =>
      sendOutcome(reply, await broker.pause(request.params.queue, ctxOf(request))),
  );
  app.post<{ Params: QueueParams }>('/queues/:queue/resume', { preValidation: noBody, schema: { operationId: 'resumeQueue', summary: 'Resume a queue', tags, ...simple } }, async (request, reply) =>
    sendOutcome(reply, await broker.resume(request.params.queue, ctxOf(request))),
  );
  app.get<{ Params: QueueParams }>(
    '/queues/:queue/paused',
    { schema: { operationId: 'isQueuePaused', summary: 'Whether a queue is paused', tags, params: queueParams, response: { 200: okWith({ paused: { type: 'boolean' } }), ...readErrors } } },
    async (request) => ({ ok: true, paused: broker.isPaused(request.params.queue) }),
  );
  app.post<{ Params: QueueParams }>(
    '/queues/:queue/drain',
    { preValidation: noBody, schema: { operationId: 'drainQueue', summary: 'Remove waiting and delayed jobs', tags, params: queueParams, response: { 200: okWith({ removed: { type: 'integer' } }), ...actionErrors } } },
    async (request, reply) => sendOutcome(reply, await broker.drain(request.params.queue, ctxOf(request)), (o) => ({ removed: o.removed })),
  );
  app.post<{ Params: QueueParams; Body: object }>(
    '/queues/:queue/clean',
    {
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'cleanQueue',
        summary: 'Remove the jobs of one state older than grace, oldest first',
        tags,
        params: queueParams,
        body: cleanBody,
        response: { 200: okWith({ removed: { type: 'array', items: { type: 'string' } } }), ...bodyActionErrors() },
      },
    },
    async (request, reply) =>
      sendOutcome(reply, await broker.clean(request.params.queue, request.body, ctxOf(request)), (o) => ({ removed: o.removed })),
  );
  app.post<{ Params: QueueParams; Body: { force?: boolean } }>(
    '/queues/:queue/obliterate',
    {
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'obliterateQueue',
        summary: 'Remove the queue and all its jobs (409 while jobs are active, unless force)',
        tags,
        params: queueParams,
        body: obliterateBody,
        response: { 200: okResponse, ...bodyActionErrors({ 409: 'the queue has active jobs and force is not true' }) },
      },
    },
    async (request, reply) => sendOutcome(reply, await broker.obliterate(request.params.queue, ctxOf(request), request.body.force === true)),
  );
  app.post<{ Params: QueueParams; Body: object }>(
    '/queues/:queue/promote-jobs',
    {
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'promoteJobs',
        summary: 'Move delayed jobs to waiting',
        tags,
        params: queueParams,
        body: promoteJobsBody,
        response: { 200: okWith({ promoted: { type: 'integer' } }), ...bodyActionErrors() },
      },
    },
    async (request, reply) =>
      sendOutcome(reply, await broker.promoteJobs(request.params.queue, request.body, ctxOf(request)), (o) => ({ promoted: o.promoted })),
  );
  dlqRoutes(app, broker);
}

function dlqRoutes(app: FastifyInstance, broker: RouteDeps['broker']): void {
  const tags = ['dlq'];
  app.get<{ Params: QueueParams; Querystring: { start: number; length: number } }>(
    '/queues/:queue/dlq',
    {
      schema: {
        operationId: 'listDlqJobs',
        summary: 'Jobs in the dead-letter queue',
        tags,
        params: queueParams,
        querystring: dlqQuery,
        response: { 200: okWith({ jobs: { type: 'array', items: jobView }, count: { type: 'integer' } }), ...errors({ 400: queryRefused }, queueRefused) },
      },
    },
    async (request) => {
      const { jobs, count } = broker.dlq(request.params.queue, request.query.start, request.query.length);
      return { ok: true, jobs, count };
    },
  );
  app.post<{ Params: QueueParams; Body: { id?: string } }>(
    '/queues/:queue/dlq/retry',
    {
      preValidation: emptyBodyAsObject,
      schema: {
        operationId: 'retryDlq',
        summary: 'Retry one ({id}) or every job of the DLQ',
        tags,
        params: queueParams,
        body: dlqRetryBody,
        response: { 200: okWith({ retried: { type: 'integer' } }), ...bodyActionErrors({ 404: "id names no job in this queue's dead-letter queue (\"Job not found\")" }) },
      },
    },
    async (request, reply) =>
      sendOutcome(reply, await broker.dlqRetry(request.params.queue, request.body.id, ctxOf(request)), (o) => ({ retried: o.retried })),
  );
  app.post<{ Params: QueueParams }>(
    '/queues/:queue/dlq/purge',
    { preValidation: noBody, schema: { operationId: 'purgeDlq', summary: 'Remove every job of the DLQ', tags, params: queueParams, response: { 200: okWith({ purged: { type: 'integer' } }), ...actionErrors } } },
    async (request, reply) => sendOutcome(reply, await broker.dlqPurge(request.params.queue, ctxOf(request)), (o) => ({ purged: o.purged })),
  );
}
