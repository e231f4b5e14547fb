// Authentication (seed 004 + BullMQ Proxy job tokens): which endpoints need a token, which
// tokens are accepted, and that a refused request never reaches the broker.

import t from 'tap';
import { authenticate, bearerToken, tokenActorName } from '../../src/api/auth.js';
import { loadConfig } from '../../src/config.js';
import { startServer } from '../fixtures/server.js';

const TOKENS = ['secret-token-1', 'secret-token-2'];

t.test('authenticate-helper-accepts-only-configured-bearer-tokens', async (t) => {
  const on = { ...loadConfig({}), authTokens: TOKENS };
  const off = loadConfig({});
  t.ok(authenticate(undefined, off), 'auth off: anything goes');
  t.ok(authenticate('Bearer secret-token-2', on));
  t.ok(authenticate('bearer secret-token-1', on), 'scheme is case-insensitive');
  t.notOk(authenticate('Bearer SECRET-TOKEN-1', on), 'token is case-sensitive');
  t.notOk(authenticate('Bearer secret-token', on), 'prefix of a token');
  t.notOk(authenticate('Bearer secret-token-1x', on), 'longer than a token');
  t.notOk(authenticate('Bearer ', on));
  t.notOk(authenticate('secret-token-1', on), 'no scheme');
  t.notOk(authenticate('Basic secret-token-1', on));
  t.notOk(authenticate(undefined, on));
  t.equal(bearerToken('Bearer  abc '), 'abc');
  t.match(tokenActorName('secret-token-1'), /^[0-9a-f]{8}$/);
});

t.test('with-auth-tokens-every-non-exempt-endpoint-answers-401-without-reaching-broker', async (t) => {
  const s = await startServer({ config: { authTokens: TOKENS } });
  t.teardown(() => s.close());
  const cases: Array<[string, string, unknown?]> = [
    ['POST', '/queues/emails/jobs', { data: 1 }],
    ['GET', '/queues/emails/jobs'],
    ['GET', '/queues/emails/jobs/list'],
    ['GET', '/jobs/abc'],
    ['DELETE', '/jobs/abc'],
    ['POST', '/jobs/abc/ack', {}],
    ['POST', '/jobs/abc/fail', {}],
    ['POST', '/jobs/abc/progress', 50],
    ['POST', '/jobs/abc/logs', 'text'],
    ['GET', '/stats'],
    ['GET', '/metrics'],
    ['GET', '/queues'],
    ['POST', '/queues/emails/pause'],
    ['POST', '/workers', { queue: 'q', endpoint: { url: 'http://x', method: 'POST' } }],
    ['GET', '/workers'],
    ['GET', '/no/such/path'],
  ];
  for (const [method, path, body] of cases) {
    const variants: Array<Record<string, string>> = [{}, { authorization: 'Bearer wrong' }, { authorization: 'Bearer ' }, { authorization: 'Bearer SECRET-TOKEN-1' }];
    for (const headers of variants) {
      const res = await s.request(method, path, { body, headers });
      t.equal(res.status, 401, `${method} ${path} ${JSON.stringify(headers)}`);
      t.same(res.json, { ok: false, error: 'Unauthorized' });
      t.equal(res.headers.get('content-type'), 'application/json');
    }
  }
  t.same(s.broker.calls, [], 'no refused request reached the broker');
  t.equal(s.broker.appended, 0);
});

t.test('exempt-endpoints-answer-without-a-token', async (t) => {
  const s = await startServer({ config: { authTokens: TOKENS } });
  t.teardown(() => s.close());
  for (const path of ['/health', '/healthz', '/live', '/ready', '/heapstats']) {
    const res = await s.request('GET', path);
    t.equal(res.status, 200, path);
  }
  for (const path of ['/openapi.json', '/docs']) {
    t.equal((await s.request('GET', path)).status, 401, `${path} is not on seed 004's exempt list`);
  }
  t.equal((await s.request('POST', '/gc')).status, 200, 'POST /gc is exempt');
  t.equal((await s.request('OPTIONS', '/stats')).status, 204);
  t.equal((await s.request('GET', '/prometheus')).status, 200, '/prometheus open unless metricsAuth');
});

t.test('a-configured-token-is-accepted-and-recorded-as-a-hashed-actor', async (t) => {
  const s = await startServer({ config: { authTokens: TOKENS } });
  t.teardown(() => s.close());
  const res = await s.request('POST', '/queues/emails/jobs', {
    body: { data: { to: 'a' } },
    token: 'secret-token-2',
    headers: { 'x-forwarded-for': '203.0.113.9, 10.0.0.1' },
  });
  t.equal(res.status, 200);
  t.same(s.broker.ctxs.at(-1)?.actor, { name: tokenActorName('secret-token-2'), address: '203.0.113.9' });
  t.notMatch(JSON.stringify(s.broker.ctxs), /secret-token/, 'the token itself is never recorded');
});

t.test('prometheus-needs-a-token-when-metrics-auth-is-on', async (t) => {
  const s = await startServer({ config: { authTokens: TOKENS, metricsAuth: true } });
  t.teardown(() => s.close());
  t.equal((await s.request('GET', '/prometheus')).status, 401);
  t.equal((await s.request('GET', '/prometheus', { token: 'secret-token-1' })).status, 200);
});

t.test('job-lock-token-authorises-progress-and-logs-only-while-active', async (t) => {
  const s = await startServer({ config: { authTokens: TOKENS } });
  t.teardown(() => s.close());
  const admin = 'secret-token-1';
  const { json: pushed } = await s.request('POST', '/queues/emails/jobs', { body: { data: 1 }, token: admin });
  const { json: pulled } = await s.request('GET', '/queues/emails/jobs', { token: admin });
  t.equal(pulled.job.id, pushed.id);
  const lock = pulled.token as string;

  for (const path of [`/jobs/${pushed.id}/progress`, `/queues/emails/jobs/${pushed.id}/progress`]) {
    const res = await s.request('POST', path, { body: 100, token: lock });
    t.equal(res.status, 200, path);
  }
  t.equal((await s.request('POST', `/jobs/${pushed.id}/logs`, { body: 'step 1', token: lock })).status, 200);
  t.equal((await s.request('GET', `/jobs/${pushed.id}/logs`, { token: lock })).status, 200);
  t.equal(s.broker.ctxs.at(-1)?.actor?.name, 'job-token');

  t.equal((await s.request('POST', `/jobs/${pushed.id}/ack`, { body: {}, token: lock })).status, 401, 'a lock token is not an API token');
  t.equal((await s.request('GET', `/jobs/${pushed.id}`, { token: lock })).status, 401);
  t.equal((await s.request('POST', `/jobs/${pushed.id}/ack`, { body: { token: lock }, token: admin })).status, 200);
  const after = await s.request('POST', `/jobs/${pushed.id}/progress`, { body: 100, token: lock });
  t.equal(after.status, 401, 'the lock token expires with the lock');
});

t.test('realtime-plugin-routes-get-auth-cors-and-404-handling', async (t) => {
  const s = await startServer({
    config: { authTokens: TOKENS },
    realtime: async (app) => {
      app.get('/events', async () => ({ ok: true, stream: 'stub' }));
    },
  });
  t.teardown(() => s.close());
  const refused = await s.request('GET', '/events');
  t.same([refused.status, refused.json], [401, { ok: false, error: 'Unauthorized' }]);
  t.equal(refused.headers.get('access-control-allow-origin'), '*');
  t.equal((await s.request('GET', '/events', { token: 'secret-token-1' })).status, 200);
  t.equal((await s.request('POST', '/events', { token: 'secret-token-1' })).status, 405);
});

t.test('heapstats-snapshot-needs-a-token-when-auth-is-on', async (t) => {
  // A heap snapshot pauses the process and can take as much memory again as the heap: plain
  // /heapstats stays exempt (seed 004), the snapshot is for token holders only.
  const s = await startServer({ config: { authTokens: TOKENS } });
  t.teardown(() => s.close());
  t.equal((await s.request('GET', '/heapstats')).status, 200, 'plain heapstats stays exempt');
  for (const headers of [{}, { authorization: 'Bearer wrong' }] as Array<Record<string, string>>) {
    const refused = await s.request('GET', '/heapstats?snapshot=true', { headers });
    t.same([refused.status, refused.json], [401, { ok: false, error: 'Unauthorized' }], JSON.stringify(headers));
  }
  const granted = await s.request('GET', '/heapstats?snapshot=true', { token: 'secret-token-1' });
  t.equal(granted.status, 200);
  t.ok(Array.isArray(granted.json.topObjectTypes), 'a token holder gets the snapshot');
});
