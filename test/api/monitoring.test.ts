// Readiness, Prometheus text, debug endpoints, the OpenAPI document, and long-poll pulls that
// end when the client goes away or the server closes.

import { once } from 'node:events';
import { connect } from 'node:net';
import t from 'tap';
import { connections } from '../../src/api/connections.js';
import { escapeLabel, Histogram } from '../../src/api/prometheus.js';
import { startServer } from '../fixtures/server.js';

t.test('ready-is-503-when-the-broker-is-not-ready', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  s.broker.ready = false;
  const res = await s.request('GET', '/ready');
  t.same([res.status, res.json], [503, { ok: false, ready: false }]);
  s.broker.ready = true;
  t.same((await s.request('GET', '/ready')).json, { ok: true, ready: true });
});

t.test('health-reports-shared-connection-counters', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  connections.ws += 2;
  connections.sse += 1;
  t.teardown(() => {
    connections.ws -= 2;
    connections.sse -= 1;
  });
  t.same((await s.request('GET', '/health')).json.connections, { tcp: 0, ws: 2, sse: 1 });
});

t.test('prometheus-text-has-seed-names-queue-gauges-and-histograms', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  await s.request('POST', '/queues/emails/jobs', { body: { data: 1 } });
  await s.request('POST', '/queues/emails/jobs', { body: { data: 2 } });
  const { json } = await s.request('GET', '/queues/emails/jobs');
  await s.request('POST', `/jobs/${json.job.id}/ack`);
  const res = await s.request('GET', '/prometheus');
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = res.text;
  t.match(text, /# HELP bunqueue_jobs_pushed_total Total jobs pushed\n# TYPE bunqueue_jobs_pushed_total counter\nbunqueue_jobs_pushed_total 2\n/);
  t.match(text, /\nbunqueue_jobs_completed_total 1\n/);
  t.match(text, /\nbunqueue_jobs_pulled_total 1\n/);
  t.match(text, /\nbunqueue_jobs_failed_total 0\n/);
  t.match(text, /\nbunqueue_queue_jobs_waiting\{queue="emails"\} 1\n/);
  t.match(text, /\nbunqueue_queue_jobs_active\{queue="emails"\} 0\n/);
  t.match(text, /\nbunqueue_queue_jobs_delayed\{queue="emails"\} 0\n/);
  t.match(text, /\nbunqueue_queue_jobs_dlq\{queue="emails"\} 0\n/);
  t.match(text, /# TYPE bunqueue_push_duration_ms histogram\n/);
  t.match(text, /\nbunqueue_push_duration_ms_bucket\{le="\+Inf"\} 2\n/);
  t.match(text, /\nbunqueue_push_duration_ms_count 2\n/);
  t.match(text, /\nbunqueue_pull_duration_ms_count 1\n/);
  t.match(text, /\nbunqueue_ack_duration_ms_count 1\n/);
});

t.test('prometheus-prefix-is-configurable', async (t) => {
  const s = await startServer({ config: { metricsPrefix: 'tapeq' } });
  t.teardown(() => s.close());
  const text = (await s.request('GET', '/prometheus')).text;
  t.match(text, /^# HELP tapeq_jobs_pushed_total/);
  t.notMatch(text, /bunqueue/);
});

t.test('histogram-buckets-are-cumulative-and-labels-escaped', async (t) => {
  const h = new Histogram();
  for (const ms of [0.05, 0.3, 3, 2000]) h.observe(ms);
  const lines = h.render('x', 'help');
  t.ok(lines.includes('x_bucket{le="0.1"} 1'));
  t.ok(lines.includes('x_bucket{le="0.5"} 2'));
  t.ok(lines.includes('x_bucket{le="5"} 3'));
  t.ok(lines.includes('x_bucket{le="1000"} 3'));
  t.ok(lines.includes('x_bucket{le="+Inf"} 4'));
  t.ok(lines.includes('x_count 4'));
  t.equal(escapeLabel('a"b\\c\nd'), 'a\\"b\\\\c\\nd');
});

t.test('gc-works-without-expose-gc-and-heapstats-without-snapshot-is-honest', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const gc = await s.request('POST', '/gc');
  t.equal(gc.status, 200);
  const mb = { heapUsed: Number, heapTotal: Number, rss: Number };
  t.match(gc.json, { ok: true, before: mb, after: mb });
  const plain = await s.request('GET', '/heapstats');
  t.match(plain.json, {
    ok: true,
    memory: { heapUsed: Number, heapTotal: Number, rss: Number },
    heap: { used_heap_size: Number, number_of_native_contexts: Number, number_of_detached_contexts: Number },
    collections: { jobIndex: 0 },
    topObjectTypes: null,
    note: String,
  });
});

t.test('openapi-document-lists-every-route', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const doc = (await s.request('GET', '/openapi.json')).json;
  t.equal(doc.openapi, '3.0.3');
  for (const path of [
    '/queues/{queue}/jobs',
    '/queues/{queue}/jobs/bulk',
    '/queues/{queue}/jobs/list',
    '/queues/{queue}/jobs/{id}',
    '/jobs/{id}',
    '/jobs/{id}/ack',
    '/jobs/{id}/fail',
    '/jobs/{id}/progress',
    '/jobs/{id}/logs',
    '/queues/{queue}/jobs/{id}/logs',
    '/jobs/{id}/priority',
    '/queues',
    '/queues/{queue}/dlq/retry',
    '/workers',
    '/workers/{queue}',
    '/health',
    '/prometheus',
    '/heapstats',
  ]) {
    t.ok(doc.paths[path], path);
  }
  const clean = doc.paths['/queues/{queue}/clean'].post.requestBody.content['application/json'].schema;
  t.same(
    clean.properties.state.enum,
    ['completed', 'failed', 'waiting', 'delayed', 'wait', 'paused', 'prioritized', 'active'],
    'clean documents exactly the states it takes',
  );
});

t.test('long-poll-pull-is-aborted-when-the-client-disconnects', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const controller = new AbortController();
  const pending = fetch(`${s.url}/queues/q/jobs?timeout=30000`, { signal: controller.signal }).catch((e: Error) => e);
  await new Promise((r) => setTimeout(r, 100));
  t.same(s.broker.calls, ['pull']);
  controller.abort();
  await pending;
  await new Promise((r) => setTimeout(r, 100));
  const push = await s.request('POST', '/queues/q/jobs', { body: { data: 1 } });
  t.equal(push.status, 200);
  t.equal((await s.request('GET', `/jobs/${push.json.id}/state`)).json.state, 'waiting', 'the gone client took no job');
});

t.test('closing-the-server-ends-pending-long-polls', async (t) => {
  const s = await startServer();
  const pending = fetch(`${s.url}/queues/q/jobs?timeout=60000`).then((r) => r.json());
  await new Promise((r) => setTimeout(r, 100));
  const started = Date.now();
  await s.close();
  t.ok(Date.now() - started < 5_000, 'close did not wait out the long poll');
  t.same(await pending, { ok: true, job: null, token: null });
});

t.test('pipelined-long-poll-pull-is-aborted-when-the-connection-closes', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  // Two long polls pipelined on one connection: the second one's response is not on the socket
  // yet (it waits for the first), and the client hangs up while both wait.
  const socket = connect(Number(new URL(s.url).port), '127.0.0.1');
  await once(socket, 'connect');
  const pull = 'GET /queues/q/jobs?timeout=30000 HTTP/1.1\r\nHost: tapeq\r\n\r\n';
  socket.write(pull + pull);
  for (let tries = 0; s.broker.calls.length < 2 && tries < 100; tries++) await new Promise((r) => setTimeout(r, 10));
  t.same(s.broker.calls, ['pull', 'pull'], 'both polls wait in the broker');
  socket.destroy();
  await new Promise((r) => setTimeout(r, 100));
  const push = await s.request('POST', '/queues/q/jobs', { body: { data: 1 } });
  t.equal((await s.request('GET', `/jobs/${push.json.id}/state`)).json.state, 'waiting', 'neither gone pull took the job');
});
