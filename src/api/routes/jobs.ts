// Queue-scoped job routes (seed 004 + SPEC section 4):
//   POST /queues/:queue/jobs          push one (object) or many (array)   → {ok, id} | {ok, ids}
//   POST /queues/:queue/jobs/bulk     {jobs: [...]}                       → {ok, ids}
//   GET  /queues/:queue/jobs          pull, ?timeout= long-poll (ms)      → {ok, job, token}
//   GET  /queues/:queue/jobs/list     ?statuses=&start=&length=           → {ok, counts, jobs, start, length}
//   GET  /queues/:queue/jobs/:id      the job if it is in that queue      → {ok, job}
//
// A long-poll pull is aborted when the client disconnects and when the server starts closing,
// so neither a gone client nor shutdown waits out the timeout.

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Failure, ListStatus, Outcome, PullOutcome } from '../../broker/types.js';
import { unaliasState, unknownFieldError } from '../../broker/validate.js';
import { pullWaitersMax, queuesMax } from '../../constants.js';
import { onConnectionClose } from '../connection-close.js';
import { clientAddress, ctxOf } from '../context.js';
import { sendApiError, sendOutcome } from '../errors.js';
import { timed } from '../prometheus.js';
import { automaticErrors, errors, fieldRefused, idRefused, jsonBodyRefused, queryRefused, queueIdParams, queueParams, queueRefused, writeRefused } from '../schemas.js';
import { bulkBody, jobResponses, listQuery, pullQuery, pushBody } from './job-schemas.js';
import type { RouteDeps } from './types.js';

type QueueParams = { queue: string };

const pushErrors = errors(
  {
    400: `${fieldRefused}, in the job or in an item of the array`,
    409: `jobId already names a job of another queue, or the queue is new and ${queuesMax} queues exist`,
  },
  queueRefused,
  jsonBodyRefused,
  writeRefused,
);

/** The broker names a bulk push's items `jobs[i]`, their field in `/jobs/bulk` and `PUSHB`; in an
 *  array body they are `body[i]`, as the schema's own errors call them. */
function itemsNamedBody<T extends object>(outcome: Outcome<T>): Outcome<T> {
  return outcome.ok || !outcome.error.startsWith('jobs[') ? outcome : { ...outcome, error: `body${outcome.error.slice('jobs'.length)}` };
}

/** A one-job push with a `jobs` field was meant as a bulk push: the refusal says where one goes. */
function bulkHint(failure: Failure, queue: string): Failure {
  if (failure.error !== unknownFieldError('jobs')) return failure;
  return { ...failure, error: `${failure.error} in a one-job push: push many as an array body, or as {"jobs": [...]} to POST /queues/${queue}/jobs/bulk` };
}

export function jobRoutes(app: FastifyInstance, { broker, latency }: RouteDeps): void {
  app.post<{ Params: QueueParams; Body: unknown }>(
    '/queues/:queue/jobs',
    {
      config: { plainJsonBody: true },
      schema: {
        operationId: 'pushJobs',
        summary: 'Push a job (object) or jobs (array, all-or-nothing)',
        tags: ['jobs'],
        params: queueParams,
        body: pushBody,
        response: { 200: { description: '{ok, id} for an object, {ok, ids} for an array' }, ...pushErrors },
      },
    },
    // Not async: the push's own promise, with one continuation, is what fastify waits for.
    (request, reply) => {
      const { queue } = request.params;
      const body = request.body;
      const ctx = ctxOf(request);
      if (Array.isArray(body)) {
        return timed(latency.push, () => broker.pushBulk(queue, body, ctx)).then((outcome) =>
          sendOutcome(reply, itemsNamedBody(outcome), (o) => ({ ids: o.ids })),
        );
      }
      // One job, the hot path: the id comes back at once and one continuation waits for the
      // group commit's durability (broker.push and timed() would add two more promises).
      const started = performance.now();
      const pushed = broker.pushNow(queue, body, ctx);
      if ('error' in pushed) {
        latency.push.observe(performance.now() - started);
        return Promise.resolve(sendOutcome(reply, bulkHint(pushed, queue)));
      }
      const id = pushed.id;
      return pushed.durable.then((failed) => {
        latency.push.observe(performance.now() - started);
        return failed === null ? { ok: true, id } : sendOutcome(reply, failed);
      });
    },
  );

  app.post<{ Params: QueueParams; Body: { jobs: unknown[] } }>(
    '/queues/:queue/jobs/bulk',
    {
      schema: {
        operationId: 'pushBulk',
        summary: 'Push many jobs (all-or-nothing validation)',
        tags: ['jobs'],
        params: queueParams,
        body: bulkBody,
        response: { 200: { description: '{ok, ids}' }, ...pushErrors },
      },
    },
    async (request, reply) => {
      const { queue } = request.params;
      const outcome = await timed(latency.push, () => broker.pushBulk(queue, request.body.jobs, ctxOf(request)));
      return sendOutcome(reply, outcome, (o) => ({ ids: o.ids }));
    },
  );

  registerPull(app, { broker, latency });

  app.get<{ Params: QueueParams; Querystring: { statuses: string; start: number; length: number } }>(
    '/queues/:queue/jobs/list',
    {
      schema: {
        operationId: 'listQueueJobs',
        summary: 'List jobs by status',
        tags: ['jobs'],
        params: queueParams,
        querystring: listQuery,
        response: { 200: jobResponses.list, ...errors({ 400: queryRefused }, queueRefused) },
      },
    },
    async (request) => {
      const { statuses, start, length } = request.query;
      const wanted = [...new Set(statuses.split(',').map((name) => unaliasState(name as ListStatus)))];
      const { counts, jobs } = broker.listJobs(request.params.queue, wanted, start, length);
      return { ok: true, counts, jobs, start, length };
    },
  );

  app.get<{ Params: QueueParams & { id: string } }>(
    '/queues/:queue/jobs/:id',
    {
      schema: {
        operationId: 'getQueueJob',
        summary: 'Get a job of this queue',
        tags: ['jobs'],
        params: queueIdParams,
        response: { 200: jobResponses.job, ...errors({ 404: 'no job with this id in this queue ("Job not found")' }, queueRefused, idRefused) },
      },
    },
    async (request, reply) => {
      const job = broker.getJob(request.params.id);
      if (!job || job.queue !== request.params.queue) return sendApiError(reply, 'jobNotFound');
      return { ok: true, job };
    },
  );
}

function registerPull(app: FastifyInstance, { broker, latency }: Pick<RouteDeps, 'broker' | 'latency'>): void {
  const waiting = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const controller of waiting) controller.abort();
  });

  app.get<{ Params: QueueParams; Querystring: { timeout: number } }>(
    '/queues/:queue/jobs',
    {
      schema: {
        operationId: 'pullJob',
        summary: 'Pull the next job (long-poll with ?timeout=ms)',
        tags: ['jobs'],
        params: queueParams,
        querystring: pullQuery,
        response: {
          200: jobResponses.pulled,
          ...errors(
            { 400: queryRefused, 503: `${automaticErrors.unavailable}, or ${pullWaitersMax} long polls already wait ("Too many waiting pulls")` },
            queueRefused,
            writeRefused,
          ),
        },
      },
    },
    async (request, reply) => {
      const ctx = ctxOf(request, `http:${clientAddress(request)}`);
      const timeoutMs = request.query.timeout;
      const pull = (signal?: AbortSignal): Promise<PullOutcome> =>
        timed(latency.pull, () => broker.pullJson(request.params.queue, signal ? { timeoutMs, signal } : { timeoutMs }, ctx));
      // A pull without a timeout answers at once: nothing to abort, no listeners to add.
      const outcome = timeoutMs === 0 ? await pull() : await abortable(reply, waiting, pull);
      return sendOutcome(reply, outcome, (o) => ({ job: o.job, token: o.token }));
    },
  );
}

/** Runs a long poll that is aborted when the client goes away or the server closes. */
async function abortable(reply: FastifyReply, waiting: Set<AbortController>, run: (signal: AbortSignal) => Promise<PullOutcome>): Promise<PullOutcome> {
  const controller = new AbortController();
  const unwatch = onConnectionClose(reply.request.raw.socket, () => abortIfGone(reply, controller));
  waiting.add(controller);
  try {
    return await run(controller.signal);
  } finally {
    unwatch();
    waiting.delete(controller);
  }
}

/** The connection closed before we wrote the response: the client went away. */
function abortIfGone(reply: FastifyReply, controller: AbortController): void {
  if (!reply.raw.writableEnded) controller.abort();
}
