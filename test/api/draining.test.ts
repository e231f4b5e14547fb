// Requests that reach the server while it drains for shutdown (app.close() has begun and a
// request on the same keep-alive connection is still running) get SPEC section 4's error
// envelope with seed 004's CORS header, not fastify's own 503 object.

import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { actionStepJobsMax } from '../../src/constants.js';
import { startBroker } from '../fixtures/broker.js';
import type { BrokerApi } from '../../src/broker/types.js';
import { loadConfig } from '../../src/config.js';
import { readUntilClosed, startServer, type TestServer } from '../fixtures/server.js';

/** The response after the first one in `text`: its status line, headers and body. */
function secondResponse(text: string): { head: string; body: string } | null {
  const second = text.split(/(?=HTTP\/1\.1 )/)[1];
  if (second === undefined) return null;
  const [head = '', body = ''] = second.split('\r\n\r\n');
  return { head, body };
}

/**
 * One connection per path, each busy with a push whose body is still arriving; then the server
 * starts closing; then each push's body is finished and `GET <path>` (or `<METHOD> <path>`) sent
 * behind it. Returns the push's answers and each path's.
 */
async function requestsDuringShutdown(s: TestServer<BrokerApi>, paths: string[], headers = '') {
  const { port } = new URL(s.url);
  const sockets = await Promise.all(
    paths.map(async () => {
      const socket = connect(Number(port), '127.0.0.1');
      const received = readUntilClosed(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
      socket.write('POST /queues/q/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"data"');
      return { socket, received };
    }),
  );
  await sleep(50);
  const closed = s.close();
  await sleep(50);
  paths.forEach((path, i) => sockets[i]?.socket.write(`:1}${path.includes(' ') ? path : `GET ${path}`} HTTP/1.1\r\nHost: x\r\n${headers}\r\n`));
  const texts = await Promise.all(sockets.map((x) => x.received));
  await closed;
  return { pushes: texts.map((text) => text.split('\r\n')[0]), answers: texts.map(secondResponse) };
}

t.test('a-request-during-shutdown-gets-503-in-the-envelope-with-cors', async (t) => {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const s = await startServer({ broker: fx.broker, config: { corsAllowOrigin: 'https://app.example' } });
  const { pushes, answers } = await requestsDuringShutdown(s, ['/stats']);
  t.same(pushes, ['HTTP/1.1 200 OK'], 'the push under way when closing began is answered');
  const stats = answers[0];
  t.ok(stats, 'the request sent during shutdown is answered');
  t.match(stats?.head, /^HTTP\/1\.1 503 /);
  t.match(stats?.head, /\r\naccess-control-allow-origin: https:\/\/app\.example\r\n/i);
  t.match(stats?.head, /\r\ncontent-type: application\/json\r\n/i);
  t.match(stats?.head, /\r\nconnection: close\r\n/i);
  t.same(JSON.parse(stats?.body ?? ''), { ok: false, error: 'Service unavailable: shutting down' });
});

t.test('during-shutdown-ready-is-503-not-ready-and-liveness-is-ok', async (t) => {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const s = await startServer({ broker: fx.broker });
  const { answers } = await requestsDuringShutdown(s, ['/ready', '/healthz', '/live']);
  t.same(
    answers.map((a) => `${a?.head.split('\r\n')[0]} ${a?.body}`),
    ['HTTP/1.1 503 Service Unavailable {"ok":false,"ready":false}', 'HTTP/1.1 200 OK OK', 'HTTP/1.1 200 OK OK'],
  );
});

t.test('a-cors-preflight-during-shutdown-gets-the-apis-204-so-the-browser-sees-the-503', async (t) => {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const s = await startServer({ broker: fx.broker, config: { corsAllowOrigin: 'https://app.example' } });
  const { answers } = await requestsDuringShutdown(s, ['OPTIONS /queues/q/jobs']);
  const preflight = answers[0];
  t.match(preflight?.head, /^HTTP\/1\.1 204 /);
  t.match(preflight?.head, /\r\naccess-control-allow-origin: https:\/\/app\.example\r\n/i);
  t.match(preflight?.head, /\r\naccess-control-allow-methods: GET, POST, PUT, DELETE, OPTIONS\r\n/i);
  t.match(preflight?.head, /\r\naccess-control-allow-headers: Content-Type, Authorization\r\n/i);
  t.match(preflight?.head, /\r\naccess-control-max-age: 86400\r\n/i);
});

t.test('a-websocket-upgrade-during-shutdown-gets-503-in-the-envelope-with-cors', async (t) => {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const config = { corsAllowOrigin: 'https://app.example' };
  const s = await startServer({ broker: fx.broker, config, realtime: realtimePlugin({ broker: fx.broker, log: fx.log, config: { ...loadConfig({}), ...config } }) });
  const upgrade = 'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';
  // Sent behind a push still running on its connection: the upgrade waits for the push's answer.
  const { pushes, answers } = await requestsDuringShutdown(s, ['/ws'], upgrade);
  t.same(pushes, ['HTTP/1.1 200 OK'], 'the push before it is answered first');
  const ws = answers[0];
  t.match(ws?.head, /^HTTP\/1\.1 503 /);
  t.match(ws?.head, /\r\naccess-control-allow-origin: https:\/\/app\.example\r\n/i);
  t.match(ws?.head, /\r\ncontent-type: application\/json\r\n/i);
  t.same(JSON.parse(ws?.body ?? ''), { ok: false, error: 'Service unavailable: shutting down' });
});

t.test('a-keep-alive-connection-whose-request-ran-when-closing-began-is-closed-after-its-answer', async (t) => {
  // A drain in steps is the longest request a client makes: the server begins closing between its
  // steps, answers it in full, and then must not wait for the client to close its idle
  // keep-alive connection (for the server's keep-alive timeout, 72 s, past the 10 s grace).
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const b = fx.broker;
  const many = actionStepJobsMax * 2 + 500;
  for (let i = 0; i < many; i += 1_000) {
    const r = await b.pushBulk('q', Array.from({ length: Math.min(1_000, many - i) }, (_, j) => ({ data: i + j })), { actor: null });
    if (!r.ok) throw new Error(r.error);
  }
  const s = await startServer({ broker: b });
  const drain = b.drain.bind(b);
  let closed: Promise<void> | null = null;
  b.drain = (queue, ctx) => {
    const out = drain(queue, ctx);
    closed = s.close();
    return out;
  };
  const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
  const received = readUntilClosed(socket);
  await new Promise((resolve) => socket.once('connect', resolve));
  socket.write('POST /queues/q/drain HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n');
  const text = await received;
  t.match(text, /^HTTP\/1\.1 200 /, 'the drain under way when closing began is answered');
  t.same(JSON.parse(text.split('\r\n\r\n')[1] ?? ''), { ok: true, removed: many }, 'in full');
  t.ok(closed !== null, 'the server began closing while the drain ran');
  await closed;
});

t.test('the-openapi-document-lists-the-503-of-a-draining-server-on-every-route-but-liveness', async (t) => {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const s = await startServer({ broker: fx.broker });
  const doc = (await s.request('GET', '/openapi.json')).json as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  const liveness = new Set(['/healthz', '/live']);
  const wrong: string[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      if ('503' in op.responses === liveness.has(path)) wrong.push(`${method} ${path}`);
    }
  }
  t.same(wrong, [], '503 documented exactly where it can be answered');
  // As documented: /health answers 503 while the server drains.
  const { answers } = await requestsDuringShutdown(s, ['/health']);
  t.match(answers[0]?.head, /^HTTP\/1\.1 503 /);
});
