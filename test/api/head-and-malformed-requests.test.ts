// Requests outside the routes' own contract: HEAD, which must never run a GET route's handler (a
// HEAD on the pull route used to pull a job and drop its lock token), and requests Node's HTTP
// parser refuses, which still get the error envelope. Plus two queue/job actions whose edges the
// SPEC fixes: clean's `limit: 0` means no limit, and retry takes failed jobs only.

import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { startBroker } from '../fixtures/broker.js';
import { readUntilClosed, startServer } from '../fixtures/server.js';

async function setup(t: Test) {
  const fx = await startBroker();
  const s = await startServer({ broker: fx.broker });
  t.teardown(async () => {
    await s.close();
    await fx.cleanup();
  });
  return { fx, s };
}

/** Sends `raw` bytes on a fresh connection and returns everything the server wrote before closing. */
function rawExchange(url: string, raw: string): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname, () => socket.write(raw));
  return readUntilClosed(socket);
}

t.test('head-on-the-pull-route-is-405-and-leaves-the-job-waiting', async (t) => {
  const { fx, s } = await setup(t);
  const { json } = await s.request('POST', '/queues/q/jobs', { body: { data: 'precious' } });
  const before = fx.log.nextOffset;
  const res = await fetch(`${s.url}/queues/q/jobs`, { method: 'HEAD' });
  t.equal(res.status, 405);
  t.equal(res.headers.get('allow'), 'POST, GET, OPTIONS');
  t.equal(fx.log.nextOffset, before, 'nothing appended');
  t.equal(fx.broker.getJob(json.id as string)?.state, 'waiting');
});

t.test('probes-answer-head', async (t) => {
  const { s } = await setup(t);
  for (const path of ['/health', '/healthz', '/live', '/ready']) {
    const res = await fetch(`${s.url}${path}`, { method: 'HEAD' });
    t.equal(res.status, 200, path);
    t.equal(await res.text(), '', `${path}: no body`);
  }
});

t.test('a-malformed-request-gets-the-envelope-and-a-closed-connection', async (t) => {
  const { fx, s } = await setup(t);
  const before = fx.log.nextOffset;
  const text = await rawExchange(s.url, 'POST /queues/q/jobs HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
  const [head = '', body] = text.split('\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 400 Bad Request\r\n/);
  t.match(head, /\r\ncontent-type: application\/json\r\n/);
  t.match(head, /\r\naccess-control-allow-origin: \*\r\n/);
  t.same(JSON.parse(body ?? ''), { ok: false, error: 'Malformed HTTP request' });
  t.equal(fx.log.nextOffset, before, 'nothing appended');
});

t.test('headers-over-the-limit-get-431-in-the-envelope', async (t) => {
  const { s } = await setup(t);
  const text = await rawExchange(s.url, `GET /health HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`);
  const [head = '', body] = text.split('\r\n\r\n');
  t.match(head, /^HTTP\/1\.1 431 /);
  t.same(JSON.parse(body ?? ''), { ok: false, error: 'Request headers are too large' });
});

t.test('clean-with-limit-0-removes-every-match', async (t) => {
  const { s } = await setup(t);
  for (let i = 0; i < 3; i++) await s.request('POST', '/queues/c/jobs', { body: { data: i } });
  const res = await s.request('POST', '/queues/c/clean', { body: { grace: 0, state: 'waiting', limit: 0 } });
  t.equal(res.status, 200);
  t.equal((res.json.removed as string[]).length, 3);
});

t.test('retry-of-a-completed-job-is-refused-and-appends-nothing', async (t) => {
  const { fx, s } = await setup(t);
  await s.request('POST', '/queues/r/jobs', { body: { data: 1 } });
  const pulled = await s.request('GET', '/queues/r/jobs');
  const id = pulled.json.job.id as string;
  await s.request('POST', `/jobs/${id}/ack`, { body: { token: pulled.json.token } });
  const before = fx.log.nextOffset;
  const res = await s.request('POST', `/jobs/${id}/retry`);
  t.equal(res.status, 409);
  t.same(res.json, { ok: false, error: 'Job is not failed' });
  t.equal(fx.log.nextOffset, before);
  t.equal(fx.broker.getJob(id)?.state, 'completed');
});
