// Route schemas compile on their route's first request, not at startup: building the server
// compiles none, a request compiles only what its route needs, compileValidators() compiles the
// rest (so every schema of the API, history and real-time routes included, is proven to
// compile), a schema that does not compile is reported naming its route, and validation behaves
// the same whether a validator was compiled by a request or ahead of it.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import Fastify from 'fastify';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { lazyValidators } from '../../src/api/validation.js';
import { loadConfig } from '../../src/config.js';
import { serve } from '../../src/main.js';
import { startBroker } from '../fixtures/broker.js';
import { startServer } from '../fixtures/server.js';

const noHistory = {
  async *records() {},
};

t.test('building-the-server-compiles-no-schema-and-compileValidators-compiles-every-one', async (t) => {
  const fixture = await startBroker();
  t.teardown(() => fixture.cleanup());
  const config = loadConfig({});
  const realtime = realtimePlugin({ broker: fixture.broker, log: fixture.log, config });
  const s = await startServer({ broker: fixture.broker, config, realtime, history: noHistory });
  t.teardown(() => s.close());
  t.ok(s.app.compileValidators(3) === 3, 'compiles at most the number asked for');
  const rest = s.app.compileValidators();
  // About fifty: GET and POST routes with params, querystring or body schemas (no HEAD twins:
  // only the probes answer HEAD, and they have no schemas to validate).
  t.ok(rest > 45, `every route with a schema has validators, history's included (${rest + 3})`);
  t.equal(s.app.compileValidators(), 0, 'nothing is left to compile');
  const history = await s.request('GET', '/jobs/nope/history?format=xml');
  t.equal(history.status, 400, 'the history route validates');
});

t.test('the-server-compiles-the-rest-in-the-background-once-it-listens', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-validators-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const running = await serve(loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1' }), { logger: () => undefined });
  t.teardown(() => running.close());
  // One schema per event-loop turn: some 70 turns; give it many more, counted in turns, not time.
  for (let turn = 0; turn < 1000; turn++) await new Promise((resolve) => setImmediate(resolve));
  t.equal(running.app.compileValidators(1), 0, 'nothing was left to compile');
});

t.test('a-request-compiles-only-its-own-route-validators', async (t) => {
  const all = await startServer();
  const total = all.app.compileValidators();
  await all.close();

  const s = await startServer();
  t.teardown(() => s.close());
  const res = await s.request('GET', '/queues/emails/jobs/list?statuses=waiting&start=0&length=5');
  t.equal(res.status, 200);
  t.equal(s.app.compileValidators(), total - 2, 'the list route compiled its params and querystring validators, nothing else');
});

t.test('a-schema-that-does-not-compile-is-reported-naming-its-route', async (t) => {
  const validators = lazyValidators();
  const app = Fastify({ exposeHeadRoutes: false });
  t.teardown(() => app.close());
  app.setValidatorCompiler(validators.compiler);
  app.get('/broken', { schema: { querystring: { type: 'object', properties: { n: { type: 'no-such-type' } } } } }, async () => 'ok');
  await app.ready();
  t.throws(() => validators.compile(), /the querystring schema of GET \/broken does not compile/);
  t.equal(validators.compile(), 0, 'a failed schema is not tried again by compile()');
  const res = await app.inject({ method: 'GET', url: '/broken?n=1' });
  t.equal(res.statusCode, 500, 'its route answers 500 rather than skipping validation');
});

t.test('lazily-compiled-validators-reject-coerce-and-default-like-eager-ones', async (t) => {
  for (const eager of [false, true]) {
    const s = await startServer();
    if (eager) s.app.compileValidators();
    const bad = await s.request('GET', '/queues/emails/jobs/list?start=abc');
    t.equal(bad.status, 400, `eager=${eager}`);
    t.same(bad.json, { ok: false, error: 'start must be an integer' });
    const body = await s.request('POST', '/queues/emails/jobs', { body: { data: 1, priority: 'high' } });
    t.equal(body.status, 400);
    t.same(body.json, { ok: false, error: 'priority must be a number' });
    // Coerced ("5" → 5) and defaulted (start 0) by the querystring validator.
    const list = await s.request('GET', '/queues/emails/jobs/list?length=5');
    t.equal(list.status, 200);
    t.equal(list.json.start, 0);
    t.equal(list.json.length, 5);
    await s.close();
  }
});
