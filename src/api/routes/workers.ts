// Push-worker routes (SPEC section 6, BullMQ Proxy):
//   POST   /workers          register or replace the worker of a queue → {ok}
//   GET    /workers          → {ok, workers}, header values redacted
//   DELETE /workers/:queue   → {ok}, 404 "Worker not found"
//
// Endpoint headers usually carry the endpoint's credentials (`Authorization: Bearer …`). The
// listing answers every token holder, so it names each header and hides its value; the
// registration record and the calls keep the values.

import type { FastifyInstance } from 'fastify';
import type { WorkerConfig } from '../../broker/types.js';
import { noBody } from '../body.js';
import { ctxOf } from '../context.js';
import { sendError, sendOutcome } from '../errors.js';
import { workersMax } from '../../constants.js';
import { errors, fieldRefused, jsonBodyRefused, noBodyRefused, okResponse, okWith, queueParams, queueRefused, writeRefused } from '../schemas.js';
import { toWorkerConfig, type WorkerBody, workerBody } from '../worker-validation.js';
import type { RouteDeps } from './types.js';

export function workerRoutes(app: FastifyInstance, { broker }: RouteDeps): void {
  const tags = ['workers'];
  app.post<{ Body: WorkerBody }>(
    '/workers',
    {
      schema: {
        operationId: 'registerWorker',
        summary: 'Register (or replace) the push worker of a queue',
        tags,
        body: workerBody,
        response: {
          200: okResponse,
          ...errors({ 400: fieldRefused, 409: `the queue has no worker and ${workersMax} workers exist` }, jsonBodyRefused, writeRefused),
        },
      },
    },
    async (request, reply) => {
      const validation = toWorkerConfig(request.body);
      if (!validation.ok) return sendError(reply, 400, validation.error);
      return sendOutcome(reply, await broker.registerWorker(validation.config, ctxOf(request)));
    },
  );

  app.get(
    '/workers',
    { schema: { operationId: 'listWorkers', summary: 'Registered push workers', tags, response: { 200: okWith({ workers: { type: 'array', items: { type: 'object', description: 'a registration with its defaults filled in, header values redacted' } } }) } } },
    async () => ({ ok: true, workers: broker.workers().map(redactHeaders) }),
  );

  app.delete<{ Params: { queue: string } }>(
    '/workers/:queue',
    {
      preValidation: noBody,
      schema: {
        operationId: 'removeWorker',
        summary: 'Remove the push worker of a queue',
        tags,
        params: queueParams,
        response: { 200: okResponse, ...errors({ 404: 'no worker is registered for this queue ("Worker not found")' }, queueRefused, noBodyRefused, writeRefused) },
      },
    },
    async (request, reply) => sendOutcome(reply, await broker.removeWorker(request.params.queue, ctxOf(request))),
  );
}

/** What GET /workers shows in place of each endpoint header's value. */
const headerValueRedacted = '[redacted]';

function redactHeaders(config: WorkerConfig): WorkerConfig {
  const headers = Object.fromEntries(Object.keys(config.endpoint.headers).map((name) => [name, headerValueRedacted]));
  return { ...config, endpoint: { ...config.endpoint, headers } };
}
