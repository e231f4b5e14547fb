// Seed 004 endpoint by endpoint, plus SPEC section 4's additions, over the real broker on a real
// log: status codes, response shapes, error texts and content types.

import { request as httpRequest } from 'node:http';
import t from 'tap';
import { startBroker } from '../fixtures/broker.js';
import { startServer } from '../fixtures/server.js';

async function realServer(t: { teardown(fn: () => Promise<void>): void }) {
  const fx = await startBroker();
  const s = await startServer({ broker: fx.broker });
  t.teardown(async () => {
    await s.close();
    await fx.cleanup();
  });
  return { s, fx };
}

t.test('push-pull-get-ack-follows-seed-004', async (t) => {
  const { s } = await realServer(t);
  const pushed = await s.request('POST', '/queues/emails/jobs', {
    body: { data: { to: 'user@test.com' }, priority: 10, maxAttempts: 5, tags: ['email'] },
  });
  t.equal(pushed.status, 200);
  t.equal(pushed.headers.get('content-type'), 'application/json');
  t.same(Object.keys(pushed.json).sort(), ['id', 'ok']);
  t.match(pushed.json, { ok: true, id: String });

  const got = await s.request('GET', `/jobs/${pushed.json.id}`);
  t.equal(got.status, 200);
  t.match(got.json.job, {
    id: pushed.json.id,
    queue: 'emails',
    data: { to: 'user@test.com' },
    priority: 10,
    createdAt: Number,
    runAt: Number,
    startedAt: null,
    completedAt: null,
    attempts: 0,
    maxAttempts: 5,
    backoff: 1000,
    progress: 0,
    tags: ['email'],
    lifo: false,
    removeOnComplete: false,
    removeOnFail: false,
  });
  t.equal((await s.request('GET', `/queues/emails/jobs/${pushed.json.id}`)).status, 200);
  const otherQueue = await s.request('GET', `/queues/other/jobs/${pushed.json.id}`);
  t.same([otherQueue.status, otherQueue.json], [404, { ok: false, error: 'Job not found' }]);

  const pulled = await s.request('GET', '/queues/emails/jobs?timeout=0');
  t.equal(pulled.status, 200);
  t.match(pulled.json, { ok: true, job: { id: pushed.json.id, queue: 'emails' }, token: String });
  t.equal((await s.request('GET', `/jobs/${pushed.json.id}/state`)).json.state, 'active');

  const wrong = await s.request('POST', `/jobs/${pushed.json.id}/ack`, { body: { token: 'not-the-lock' } });
  t.same([wrong.status, wrong.json], [409, { ok: false, error: 'Lock token mismatch' }]);
  const acked = await s.request('POST', `/jobs/${pushed.json.id}/ack`, { body: { result: { sent: true }, token: pulled.json.token } });
  t.same([acked.status, acked.json], [200, { ok: true }]);
  const again = await s.request('POST', `/jobs/${pushed.json.id}/ack`);
  t.same([again.status, again.json], [400, { ok: false, error: 'Job not found or not active' }]);
  t.same((await s.request('GET', `/jobs/${pushed.json.id}/result`)).json, { ok: true, result: { sent: true } });
  t.same((await s.request('GET', `/jobs/${pushed.json.id}/state`)).json, { ok: true, state: 'completed' });

  const empty = await s.request('GET', '/queues/emails/jobs');
  t.same(empty.json, { ok: true, job: null, token: null });
});

t.test('unknown-job-is-404-job-not-found-everywhere', async (t) => {
  const { s } = await realServer(t);
  for (const [method, path] of [
    ['GET', '/jobs/nope'],
    ['GET', '/jobs/nope/state'],
    ['DELETE', '/jobs/nope'],
  ] as const) {
    const res = await s.request(method, path);
    t.same([res.status, res.json], [404, { ok: false, error: 'Job not found' }], `${method} ${path}`);
  }
});

t.test('array-push-and-bulk-return-ids-and-list-pages', async (t) => {
  const { s } = await realServer(t);
  const arr = await s.request('POST', '/queues/q/jobs', { body: [{ data: 1 }, { name: 'n', data: 2, opts: { attempts: 2 } }] });
  t.equal(arr.status, 200);
  t.equal(arr.json.ids.length, 2);
  const bulk = await s.request('POST', '/queues/q/jobs/bulk', { body: { jobs: [{ data: 3 }] } });
  t.equal(bulk.json.ids.length, 1);
  const list = await s.request('GET', '/queues/q/jobs/list?statuses=waiting&start=0&length=2');
  t.match(list.json, { ok: true, counts: { waiting: 3 }, start: 0, length: 2 });
  t.equal(list.json.jobs.length, 2);
  const tooLong = await s.request('GET', '/queues/q/jobs/list?length=101');
  t.same([tooLong.status, tooLong.json.error], [400, 'length must be <= 100']);
});

t.test('fail-retries-then-dead-letters-and-dlq-routes-work', async (t) => {
  const { s } = await realServer(t);
  const { json } = await s.request('POST', '/queues/q/jobs', { body: { data: 1, maxAttempts: 1 } });
  await s.request('GET', '/queues/q/jobs');
  const failed = await s.request('POST', `/jobs/${json.id}/fail`, { body: { error: 'SMTP connection refused' } });
  t.same([failed.status, failed.json], [200, { ok: true }]);
  const dlq = await s.request('GET', '/queues/q/dlq');
  t.match(dlq.json, { ok: true, count: 1, jobs: [{ id: json.id }] });
  t.match((await s.request('POST', '/queues/q/dlq/retry', { body: { id: json.id } })).json, { ok: true, retried: 1 });
  t.equal((await s.request('GET', `/jobs/${json.id}/state`)).json.state, 'waiting');
  t.match((await s.request('POST', '/queues/q/dlq/purge')).json, { ok: true, purged: 0 });
});

t.test('progress-and-logs-accept-bare-json-values-on-both-paths', async (t) => {
  const { s } = await realServer(t);
  const { json } = await s.request('POST', '/queues/q/jobs', { body: { data: 1 } });
  await s.request('GET', '/queues/q/jobs');
  t.same((await s.request('POST', `/jobs/${json.id}/progress`, { raw: '100' })).json, { ok: true });
  t.same((await s.request('POST', `/queues/q/jobs/${json.id}/progress`, { body: { progress: 50, message: 'half' } })).json, { ok: true });
  t.equal((await s.request('GET', `/jobs/${json.id}`)).json.job.progress, 50);
  t.same((await s.request('POST', `/jobs/${json.id}/logs`, { raw: '"first"' })).json, { ok: true });
  t.same((await s.request('POST', `/queues/q/jobs/${json.id}/logs`, { body: { message: 'second' } })).json, { ok: true });
  t.same((await s.request('GET', `/queues/q/jobs/${json.id}/logs?start=0&length=10`)).json, { ok: true, logs: ['first', 'second'], count: 2 });
  t.equal((await s.request('POST', `/queues/other/jobs/${json.id}/progress`, { body: 1 })).status, 404);
});

t.test('a-progress-message-is-shown-with-the-job-and-a-bare-number-clears-it', async (t) => {
  const { s } = await realServer(t);
  const { json } = await s.request('POST', '/queues/q/jobs', { body: { data: 1 } });
  t.equal((await s.request('GET', `/jobs/${json.id}`)).json.job.progressMessage, null);
  await s.request('GET', '/queues/q/jobs');
  await s.request('POST', `/jobs/${json.id}/progress`, { body: { progress: 50, message: 'resized 5 of 10' } });
  t.match((await s.request('GET', `/jobs/${json.id}`)).json.job, { progress: 50, progressMessage: 'resized 5 of 10' });
  t.match((await s.request('GET', '/queues/q/jobs/list?statuses=active')).json.jobs[0], { progressMessage: 'resized 5 of 10' });
  await s.request('POST', `/jobs/${json.id}/progress`, { raw: '60' });
  t.match((await s.request('GET', `/jobs/${json.id}`)).json.job, { progress: 60, progressMessage: null });
});

t.test('job-actions-promote-priority-cancel', async (t) => {
  const { s } = await realServer(t);
  const { json } = await s.request('POST', '/queues/q/jobs', { body: { data: 1, delay: 60_000 } });
  t.equal((await s.request('GET', `/jobs/${json.id}/state`)).json.state, 'delayed');
  t.same((await s.request('PUT', `/jobs/${json.id}/priority`, { body: { priority: 7 } })).json, { ok: true });
  t.same((await s.request('POST', `/jobs/${json.id}/promote`)).json, { ok: true });
  t.equal((await s.request('GET', `/jobs/${json.id}`)).json.job.state, 'waiting');
  t.same((await s.request('DELETE', `/jobs/${json.id}`)).json, { ok: true });
  t.equal((await s.request('GET', `/jobs/${json.id}`)).status, 404);
});

t.test('queue-actions', async (t) => {
  const { s } = await realServer(t);
  await s.request('POST', '/queues/q/jobs', { body: [{ data: 1 }, { data: 2, delay: 60_000 }] });
  t.match((await s.request('GET', '/queues')).json, { ok: true, queues: [{ name: 'q', paused: false, counts: { waiting: 1, delayed: 1 } }] });
  t.match((await s.request('GET', '/queues/q/counts')).json, { ok: true, counts: { waiting: 1, delayed: 1 } });
  t.same((await s.request('POST', '/queues/q/pause')).json, { ok: true });
  t.same((await s.request('GET', '/queues/q/paused')).json, { ok: true, paused: true });
  t.same((await s.request('GET', '/queues/q/jobs')).json, { ok: true, job: null, token: null }, 'paused queue gives nothing');
  t.same((await s.request('POST', '/queues/q/resume')).json, { ok: true });
  t.match((await s.request('POST', '/queues/q/promote-jobs')).json, { ok: true, promoted: 1 });
  t.match((await s.request('POST', '/queues/q/drain')).json, { ok: true, removed: 2 });
  t.match((await s.request('POST', '/queues/q/clean', { body: { grace: 0, state: 'completed', limit: 10 } })).json, { ok: true, removed: [] });
  t.same((await s.request('POST', '/queues/q/obliterate')).json, { ok: true });
});

t.test('workers-register-list-remove', async (t) => {
  const { s } = await realServer(t);
  const reg = await s.request('POST', '/workers', { body: { queue: 'q', endpoint: { url: 'http://127.0.0.1:9/hook', method: 'put' } } });
  t.same([reg.status, reg.json], [200, { ok: true }]);
  const list = await s.request('GET', '/workers');
  t.match(list.json, {
    ok: true,
    workers: [{ queue: 'q', endpoint: { method: 'PUT', timeout: 3000 }, opts: { concurrency: 1, maxStalledCount: 1 } }],
  });
  t.same((await s.request('DELETE', '/workers/q')).json, { ok: true });
  const gone = await s.request('DELETE', '/workers/q');
  t.same([gone.status, gone.json], [404, { ok: false, error: 'Worker not found' }]);
});

t.test('monitoring-shapes', async (t) => {
  const { s } = await realServer(t);
  await s.request('POST', '/queues/emails/jobs', { body: { data: 1 } });
  const health = await s.request('GET', '/health');
  t.match(health.json, {
    ok: true,
    status: 'healthy',
    uptime: Number,
    version: '0.1.0',
    queues: { waiting: 1, active: 0, delayed: 0, completed: 0, dlq: 0 },
    connections: { tcp: 0, ws: 0, sse: 0 },
    memory: { heapUsed: Number, heapTotal: Number, rss: Number },
  });
  for (const probe of ['/healthz', '/live']) {
    const res = await s.request('GET', probe);
    t.same([res.status, res.text, res.headers.get('content-type')], [200, 'OK', 'text/plain'], probe);
  }
  t.same((await s.request('GET', '/ready')).json, { ok: true, ready: true });
  const stats = await s.request('GET', '/stats');
  t.same(Object.keys(stats.json.stats), ['queued', 'processing', 'delayed', 'dlq', 'completed', 'uptime', 'pushPerSec', 'pullPerSec', 'totalPushed', 'totalPulled', 'totalCompleted', 'totalFailed']);
  t.same(Object.keys(stats.json.memory), ['heapUsed', 'heapTotal', 'rss', 'external', 'arrayBuffers']);
  t.same(Object.keys(stats.json.collections), ['jobIndex', 'completedJobs', 'processingTotal', 'queuedTotal', 'temporalIndexTotal']);
  t.same((await s.request('GET', '/metrics')).json, { ok: true, metrics: { totalPushed: 1, totalPulled: 0, totalCompleted: 0, totalFailed: 0 } });
});

t.test('routing-errors-404-and-405-with-allow', async (t) => {
  const { s } = await realServer(t);
  const missing = await s.request('GET', '/nope');
  t.same([missing.status, missing.json], [404, { ok: false, error: 'Not found' }]);
  const wrong = await s.request('PATCH', '/queues/q/jobs');
  t.same([wrong.status, wrong.json], [405, { ok: false, error: 'Method not allowed' }]);
  t.match(wrong.headers.get('allow'), /POST/);
  t.match(wrong.headers.get('allow'), /GET/);
  t.equal((await s.request('GET', '/jobs/x/ack')).status, 405);
});

t.test('a-route-of-the-requests-own-method-that-finds-nothing-is-404-not-405', async (t) => {
  // The docs' static-file route (GET and HEAD /docs/static/*) hands a missing file to the
  // not-found handler, which found the route's pattern and answered 405 "Method not allowed" with
  // `Allow: HEAD, GET, OPTIONS`, naming the method the request had used.
  const { s } = await realServer(t);
  const missing = await s.request('GET', '/docs/static/no-such-file.js');
  t.same([missing.status, missing.json], [404, { ok: false, error: 'Not found' }]);
  t.equal(missing.headers.get('allow'), null, 'no Allow header on a 404');
  t.equal(missing.headers.get('content-type'), 'application/json');
  t.equal((await fetch(`${s.url}/docs/static/no-such-file.js`, { method: 'HEAD' })).status, 404, 'HEAD too');
  const wrong = await s.request('POST', '/docs/static/no-such-file.js');
  t.same([wrong.status, wrong.headers.get('allow')], [405, 'HEAD, GET, OPTIONS'], 'another method is still 405');
});

t.test('a-request-no-route-takes-is-404-or-405-whatever-its-body', async (t) => {
  // The body was parsed before the not-found handler ran, so an unknown path or a wrong method
  // with a malformed body answered 400 "Invalid JSON body" instead of SPEC section 4's 404 / 405.
  const { s, fx } = await realServer(t);
  const before = fx.log.nextOffset;
  for (const raw of ['{bad', '{"__proto__":{"x":1}}']) {
    const unknown = await s.request('POST', '/no/such/path', { raw });
    t.same([unknown.status, unknown.json], [404, { ok: false, error: 'Not found' }], `unknown path, body ${raw}`);
    t.equal(unknown.headers.get('content-type'), 'application/json');
    const wrongMethod = await s.request('PATCH', '/queues/q/jobs', { raw });
    t.same([wrongMethod.status, wrongMethod.json], [405, { ok: false, error: 'Method not allowed' }], `wrong method, body ${raw}`);
    t.equal(wrongMethod.headers.get('allow'), 'POST, GET, OPTIONS');
    t.equal((await s.request('POST', '/health', { raw })).status, 405, `POST on a probe, body ${raw}`);
  }
  t.equal(fx.log.nextOffset, before, 'nothing appended');
  const known = await s.request('POST', '/queues/q/jobs', { raw: '{bad' });
  t.same([known.status, known.json], [400, { ok: false, error: 'Invalid JSON body' }], 'a route that exists still refuses it');
});

t.test('a-content-type-that-is-not-a-media-type-is-415-naming-the-header', async (t) => {
  // Fastify refuses these before any body parser runs; its text was "Unsupported Media Type",
  // which named neither the header nor what to send, while any real media type is read as JSON.
  const { s, fx } = await realServer(t);
  const before = fx.log.nextOffset;
  const error = 'Content-Type must be a media type (type/subtype), such as application/json';
  for (const type of ['json', 'application/json garbage', '']) {
    const res = await s.request('POST', '/queues/q/jobs', { raw: '{"data":1}', headers: { 'content-type': type } });
    t.same([res.status, res.json], [415, { ok: false, error }], `Content-Type: ${JSON.stringify(type)}`);
    t.equal(res.headers.get('content-type'), 'application/json');
    t.equal(res.headers.get('access-control-allow-origin'), '*');
  }
  t.equal(fx.log.nextOffset, before, 'nothing appended');
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-8']) {
    const res = await s.request('POST', '/queues/q/jobs', { raw: '{"data":1}', headers: { 'content-type': type } });
    t.equal(res.status, 200, `${type} is read as JSON`);
  }
});

t.test('a-paused-queues-waiting-jobs-are-listed-by-default-and-counted-once', async (t) => {
  const { s } = await realServer(t);
  await s.request('POST', '/queues/pz/jobs', { body: [{ data: 1 }, { data: 2 }] });
  await s.request('POST', '/queues/pz/pause');
  const list = await s.request('GET', '/queues/pz/jobs/list');
  t.equal(list.json.jobs.length, 2, 'the default statuses include paused');
  t.match(list.json.counts, { waiting: 0, paused: 2 });
  t.equal((await s.request('GET', '/queues/pz/jobs/list?statuses=waiting')).json.jobs.length, 0);
});

t.test('urls-the-router-refuses-get-the-envelope-the-cors-header-and-a-named-field', async (t) => {
  // The router answers these itself (fastify's frameworkErrors), before any hook: they missed the
  // onSend hook's Access-Control-Allow-Origin and JSON type, and a path parameter over 512
  // characters got fastify's "'<the whole path>' is exceeding the max param length".
  const fx = await startBroker();
  const s = await startServer({ broker: fx.broker, config: { corsAllowOrigin: 'https://app.example' } });
  t.teardown(async () => {
    await s.close();
    await fx.cleanup();
  });
  const cases: Array<[string, string, string]> = [
    ['GET', '/jobs/%E0%A4%A', "'/jobs/%E0%A4%A' is not a valid url component"],
    ['GET', `/jobs/${'x'.repeat(600)}`, 'id must be at most 128 characters'],
    ['POST', `/queues/${'q'.repeat(600)}/jobs`, 'queue must be 1-128 characters of letters, digits, ".", "_", "-" or ":"'],
  ];
  for (const [method, path, error] of cases) {
    const before = fx.log.nextOffset;
    const res = await s.request(method, path, method === 'POST' ? { body: { data: 1 } } : {});
    t.same([res.status, res.json], [400, { ok: false, error }], `${method} ${path.slice(0, 20)}`);
    t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example', 'CORS header');
    t.equal(res.headers.get('content-type'), 'application/json', 'JSON type');
    t.equal(fx.log.nextOffset, before, 'nothing appended');
  }
});

t.test('actions-that-take-no-body-refuse-one-with-fields-and-append-nothing', async (t) => {
  // These routes had no body schema, so a body was ignored: `dlq/purge {"id": …}` purged the whole
  // DLQ, `drain {"delayed": false}` (BullMQ's drain argument) removed the delayed jobs too.
  const { s, fx } = await realServer(t);
  const { json: dead } = await s.request('POST', '/queues/q/jobs', { body: { data: 1, maxAttempts: 1 } });
  await s.request('GET', '/queues/q/jobs');
  await s.request('POST', `/jobs/${dead.id}/fail`);
  const { json: delayed } = await s.request('POST', '/queues/q/jobs', { body: { data: 2, delay: 60_000 } });
  const cases: Array<[string, string, unknown, string]> = [
    ['POST', '/queues/q/dlq/purge', { id: dead.id }, 'id is not an allowed field'],
    ['POST', '/queues/q/drain', { delayed: false }, 'delayed is not an allowed field'],
    ['POST', '/queues/q/pause', { foo: 1 }, 'foo is not an allowed field'],
    ['POST', '/queues/q/resume', [], 'body must be an object'],
    ['POST', `/jobs/${delayed.id}/promote`, { foo: 1 }, 'foo is not an allowed field'],
    ['POST', `/jobs/${dead.id}/retry`, 5, 'body must be an object'],
    ['DELETE', `/jobs/${delayed.id}`, { force: true }, 'force is not an allowed field'],
  ];
  for (const [method, path, body, error] of cases) {
    const before = fx.log.nextOffset;
    const res = await s.request(method, path, { body });
    t.same([res.status, res.json], [400, { ok: false, error }], `${method} ${path}`);
    t.equal(fx.log.nextOffset, before, `${method} ${path}: nothing appended`);
  }
  t.match((await s.request('GET', '/queues/q/counts')).json.counts, { failed: 1, delayed: 1 }, 'nothing was removed');
  // No body, an empty one, `{}` and `null` are all "no body".
  t.same((await s.request('POST', '/queues/q/pause', { body: {} })).json, { ok: true });
  t.same((await s.request('POST', '/queues/q/resume', { raw: 'null' })).json, { ok: true });
  t.same((await s.request('POST', `/jobs/${delayed.id}/promote`, { raw: '' })).json, { ok: true });
  t.match((await s.request('POST', '/queues/q/dlq/purge')).json, { ok: true, purged: 1 });
});

t.test('dot-segment-queue-names-and-job-ids-are-refused', async (t) => {
  // "." and ".." were valid queue names and job ids, but a URL client (fetch, a browser, curl)
  // removes them as dot segments: `/queues/../jobs` is sent as `/jobs`, so such a queue or job
  // could be made (by a raw HTTP client, a WebSocket PUSH) and never reached again by its URL.
  const { s, fx } = await realServer(t);
  const raw = (path: string): Promise<{ status: number; json: any }> =>
    new Promise((resolve, reject) => {
      // `path` as an option: a URL string would be normalised here as fetch does.
      const { hostname, port } = new URL(s.url);
      const req = httpRequest({ hostname, port, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end('{"data":1}');
    });
  const before = fx.log.nextOffset;
  for (const name of ['.', '..', '%2E%2E']) {
    const res = await raw(`/queues/${name}/jobs`);
    t.same([res.status, res.json.error], [400, 'queue must not be "." or ".."'], `queue ${name}`);
  }
  const ctx = { actor: { name: 'test', address: 'test' } };
  t.same(await fx.broker.push('..', { data: 1 }, ctx), { ok: false, code: 'BAD_REQUEST', error: 'queue must not be "." or ".."' }, 'the WebSocket PUSH path too');
  for (const jobId of ['.', '..']) {
    const res = await s.request('POST', '/queues/q/jobs', { body: { data: 1, jobId } });
    t.same([res.status, res.json.error], [400, 'jobId must not be "." or ".."'], `jobId ${jobId}`);
    const bull = await s.request('POST', '/queues/q/jobs', { body: { name: 'n', data: 1, opts: { jobId } } });
    t.same([bull.status, bull.json.error], [400, 'opts.jobId must not be "." or ".."'], `opts.jobId ${jobId}`);
  }
  t.equal(fx.log.nextOffset, before, 'nothing appended');
  t.equal((await raw('/queues/.../jobs')).status, 200, 'three dots are a name like any other');
  t.equal((await s.request('POST', '/queues/q/jobs', { body: { data: 1, jobId: '.a' } })).status, 200);
});
