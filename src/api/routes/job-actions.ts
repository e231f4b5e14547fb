// Job routes by id (seed 004 + SPEC section 4 "job actions"):
//   GET    /jobs/:id            → {ok, job}                 404 "Job not found"
//   DELETE /jobs/:id            cancel/remove → {ok}
//   POST   /jobs/:id/ack        {result?, token?} → {ok}    400 "Job not found or not active", 409 lock mismatch
//   POST   /jobs/:id/fail       {error?, token?} → {ok}
//   POST   /jobs/:id/promote    delayed → waiting → {ok}
//   POST   /jobs/:id/retry      failed → waiting → {ok}
//   PUT    /jobs/:id/priority   {priority} → {ok}
//   GET    /jobs/:id/state      → {ok, state}
//   GET    /jobs/:id/result     → {ok, result}

import type { FastifyInstance } from 'fastify';
import { errorTextLengthMax, jobDataBytesMax } from '../../constants.js';
import { emptyBodyAsObject, noBody } from '../body.js';
import { ctxOf } from '../context.js';
import { sendApiError, sendError, sendOutcome } from '../errors.js';
import { timed } from '../prometheus.js';
import { type ErrorWhen, errors, fieldRefused, idParams, idRefused, jobMissing, jsonBodyRefused, noBodyRefused, okResponse, okWith, writeRefused } from '../schemas.js';
import { textTooLong } from '../validation.js';
import { ackBody, failBody, jobResponses, priorityBody } from './job-schemas.js';
import type { RouteDeps } from './types.js';

type IdParams = { id: string };
/** A read of one job. */
const readErrors = errors({ 404: jobMissing }, idRefused);
/** An action on one job that takes no body: cancel, promote, retry. */
const actionErrors = (conflict: ErrorWhen = {}) => errors({ 404: jobMissing, ...conflict }, idRefused, noBodyRefused, writeRefused);
/** ack and fail: seed 004 answers 400 "Job not found or not active", never 404. */
const settleErrors = (field: string) =>
  errors(
    { 400: `the job does not exist or is not active ("Job not found or not active"), or ${field}`, 409: 'token is not the lock token the job holds ("Lock token mismatch")' },
    idRefused,
    jsonBodyRefused,
    writeRefused,
  );

export function jobActionRoutes(app: FastifyInstance, { broker, latency }: RouteDeps): void {
  app.get<{ Params: IdParams }>(
    '/jobs/:id',
    { schema: { operationId: 'getJob', summary: 'Get a job', tags: ['jobs'], params: idParams, response: { 200: jobResponses.job, ...readErrors } } },
    async (request, reply) => {
      const job = broker.getJob(request.params.id);
      return job ? { ok: true, job } : sendApiError(reply, 'jobNotFound');
    },
  );

  app.delete<{ Params: IdParams }>(
    '/jobs/:id',
    { preValidation: noBody, schema: { operationId: 'cancelJob', summary: 'Cancel (remove) a job', tags: ['jobs'], params: idParams, response: { 200: okResponse, ...actionErrors() } } },
    async (request, reply) => sendOutcome(reply, await broker.cancel(request.params.id, ctxOf(request))),
  );

  app.post<{ Params: IdParams; Body: { result?: unknown; token?: string } }>(
    '/jobs/:id/ack',
    { preValidation: emptyBodyAsObject, schema: { operationId: 'ackJob', summary: 'Complete an active job', tags: ['jobs'], params: idParams, body: ackBody, response: { 200: okResponse, ...settleErrors(`${fieldRefused}, or result is over ${jobDataBytesMax} bytes as JSON`) } } },
    async (request, reply) => {
      const outcome = await timed(latency.ack, () => broker.ack(request.params.id, request.body, ctxOf(request)));
      return sendOutcome(reply, outcome);
    },
  );

  app.post<{ Params: IdParams; Body: { error?: string; token?: string } }>(
    '/jobs/:id/fail',
    { preValidation: emptyBodyAsObject, schema: { operationId: 'failJob', summary: 'Fail an active job (retry or DLQ)', tags: ['jobs'], params: idParams, body: failBody, response: { 200: okResponse, ...settleErrors(`${fieldRefused}, or error is over ${errorTextLengthMax} characters`) } } },
    async (request, reply) => {
      const tooLong = textTooLong('error', request.body.error, errorTextLengthMax);
      if (tooLong !== null) return sendError(reply, 400, tooLong);
      return sendOutcome(reply, await broker.fail(request.params.id, request.body, ctxOf(request)));
    },
  );

  app.post<{ Params: IdParams }>(
    '/jobs/:id/promote',
    { preValidation: noBody, schema: { operationId: 'promoteJob', summary: 'Move a delayed job to waiting', tags: ['jobs'], params: idParams, response: { 200: okResponse, ...actionErrors({ 409: 'the job is not delayed ("Job is not delayed")' }) } } },
    async (request, reply) => sendOutcome(reply, await broker.promote(request.params.id, ctxOf(request))),
  );

  app.post<{ Params: IdParams }>(
    '/jobs/:id/retry',
    { preValidation: noBody, schema: { operationId: 'retryJob', summary: 'Retry a failed job (attempts reset)', tags: ['jobs'], params: idParams, response: { 200: okResponse, ...actionErrors({ 409: 'the job is not failed ("Job is not failed")' }) } } },
    async (request, reply) => sendOutcome(reply, await broker.retry(request.params.id, ctxOf(request))),
  );

  app.put<{ Params: IdParams; Body: { priority: number } }>(
    '/jobs/:id/priority',
    {
      schema: {
        operationId: 'changePriority',
        summary: 'Change the priority of a job',
        tags: ['jobs'],
        params: idParams,
        body: priorityBody,
        response: {
          200: okResponse,
          ...errors({ 400: fieldRefused, 404: jobMissing, 409: 'the job is not waiting or delayed ("Job is not waiting or delayed")' }, idRefused, jsonBodyRefused, writeRefused),
        },
      },
    },
    async (request, reply) =>
      sendOutcome(reply, await broker.changePriority(request.params.id, request.body.priority, ctxOf(request))),
  );

  app.get<{ Params: IdParams }>(
    '/jobs/:id/state',
    { schema: { operationId: 'getJobState', summary: 'The state of a job', tags: ['jobs'], params: idParams, response: { 200: okWith({ state: { type: 'string' } }), ...readErrors } } },
    async (request, reply) => {
      const state = broker.jobState(request.params.id);
      return state === null ? sendApiError(reply, 'jobNotFound') : { ok: true, state };
    },
  );

  app.get<{ Params: IdParams }>(
    '/jobs/:id/result',
    { schema: { operationId: 'getJobResult', summary: 'The result of a completed job', tags: ['jobs'], params: idParams, response: { 200: okWith({ result: {} }), ...readErrors } } },
    async (request, reply) => sendOutcome(reply, broker.jobResult(request.params.id), (o) => ({ result: o.result })),
  );
}
