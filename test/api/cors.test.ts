// CORS (seed 004): preflight on any path is 204 with exactly the listed headers and no auth;
// every response, errors included, carries Access-Control-Allow-Origin.

import t from 'tap';
import { startServer } from '../fixtures/server.js';

t.test('preflight-on-any-path-is-204-with-the-seed-headers-even-with-auth-and-an-undecodable-path', async (t) => {
  const s = await startServer({ config: { authTokens: ['secret'] } });
  t.teardown(() => s.close());
  // The last two the router cannot decode, and it refuses them before any route, the preflight
  // catch-all included: a browser got 400 to its preflight and reported a CORS failure instead of
  // the request's own 400.
  for (const path of ['/queues/emails/jobs', '/no/such/path', '/jobs/x/ack', '/health', '/queues/50%/jobs', '/jobs/%E0%A4%A']) {
    const res = await s.request('OPTIONS', path);
    t.equal(res.status, 204, path);
    t.equal(res.text, '');
    t.equal(res.headers.get('access-control-allow-origin'), '*');
    t.equal(res.headers.get('access-control-allow-methods'), 'GET, POST, PUT, DELETE, OPTIONS');
    t.equal(res.headers.get('access-control-allow-headers'), 'Content-Type, Authorization');
    t.equal(res.headers.get('access-control-max-age'), '86400');
  }
});

t.test('allow-origin-on-success-error-and-404-uses-config', async (t) => {
  const s = await startServer({ config: { corsAllowOrigin: 'https://app.example' } });
  t.teardown(() => s.close());
  const responses = [
    await s.request('GET', '/health'),
    await s.request('GET', '/jobs/missing'),
    await s.request('GET', '/nowhere'),
    await s.request('POST', '/queues/q/jobs', { raw: '{' }),
    await s.request('GET', '/healthz'),
  ];
  for (const res of responses) t.equal(res.headers.get('access-control-allow-origin'), 'https://app.example', String(res.status));
});

t.test('preflight-is-204-whatever-body-it-carries', async (t) => {
  // OPTIONS bodies were parsed as JSON like any other, so an OPTIONS with a malformed one
  // answered 400 "Invalid JSON body" instead of the preflight's 204 (seed 004: OPTIONS on any path).
  const s = await startServer({ config: { authTokens: ['secret'] } });
  t.teardown(() => s.close());
  for (const raw of ['{bad', '{"__proto__":{"x":1}}', '[1, 2]']) {
    const res = await s.request('OPTIONS', '/queues/emails/jobs', { raw });
    t.equal(res.status, 204, raw);
    t.equal(res.text, '');
    t.equal(res.headers.get('access-control-allow-methods'), 'GET, POST, PUT, DELETE, OPTIONS');
  }
  t.same(s.broker.calls, [], 'nothing reached the broker');
});
