import t from 'tap';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { HttpClient, type EndpointCall } from '../../src/workers/http-client.js';
import { judge } from '../../src/workers/response.js';
import { deadPort, json, sleep, startEndpoint, text } from './endpoint.js';

const client = () => new HttpClient({ connectionsPerOriginMax: 16, keepAliveMs: 1_000, connectTimeoutMs: 10_000 });
const call = (url: string, over: Partial<EndpointCall> = {}): EndpointCall => ({
  url,
  method: 'POST',
  headers: { 'x-test': 'yes' },
  body: JSON.stringify({ job: { id: 'j1', data: 1 }, token: 't1' }),
  timeoutMs: 1_000,
  responseBytesMax: 1024,
  ...over,
});

t.test('json-answer-is-parsed-and-request-carries-headers-and-body', async (t) => {
  const ep = await startEndpoint((_c, res) => json(res, 200, { ok: 1 }));
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  const out = await c.call(call(ep.url, { method: 'PUT' }));
  t.match(out, { kind: 'answered', status: 200 });
  t.strictSame(judge(out, 'PUT', ep.url, 200), { kind: 'ack', result: { ok: 1 } });
  const seen = ep.calls[0];
  t.equal(seen?.method, 'PUT');
  t.equal(seen?.headers['content-type'], 'application/json');
  t.equal(seen?.headers['x-test'], 'yes');
  t.strictSame(seen?.body, { job: { id: 'j1', data: 1 }, token: 't1' });
});

t.test('text-answer-is-the-result-and-empty-body-is-null', async (t) => {
  let n = 0;
  const ep = await startEndpoint((_c, res) => {
    if (n++ === 0) return text(res, 201, 'done');
    res.writeHead(204);
    res.end();
  });
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  t.strictSame(judge(await c.call(call(ep.url)), 'POST', ep.url, 200), { kind: 'ack', result: 'done' });
  t.strictSame(judge(await c.call(call(ep.url)), 'POST', ep.url, 200), { kind: 'ack', result: null });
});

t.test('non-2xx-reason-names-status-target-and-body-start', async (t) => {
  const ep = await startEndpoint((_c, res) => text(res, 500, 'x'.repeat(500)));
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  const v = judge(await c.call(call(ep.url)), 'POST', ep.url, 200);
  t.equal(v.kind, 'fail');
  if (v.kind !== 'fail') return;
  t.equal(v.reason, `HTTP 500 from POST ${ep.url}: ${'x'.repeat(200)}`);
  t.equal(v.answered, true);
});

t.test('unparseable-json-fails-the-attempt', async (t) => {
  const ep = await startEndpoint((_c, res) => {
    res.writeHead(200, { 'content-type': 'application/problem+json' });
    res.end('{nope');
  });
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  const v = judge(await c.call(call(ep.url)), 'POST', ep.url, 200);
  t.match(v, { kind: 'fail', answered: true, reason: /^invalid JSON in HTTP 200 from POST .*: \{nope$/ });
});

t.test('connection-refused-is-unreachable-with-the-socket-error', async (t) => {
  const port = await deadPort();
  const c = client();
  t.teardown(() => c.close());
  const url = `http://127.0.0.1:${port}/x`;
  const v = judge(await c.call(call(url)), 'POST', url, 200);
  t.match(v, { kind: 'fail', answered: false, reason: `connect ECONNREFUSED 127.0.0.1:${port}` });
});

t.test('timeout-covers-headers', async (t) => {
  const ep = await startEndpoint(async (_c, res) => {
    await sleep(1_000);
    text(res, 200, 'late');
  });
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  const started = Date.now();
  const out = await c.call(call(ep.url, { timeoutMs: 150 }));
  t.strictSame(out, { kind: 'timedOut', afterMs: 150 });
  t.ok(Date.now() - started < 800, 'gave up at the timeout');
});

t.test('timeout-covers-a-slow-body', async (t) => {
  const ep = await startEndpoint(async (_c, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.write('first part ');
    await sleep(1_000);
    res.end('rest');
  });
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  const started = Date.now();
  const out = await c.call(call(ep.url, { timeoutMs: 200 }));
  t.strictSame(out, { kind: 'timedOut', afterMs: 200 });
  t.ok(Date.now() - started < 800, 'gave up at the timeout');
});

t.test('oversized-response-body-is-cut-off-keeping-status-and-start', async (t) => {
  let status = 200;
  const ep = await startEndpoint((_c, res) => text(res, status, 'y'.repeat(5_000)));
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  const ok = await c.call(call(ep.url, { responseBytesMax: 1024 }));
  t.strictSame(ok, { kind: 'answered', status: 200, contentType: 'text/plain; charset=utf-8', contentEncoding: '', body: 'y'.repeat(1024), cutAtBytes: 1024 });
  t.strictSame(judge(ok, 'POST', ep.url, 200), {
    kind: 'fail',
    reason: `response body over 1024 bytes in HTTP 200 from POST ${ep.url}`,
    answered: true,
  });
  status = 503;
  const refused = await c.call(call(ep.url, { responseBytesMax: 1024 }));
  t.strictSame(judge(refused, 'POST', ep.url, 200), { kind: 'fail', reason: `HTTP 503 from POST ${ep.url}: ${'y'.repeat(200)}`, answered: true });
});

t.test('keep-alive-reuses-one-socket-for-sequential-calls', async (t) => {
  const ep = await startEndpoint((_c, res) => text(res, 200, 'ok'));
  const c = client();
  t.teardown(async () => {
    await c.close();
    await ep.close();
  });
  for (let i = 0; i < 20; i++) t.match(await c.call(call(ep.url)), { kind: 'answered', status: 200 });
  t.equal(ep.calls.length, 20);
  // undici may open a second socket while the first is still finishing its previous response.
  t.ok(ep.connections() <= 2, `20 sequential calls used ${ep.connections()} sockets`);
});

t.test('a-connect-timeout-names-the-connect-limit-not-the-call-timeout', async (t) => {
  // The connect cap (10 s in the broker) ends a handshake that never completes before a longer
  // call timeout does: a TLS endpoint that accepts the socket and never answers the hello.
  const sockets = new Set<Socket>();
  const silent = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const address = silent.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const c = new HttpClient({ connectionsPerOriginMax: 16, keepAliveMs: 1_000, connectTimeoutMs: 150 });
  t.teardown(async () => {
    await c.close();
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });
  const started = Date.now();
  const out = await c.call(call(`https://127.0.0.1:${port}/x`, { timeoutMs: 3_000 }));
  t.strictSame(out, { kind: 'unreachable', reason: 'connect timeout after 150 ms' });
  t.ok(Date.now() - started < 2_000, 'gave up at the connect limit');
});
