// Progress and logs, at both paths SPEC section 4 names (/jobs/:id/... and
// /queues/:queue/jobs/:id/...). Besides an AUTH_TOKENS token, these accept the job's lock token
// while the job is active with it (BullMQ Proxy's job-token auth; see auth.ts, `auth: 'job-token'`).
// The queue-scoped paths answer 404 "Job not found" when the job is not in that queue.
//   POST /…/progress   body: a number, or {progress, message?}   → {ok}
//   POST /…/logs       body: a string, or {message}              → {ok}
//   GET  /…/logs       ?start=&length=                           → {ok, logs, count}

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { BrokerApi } from '../../broker/types.js';
import { jobLogsMax } from '../../constants.js';
import { ctxOf } from '../context.js';
import { type ErrorEnvelope, sendApiError, sendOutcome } from '../errors.js';
import { errors, fieldRefused, idParams, idRefused, jobMissing, jsonBodyRefused, okResponse, okWith, pageQuery, queryRefused, queueIdParams, queueRefused, writeRefused } from '../schemas.js';
import { logBody, progressBody } from './job-schemas.js';
import type { RouteDeps } from './types.js';

type Params = { id: string; queue?: string };
type ProgressBody = number | { progress: number; message?: string };
type LogBody = string | { message: string };

const logsQuery = { type: 'object', additionalProperties: false, properties: pageQuery(100, jobLogsMax) } as const;
const logsResponse = okWith({ logs: { type: 'array', items: { type: 'string' } }, count: { type: 'integer' } });

/** For the queue-scoped paths: the 404 envelope to answer when the job is not in that queue. */
function notInQueue(broker: BrokerApi, params: Params, reply: FastifyReply): ErrorEnvelope | null {
  if (params.queue === undefined || broker.getJob(params.id)?.queue === params.queue) return null;
  return sendApiError(reply, 'jobNotFound');
}

export function jobUpdateRoutes(app: FastifyInstance, { broker }: RouteDeps): void {
  for (const prefix of ['/jobs/:id', '/queues/:queue/jobs/:id']) {
    const scoped = prefix.startsWith('/queues');
    const params = scoped ? queueIdParams : idParams;
    // The params' 400s and the 404, as notInQueue answers it on the queue-scoped paths.
    const job = scoped ? [{ 404: 'no job with this id in this queue ("Job not found")' }, queueRefused, idRefused] : [{ 404: jobMissing }, idRefused];

    app.post<{ Params: Params; Body: ProgressBody }>(
      `${prefix}/progress`,
      {
        config: { auth: 'job-token' },
        schema: { operationId: scoped ? 'updateQueueJobProgress' : 'updateProgress', summary: 'Update job progress', tags: ['jobs'], params, body: progressBody, response: { 200: okResponse, ...errors({ 400: fieldRefused, 409: 'the job is completed or failed ("Job is already finished")' }, ...job, jsonBodyRefused, writeRefused) } },
      },
      async (request, reply) => {
        const missing = notInQueue(broker, request.params, reply);
        if (missing) return missing;
        const body = typeof request.body === 'number' ? { progress: request.body } : request.body;
        return sendOutcome(reply, await broker.progress(request.params.id, body, ctxOf(request)));
      },
    );

    app.post<{ Params: Params; Body: LogBody }>(
      `${prefix}/logs`,
      {
        config: { auth: 'job-token' },
        schema: { operationId: scoped ? 'addQueueJobLog' : 'addJobLog', summary: 'Add a log line to a job', tags: ['jobs'], params, body: logBody, response: { 200: okResponse, ...errors({ 400: fieldRefused }, ...job, jsonBodyRefused, writeRefused) } },
      },
      async (request, reply) => {
        const missing = notInQueue(broker, request.params, reply);
        if (missing) return missing;
        const message = typeof request.body === 'string' ? request.body : request.body.message;
        return sendOutcome(reply, await broker.addLog(request.params.id, message, ctxOf(request)));
      },
    );

    app.get<{ Params: Params; Querystring: { start: number; length: number } }>(
      `${prefix}/logs`,
      {
        config: { auth: 'job-token' },
        schema: { operationId: scoped ? 'getQueueJobLogs' : 'getJobLogs', summary: 'Read the logs of a job', tags: ['jobs'], params, querystring: logsQuery, response: { 200: logsResponse, ...errors({ 400: queryRefused }, ...job) } },
      },
      async (request, reply) => {
        const missing = notInQueue(broker, request.params, reply);
        if (missing) return missing;
        const { start, length } = request.query;
        return sendOutcome(reply, broker.getLogs(request.params.id, start, length), (o) => ({ logs: o.logs, count: o.count }));
      },
    );
  }
}
