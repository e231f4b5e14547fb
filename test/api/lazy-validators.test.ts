// Route schemas compile on their route's first request, not at startup: building the server
// compiles none, a request compiles only what its route needs, compileValidators() compiles the
// rest (so every schema of the API is proven to compile), and validation behaves the same
// whether a validator was compiled by a request or ahead of it.

import t from 'tap';
import { startServer } from '../fixtures/server.js';

t.test('building-the-server-compiles-no-schema-and-compileValidators-compiles-every-one', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  const count = s.app.compileValidators();
  t.ok(count > 50, `every route part with a schema has a validator (${count})`);
  t.equal(s.app.compileValidators(), 0, 'nothing is left to compile');
});

t.test('a-request-compiles-only-its-own-route-validators', async (t) => {
  const all = await startServer();
  const total = all.app.compileValidators();
  await all.close();

  const s = await startServer();
  t.teardown(() => s.close());
  const res = await s.request('GET', '/queues/emails/jobs/list?statuses=waiting&start=0&length=5');
  t.equal(res.status, 200);
  const left = s.app.compileValidators();
  t.equal(left, total - 2, 'the list route compiled its params and querystring validators, nothing else');
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
