// Reference servers for the HTTP benchmarks, run as their own process on 127.0.0.1:
//
//   node build/tools/bench-ref-server.js fastify <port>
//     the HTTP ceiling of this machine: the push routes parse the JSON body and answer
//     {ok:true,id} (or {ok:true,ids} for an array / bulk body), nothing else; no disk. Its
//     WebSocket route /ws/queues/:queue (@fastify/websocket, as tapeq uses) parses each command
//     and answers {ok:true,id,reqId}: the WebSocket ceiling of this machine.
//   node build/tools/bench-ref-server.js memory-queue <port>
//     the ceiling of the full cycle: a trivial queue over an array with the same routes as tapeq
//     (push, bulk, pull with token, ack with token), no log, no validation, no disk.
//
// Both answer GET /ready with 200 and exit on SIGTERM.

import { randomUUID } from 'node:crypto';
import websocket from '@fastify/websocket';
import Fastify, { type FastifyInstance } from 'fastify';

interface Job {
  id: string;
  queue: string;
  data: unknown;
  token: string | null;
}

function bareFastify(app: FastifyInstance): void {
  app.post<{ Body: unknown }>('/queues/:queue/jobs', async (request) => {
    const body = request.body;
    if (Array.isArray(body)) return { ok: true, ids: body.map(() => randomUUID()) };
    return { ok: true, id: randomUUID() };
  });
  app.post<{ Body: { jobs?: unknown[] } }>('/queues/:queue/jobs/bulk', async (request) => ({
    ok: true,
    ids: (request.body.jobs ?? []).map(() => randomUUID()),
  }));
}

/** Registers the bare WebSocket route; call before the routes are ready (it is a plugin). */
async function bareWebSocket(app: FastifyInstance): Promise<void> {
  await app.register(websocket, { options: { maxPayload: 1_048_576, perMessageDeflate: false } });
  app.get('/ws/queues/:queue', { websocket: true }, (socket, request) => {
    // Replies of one tick leave in one write, as tapeq's do.
    const tcp = request.raw.socket;
    let corked = false;
    socket.on('message', (raw: Buffer) => {
      const command = JSON.parse(raw.toString('utf8')) as { reqId?: unknown };
      if (!corked) {
        corked = true;
        tcp.cork();
        process.nextTick(() => {
          corked = false;
          tcp.uncork();
        });
      }
      socket.send(JSON.stringify({ ok: true, id: randomUUID(), reqId: command.reqId }));
    });
  });
}

function memoryQueue(app: FastifyInstance): void {
  const waiting = new Map<string, Job[]>();
  const active = new Map<string, Job>();
  const enqueue = (queue: string, item: unknown): string => {
    const data = typeof item === 'object' && item !== null && 'data' in item ? (item as { data: unknown }).data : item;
    const job: Job = { id: randomUUID(), queue, data, token: null };
    let list = waiting.get(queue);
    if (list === undefined) waiting.set(queue, (list = []));
    list.push(job);
    return job.id;
  };
  app.post<{ Params: { queue: string }; Body: unknown }>('/queues/:queue/jobs', async (request) => {
    const body = request.body;
    if (Array.isArray(body)) return { ok: true, ids: body.map((item) => enqueue(request.params.queue, item)) };
    return { ok: true, id: enqueue(request.params.queue, body) };
  });
  app.post<{ Params: { queue: string }; Body: { jobs?: unknown[] } }>('/queues/:queue/jobs/bulk', async (request) => ({
    ok: true,
    ids: (request.body.jobs ?? []).map((item) => enqueue(request.params.queue, item)),
  }));
  app.get<{ Params: { queue: string } }>('/queues/:queue/jobs', async (request) => {
    const job = waiting.get(request.params.queue)?.shift();
    if (job === undefined) return { ok: true, job: null, token: null };
    job.token = randomUUID();
    active.set(job.id, job);
    return { ok: true, job: { id: job.id, queue: job.queue, data: job.data }, token: job.token };
  });
  app.post<{ Params: { id: string }; Body: { token?: string } | null }>('/jobs/:id/ack', async (request, reply) => {
    const job = active.get(request.params.id);
    if (job === undefined) return reply.code(400).send({ ok: false, error: 'Job not found or not active' });
    const token = request.body?.token;
    if (token !== undefined && token !== job.token) return reply.code(409).send({ ok: false, error: 'Lock token mismatch' });
    active.delete(job.id);
    return { ok: true };
  });
}

async function main(): Promise<void> {
  const [kind, portText] = process.argv.slice(2);
  const port = Number(portText);
  if ((kind !== 'fastify' && kind !== 'memory-queue') || !Number.isInteger(port)) {
    console.error('usage: bench-ref-server.js fastify|memory-queue <port>');
    process.exit(2);
  }
  const app = Fastify({ logger: false, bodyLimit: 1_048_576, keepAliveTimeout: 72_000 });
  app.get('/ready', async () => ({ ok: true, ready: true }));
  if (kind === 'fastify') {
    await bareWebSocket(app);
    bareFastify(app);
  } else memoryQueue(app);
  await app.listen({ port, host: '127.0.0.1' });
  process.once('SIGTERM', () => {
    void app.close().then(() => process.exit(0));
  });
}

await main();
