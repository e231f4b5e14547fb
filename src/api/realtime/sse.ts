// Server-Sent Events: `GET /events` and `GET /events/queues/:queue` (seed 004 "Server-Sent Events").
//
// Wire format, per connection:
//   id: <offset>\ndata: {"connected":true,"clientId":"<uuid>"}\n\n first, once
//   id: <offset>\ndata: {"eventType":…,"queue":…,"jobId":…,"timestamp":…,…extra}\n\n
//   : keep-alive\n\n                                             every sseKeepAliveMs
//   data: {"ok":false,"error":"Slow consumer: …"}\n\n             last, when cut off
//
// The log offset travels only as the SSE `id`, not in `data`, so `data` is exactly seed 004's
// shape; EventSource exposes it as `lastEventId` and sends it back as `Last-Event-ID` on reconnect.
// The connection message carries the offset the stream starts after (-1 on an empty log), so that
// an EventSource that reconnects before its first event resumes from there, not live from its
// reconnect, which would skip whatever came in between.
// All events of one record share its offset and are written in one chunk, so a client never holds
// half a record's events under a resumable id. The response is hijacked from fastify, so the CORS
// header is set here. Authentication is buildServer's onRequest hook (a bearer token is required
// when AUTH_TOKENS is set; 401 envelope otherwise), which runs before this handler.

import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { errors } from '../schemas.js';
import type { BrokerEvent } from '../../broker/events.js';
import { onConnectionClose } from '../connection-close.js';
import { connections } from '../connections.js';
import type { RealtimeDeps } from './deps.js';
import { parseStreamParams } from './params.js';
import { sseMessages } from './render.js';
import { Subscription, type SubscriptionEnd } from './subscription.js';

export const sseSlowConsumerError = 'Slow consumer: backlog limit exceeded; reconnect with Last-Event-ID';

export function registerSse(app: FastifyInstance, deps: RealtimeDeps, streams: Set<() => void>): void {
  const handler = (request: FastifyRequest, reply: FastifyReply): void => openStream(request, reply, deps, streams);
  app.get('/events', { schema: sseSchema('streamEvents', 'Server-Sent Events of every queue', false) }, handler);
  app.get('/events/queues/:queue', { schema: { ...sseSchema('streamQueueEvents', 'Server-Sent Events of one queue', true), params: queueParamDoc } }, handler);
}

/** For the OpenAPI document only: no value can fail these (no types), so the parameters are
 *  checked by parseStreamParams alone, with its messages. */
const queueParamDoc = { type: 'object', properties: { queue: { description: 'Queue name' } } } as const;

function sseSchema(operationId: string, summary: string, queue: boolean): FastifySchema {
  const resume = 'Resume after this log offset (-1: the whole log): every event after it is sent first, then the live tail';
  return {
    operationId,
    summary,
    tags: ['real-time'],
    querystring: { type: 'object', properties: { from: { description: `${resume} (Last-Event-ID wins when both are given)` } } },
    headers: { type: 'object', properties: { 'last-event-id': { description: `${resume}; what an EventSource sends when it reconnects` } } },
    response: {
      200: {
        description:
          'text/event-stream: first `id: <offset the stream starts after>` + `data: {"connected":true,"clientId"}`, then one `id: <offset>` + `data: <event JSON>` message per event',
      },
      ...errors({
        400: `${queue ? 'queue is not a valid queue name, or ' : ''}from or Last-Event-ID is not a log offset (-1 or more) before the end of the log`,
      }),
    },
  };
}

function openStream(request: FastifyRequest, reply: FastifyReply, deps: RealtimeDeps, streams: Set<() => void>): void {
  const { config, limits } = deps;
  const params = parseStreamParams(request.params, request.headers['last-event-id'], request.query, deps.log.durableOffset);
  if (!params.ok) {
    void reply.code(400).send({ ok: false, error: params.error });
    return;
  }

  const res = reply.raw;
  reply.hijack();
  const sink = { deliver: (events: BrokerEvent[]) => res.write(sseMessages(events)), backlogBytes: () => res.writableLength };
  const subscription = new Subscription(deps.log, { ...params.value, sink, limits });
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    Connection: 'keep-alive',
    'Access-Control-Allow-Origin': config.corsAllowOrigin,
  });
  res.socket?.setNoDelay(true);
  res.write(`id: ${subscription.startAfter}\ndata: ${JSON.stringify({ connected: true, clientId: randomUUID() })}\n\n`);

  connections.sse += 1;
  const stop = (): void => subscription.close();
  streams.add(stop);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), limits.sseKeepAliveMs);
  const unwatch = onConnectionClose(request.raw.socket, stop);
  void subscription.run().then((ended) => {
    clearInterval(keepAlive);
    unwatch();
    streams.delete(stop);
    connections.sse -= 1;
    finish(res, ended, limits.closeGraceMs, streams);
  });
}


/**
 * End the response after the stream stopped; a cut-off client gets `graceMs` to read the rest,
 * unless the server closes first.
 */
function finish(res: ServerResponse, ended: SubscriptionEnd, graceMs: number, streams: Set<() => void>): void {
  if (res.destroyed) return;
  if (ended.end === 'closed') {
    res.end();
    return;
  }
  const error = ended.end === 'slow' ? sseSlowConsumerError : ended.error.message;
  // A plain message, no id and no event name: seed 004 sends every message as `data:`, so an
  // `onmessage` handler sees it, and the client's Last-Event-ID stays at its last event.
  res.end(`data: ${JSON.stringify({ ok: false, error })}\n\n`);
  const kill = (): void => {
    res.destroy();
  };
  const timer = setTimeout(kill, graceMs);
  streams.add(kill);
  res.once('close', () => {
    clearTimeout(timer);
    streams.delete(kill);
  });
}
