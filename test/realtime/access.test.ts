// Who may subscribe and to what: bearer-token auth on SSE, at the WebSocket upgrade and by the
// Auth command; queue filters on both transports; bad parameters refused before any stream.

import { get as httpGet } from 'node:http';
import t from 'tap';
import { connections } from '../../src/api/connections.js';
import { SseClient, UpgradeRefused, WsClient } from './clients.js';
import { push, startRealtime } from './harness.js';

const token = 's3cret-token';
const bearer = { authorization: `Bearer ${token}` };

t.test('sse-without-or-with-wrong-token-is-401-with-the-envelope', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  for (const headers of [{}, { authorization: 'Bearer nope' }] as Array<Record<string, string>>) {
    const sse = await SseClient.connect(h.http('/events'), headers);
    t.equal(sse.status, 401);
    t.strictSame(JSON.parse(await sse.body()), { ok: false, error: 'Unauthorized' });
  }
  const sse = await SseClient.connect(h.http('/events/queues/q'), bearer);
  t.equal(sse.status, 200);
  t.match(JSON.parse((await sse.inbox.take()).data), { connected: true });
  sse.close();
});

t.test('ws-upgrade-with-an-invalid-authorization-header-is-refused-401', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  for (const path of ['/ws', '/ws/queues/q']) {
    const refused = await WsClient.connect(h.ws(path), { authorization: 'Bearer wrong' }).catch((e: unknown) => e);
    t.ok(refused instanceof UpgradeRefused, path);
    t.equal((refused as UpgradeRefused).status, 401);
  }
  const ws = await WsClient.connect(h.ws('/ws'), bearer);
  t.teardown(() => ws.close());
  t.match(await ws.command({ cmd: 'PUSH', queue: 'q', data: 1 }), { ok: true, id: String });
  t.match(await ws.nextEvent(), { eventType: 'pushed', queue: 'q', data: 1 });
});

// Seed 004 allows both a 401 at the upgrade and a later Auth command. Resolution (ws.ts): no
// header → the socket opens unauthenticated; commands other than Auth are refused and no events
// flow until Auth succeeds.
t.test('ws-without-header-is-unauthenticated-until-the-auth-command', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws'));
  t.teardown(() => ws.close());
  t.strictSame(await ws.command({ cmd: 'PUSH', queue: 'q', data: 1 }), { ok: false, error: 'Unauthorized', reqId: 'r1' });
  t.strictSame(await ws.command({ cmd: 'GETJOB', id: 'x' }), { ok: false, error: 'Unauthorized', reqId: 'r2' });
  await push(h, 'q', { data: 'unseen' });
  t.strictSame(await ws.command({ cmd: 'Auth', token: 'wrong' }), { ok: false, error: 'Invalid token', reqId: 'r3' });
  ws.send({ cmd: 'Auth', token: 'wrong' });
  t.strictSame(await ws.inbox.take((m) => m.reqId === undefined), { ok: false, error: 'Invalid token' }, 'seed shape without reqId');
  t.strictSame(await ws.command({ cmd: 'Auth', token: ` ${token} ` }), { ok: false, error: 'Invalid token', reqId: 'r4' }, 'the token exactly');
  t.strictSame(await ws.command({ cmd: 'Auth', token }), { ok: true, reqId: 'r5' });
  const id = await push(h, 'q', { data: 'seen' });
  const first = await ws.nextEvent();
  t.match(first, { eventType: 'pushed', jobId: id, data: 'seen' }, 'events start at Auth, none from before');
  t.match(await ws.command({ cmd: 'GETJOB', id }), { ok: true, job: { id, data: 'seen' } });
});

t.test('ws-that-never-authenticates-is-closed-at-the-deadline', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] }, limits: { wsAuthDeadlineMs: 300 } });
  t.teardown(() => h.close());
  const idle = await WsClient.connect(h.ws('/ws'));
  const authed = await WsClient.connect(h.ws('/ws'));
  t.teardown(() => authed.close());
  t.strictSame(await authed.command({ cmd: 'Auth', token }), { ok: true, reqId: 'r1' });
  t.match(await idle.inbox.take(() => true), { ok: false, error: /^Authentication timeout/ }, 'told why');
  t.match(await idle.closed, { code: 1008, reason: 'Authentication timeout' });
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.match(await authed.command({ cmd: 'GETJOB', id: 'nope' }), { ok: false, error: 'Job not found' }, 'an authenticated socket stays open');
});

t.test('queue-filters-on-sse-and-ws', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const sseA = await SseClient.connect(h.http('/events/queues/a'));
  const sseAll = await SseClient.connect(h.http('/events'));
  const wsB = await WsClient.connect(h.ws('/ws/queues/b'));
  const wsAll = await WsClient.connect(h.ws('/ws'));
  t.teardown(async () => {
    sseA.close();
    sseAll.close();
    await wsB.close();
    await wsAll.close();
  });
  await sseA.inbox.take();
  await sseAll.inbox.take();
  const order = ['a', 'b', 'a', 'c', 'b'];
  const ids: string[] = [];
  for (const q of order) ids.push(await push(h, q, { data: q }));
  const take = async <T>(n: number, next: () => Promise<T>): Promise<T[]> => {
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(await next());
    return out;
  };
  const queuesOf = (events: Array<Record<string, unknown>>): unknown[] => events.map((e) => e.queue);
  t.strictSame(queuesOf((await take(2, () => sseA.nextEvent())).map((e) => e.event)), ['a', 'a']);
  t.strictSame(queuesOf((await take(5, () => sseAll.nextEvent())).map((e) => e.event)), order);
  t.strictSame(queuesOf(await take(2, () => wsB.nextEvent())), ['b', 'b']);
  t.strictSame(queuesOf(await take(5, () => wsAll.nextEvent())), order);
  // Nothing else was queued for the filtered clients: a later event of their queue comes next.
  const last = await push(h, 'a', { data: 'sentinel' });
  t.equal((await sseA.nextEvent()).event.jobId, last);
  const lastB = await push(h, 'b', { data: 'sentinel' });
  t.equal((await wsB.nextEvent()).jobId, lastB);
});

t.test('bad-queue-name-or-offset-is-400-before-any-stream', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  await push(h, 'q', { data: 1 });
  await push(h, 'q', { data: 2 });
  // An offset past the log's end would stream "after" it and skip what comes before it.
  const cases: Array<[string, Record<string, string>, string]> = [
    ['/events/queues/bad%20name', {}, 'queue must be 1-128 characters of letters, digits, ".", "_", "-" or ":"'],
    ['/events?from=-2', {}, 'from must be a log offset (a non-negative integer, or -1 for the whole log)'],
    ['/events?from=1&from=0', {}, 'from must be a log offset (a non-negative integer, or -1 for the whole log)'],
    ['/events', { 'last-event-id': 'abc' }, 'Last-Event-ID must be a log offset (a non-negative integer, or -1 for the whole log)'],
    ['/events', { 'last-event-id': '-01' }, 'Last-Event-ID must be a log offset (a non-negative integer, or -1 for the whole log)'],
    ['/events?from=2', {}, 'from 2 is beyond the end of the log (its last offset is 1)'],
    ['/events', { 'last-event-id': '30' }, 'Last-Event-ID 30 is beyond the end of the log (its last offset is 1)'],
  ];
  for (const [path, headers, error] of cases) {
    const sse = await SseClient.connect(h.http(path), headers);
    t.equal(sse.status, 400, path);
    t.strictSame(JSON.parse(await sse.body()), { ok: false, error });
  }
  for (const path of ['/ws/queues/bad%20name', '/ws?from=x', '/ws?from=2']) {
    const refused = await WsClient.connect(h.ws(path)).catch((e: unknown) => e);
    t.equal((refused as UpgradeRefused).status, 400, path);
  }
});

t.test('a-dot-segment-queue-filter-is-refused-as-no-queue-can-have-that-name', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  // Sent as written: URL parsers (fetch, ws) would remove the dot segments first.
  for (const queue of ['.', '..']) {
    for (const path of [`/events/queues/${queue}`, `/ws/queues/${queue}`]) {
      const status = await new Promise<number>((resolve, reject) => {
        const request = httpGet(h.http(path).replace(/\/(events|ws)\/.*$/, ''), { path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        request.on('error', reject);
      });
      t.equal(status, 400, `${path}: queue must not be "." or ".."`);
    }
  }
});

t.test('a-bad-queue-name-gets-one-text-naming-the-field-and-the-rule-on-every-path', async (t) => {
  // It was `queue must contain only …` over HTTP, `queue name must be 1-128 characters of …` in a
  // WebSocket command and `Invalid queue name` (no reason) in an SSE or WebSocket path.
  const h = await startRealtime();
  t.teardown(() => h.close());
  const rule = 'queue must be 1-128 characters of letters, digits, ".", "_", "-" or ":"';
  const ws = await WsClient.connect(h.ws('/ws'));
  t.teardown(() => ws.close());
  const before = h.fixture.log.nextOffset;
  for (const [name, encoded] of [['bad q', 'bad%20q'], ['q'.repeat(129), 'q'.repeat(129)], ['é', '%C3%A9']] as const) {
    const http = await h.server.request('POST', `/queues/${encoded}/jobs`, { body: { data: 1 } });
    t.strictSame([http.status, http.json], [400, { ok: false, error: rule }], `POST /queues/${encoded.slice(0, 12)}/jobs`);
    t.strictSame((await h.server.request('GET', `/queues/${encoded}/counts`)).json, { ok: false, error: rule }, 'another route');
    const worker = await h.server.request('POST', '/workers', { body: { queue: name, endpoint: { url: 'http://127.0.0.1:1/', method: 'POST' } } });
    t.strictSame(worker.json, { ok: false, error: rule }, 'a push worker');
    const sse = await SseClient.connect(h.http(`/events/queues/${encoded}`));
    t.strictSame([sse.status, JSON.parse(await sse.body())], [400, { ok: false, error: rule }], 'an SSE path');
    const refused = (await WsClient.connect(h.ws(`/ws/queues/${encoded}`)).catch((e: unknown) => e)) as UpgradeRefused;
    t.strictSame([refused.status, JSON.parse(refused.body)], [400, { ok: false, error: rule }], 'a WebSocket path');
    for (const cmd of ['PUSH', 'PUSHB', 'PULL']) {
      const reply = await ws.command({ cmd, queue: name, ...(cmd === 'PUSH' ? { data: 1 } : cmd === 'PUSHB' ? { jobs: [{ data: 1 }] } : {}) });
      t.strictSame([reply.ok, reply.error], [false, rule], `WebSocket ${cmd}`);
    }
  }
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
});

t.test('openapi-documents-sse-resume-parameters-and-each-routes-real-security', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  const doc = (await (await fetch(h.http('/openapi.json'), { headers: bearer })).json()) as any;
  for (const path of ['/events', '/events/queues/{queue}']) {
    const op = doc.paths[path].get;
    const params = op.parameters.map((p: any) => `${p.in}:${p.name}`);
    t.ok(params.includes('query:from') && params.includes('header:last-event-id'), `${path} documents both resume parameters`);
    t.ok(op.responses['400'] && op.responses['401'], `${path} documents 400 and 401`);
    t.equal(op.security, undefined, `${path} needs the token (the document's default)`);
  }
  t.strictSame(doc.security, [{ bearer: [] }]);
  for (const path of ['/health', '/healthz', '/live', '/ready', '/heapstats', '/prometheus']) {
    t.strictSame(doc.paths[path].get.security, [], `${path} is open`);
    if (path !== '/heapstats') t.notOk(doc.paths[path].get.responses['401'], `${path} never answers 401`);
  }
  // Open, but its ?snapshot=true needs a token: the 401 it answers then is documented, and real.
  t.match(doc.paths['/heapstats'].get.responses['401'].description, /snapshot=true/);
  t.equal((await fetch(h.http('/heapstats?snapshot=true'))).status, 401);
  t.strictSame(doc.paths['/gc'].post.security, []);
  for (const [path, method] of [['/queues', 'get'], ['/stats', 'get'], ['/workers', 'get'], ['/queues/{queue}/jobs', 'post']] as const) {
    t.ok(doc.paths[path][method].responses['401'], `${method} ${path} documents 401`);
  }
  t.notOk(doc.paths['/ws'], 'WebSocket routes are outside the document');
  // Requests still behave as before: the documentation-only schemas refuse nothing.
  const sse = await SseClient.connect(h.http('/events?unknown=1'), bearer);
  t.equal(sse.status, 200);
  sse.close();
});

t.test('openapi-says-prometheus-needs-a-token-when-metrics-auth-is-on', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token], metricsAuth: true } });
  t.teardown(() => h.close());
  const doc = (await (await fetch(h.http('/openapi.json'), { headers: bearer })).json()) as any;
  t.equal(doc.paths['/prometheus'].get.security, undefined);
  t.ok(doc.paths['/prometheus'].get.responses['401']);
});

t.test('a-plain-get-on-a-websocket-route-is-426-in-the-envelope', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const res = await fetch(h.http('/ws/queues/q'));
  t.equal(res.status, 426);
  t.equal(res.headers.get('upgrade'), 'websocket');
  t.same(await res.json(), { ok: false, error: 'Upgrade required: connect with a WebSocket client' });
});

t.test('server-shutdown-closes-websockets-with-1001', async (t) => {
  const h = await startRealtime();
  const ws = await WsClient.connect(h.ws('/ws'));
  await h.close();
  t.equal((await ws.closed).code, 1001);
  t.strictSame(ws.inbox.all, [{ ok: false, error: 'Server shutting down' }], 'told why first, as every socket the server closes is');
});

t.test('ws-closes-after-five-failed-auth-commands', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws'));
  for (let i = 1; i <= 5; i++) t.strictSame(await ws.command({ cmd: 'Auth', token: `guess-${i}` }), { ok: false, error: 'Invalid token', reqId: `r${i}` });
  t.strictSame(await ws.inbox.take((m) => m.reqId === undefined), { ok: false, error: 'Too many failed Auth attempts' });
  t.equal((await ws.closed).code, 1008);
});

t.test('many-connects-and-disconnects-on-an-idle-log-leave-nothing-behind', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  await push(h, 'idle', { data: 1 });
  const sseBefore = connections.sse;
  const wsBefore = connections.ws;
  // Each live subscriber waits on the log for the next commit; none comes while the log is idle.
  const waiting = (): number => (h.fixture.log as unknown as { wakers: Set<unknown> }).wakers.size;
  for (let i = 0; i < 200; i++) {
    const sse = await SseClient.connect(h.http('/events'));
    await sse.inbox.take();
    sse.close();
    await sse.closed;
    const ws = await WsClient.connect(h.ws('/ws/queues/idle'));
    await ws.close();
  }
  const deadline = Date.now() + 5_000;
  while ((connections.sse !== sseBefore || connections.ws !== wsBefore || waiting() > 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  t.equal(connections.sse, sseBefore, 'every SSE stream ended');
  t.equal(connections.ws, wsBefore, 'every WebSocket session ended');
  t.equal(waiting(), 0, 'no closed subscriber still waits on the log for a commit');
});
