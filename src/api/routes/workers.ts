// Push-worker routes (SPEC section 6, BullMQ Proxy):
//   POST   /workers          register or replace the worker of a queue → {ok}
//   GET    /workers          → {ok, workers}
//   DELETE /workers/:queue   → {ok}, 404 "Worker not found"

import type { FastifyInstance } from 'fastify';
import { ctxOf } from '../context.js';
import { sendError, sendOutcome } from '../errors.js';
import { errorResponses, okResponse, okWith, queueParams } from '../schemas.js';
import { toWorkerConfig, type WorkerBody, workerBody } from '../worker-validation.js';
import type { RouteDeps } from './types.js';

export function workerRoutes(app: FastifyInstance, { broker }: RouteDeps): void {
  const tags = ['workers'];
  app.post<{ Body: WorkerBody }>(
    '/workers',
    { schema: { summary: 'Register (or replace) the push worker of a queue', tags, body: workerBody, response: { 200: okResponse, ...errorResponses } } },
    async (request, reply) => {
      const validation = toWorkerConfig(request.body);
      if (!validation.ok) return sendError(reply, 400, validation.error);
      return sendOutcome(reply, await broker.registerWorker(validation.config, ctxOf(request)));
    },
  );

  app.get(
    '/workers',
    { schema: { summary: 'Registered push workers', tags, response: { 200: okWith({ workers: { type: 'array', items: { type: 'object', description: 'a registration with its defaults filled in' } } }) } } },
    async () => ({ ok: true, workers: broker.workers() }),
  );

  app.delete<{ Params: { queue: string } }>(
    '/workers/:queue',
    { schema: { summary: 'Remove the push worker of a queue', tags, params: queueParams, response: { 200: okResponse, ...errorResponses } } },
    async (request, reply) => sendOutcome(reply, await broker.removeWorker(request.params.queue, ctxOf(request))),
  );
}
