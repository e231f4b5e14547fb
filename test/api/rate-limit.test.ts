// Rate limiting (seed 004): sliding window per client IP, 429 with the seed text, keyed by the
// first X-Forwarded-For entry, else X-Real-IP, else "unknown"; probes exempt; bounded memory.

import type { FastifyRequest } from 'fastify';
import t from 'tap';
import { clientAddress, forwardedIp } from '../../src/api/context.js';
import { SlidingWindowLimiter } from '../../src/api/rate-limit.js';
import { clientAddressLengthMax } from '../../src/constants.js';
import { startServer } from '../fixtures/server.js';

t.test('limiter-allows-max-per-window-and-slides', async (t) => {
  const limiter = new SlidingWindowLimiter(60_000, 3);
  const t0 = 1_000_000_000;
  t.equal(limiter.hit('a', t0), 0);
  t.equal(limiter.hit('a', t0 + 10_000), 0);
  t.equal(limiter.hit('a', t0 + 20_000), 0);
  t.ok(limiter.hit('a', t0 + 30_000) > 0, '4th inside the window is refused');
  t.equal(limiter.hit('b', t0 + 30_000), 0, 'other IPs have their own window');
  t.ok(limiter.hit('a', t0 + 59_000) > 0, 'still inside the window of the first hit');
  t.equal(limiter.hit('a', t0 + 61_000), 0, 'the first hit slid out of the window');
  t.ok(limiter.hit('a', t0 + 62_000) > 0, 'the 2nd and 3rd hits are still in the window');
  t.equal(limiter.hit('a', t0 + 71_000), 0);
});

t.test('refused-hits-are-not-counted', async (t) => {
  const limiter = new SlidingWindowLimiter(1_000, 1);
  t.equal(limiter.hit('a', 0), 0);
  for (let i = 1; i < 100; i++) t.ok(limiter.hit('a', i * 5) > 0);
  t.equal(limiter.hit('a', 1_000), 0, 'hammering while refused does not extend the window');
});

t.test('tracked-ips-are-capped-and-cleaned-up', async (t) => {
  const limiter = new SlidingWindowLimiter(1_000, 5, 100);
  for (let i = 0; i < 1_000; i++) limiter.hit(`ip-${i}`, 0);
  t.equal(limiter.trackedCount, 100, 'least recently seen IPs are forgotten past the cap');
  limiter.cleanup(500);
  t.equal(limiter.trackedCount, 100, 'still inside the window');
  limiter.cleanup(2_000);
  t.equal(limiter.trackedCount, 0, 'idle clients are dropped');
});

t.test('http-429-after-max-requests-per-forwarded-ip-and-probes-exempt', async (t) => {
  const s = await startServer({ config: { rateLimitMaxRequests: 3, rateLimitWindowMs: 3_000 } });
  t.teardown(() => s.close());
  const as = (ip: string) => ({ headers: { 'x-forwarded-for': `${ip}, 10.0.0.1` } });
  for (let i = 0; i < 3; i++) t.equal((await s.request('GET', '/queues', as('198.51.100.1'))).status, 200);
  const limited = await s.request('GET', '/queues', as('198.51.100.1'));
  t.equal(limited.status, 429);
  t.same(limited.json, { ok: false, error: 'Rate limit exceeded' });
  t.equal(limited.headers.get('content-type'), 'application/json');
  t.ok(Number(limited.headers.get('retry-after')) >= 1);
  t.equal((await s.request('POST', '/queues/q/jobs', { body: { data: 1 }, ...as('198.51.100.1') })).status, 429);
  t.equal(s.broker.appended, 0, 'a limited push appends nothing');

  t.equal((await s.request('GET', '/queues', as('198.51.100.2'))).status, 200, 'another forwarded IP is separate');
  t.equal((await s.request('GET', '/queues', { headers: { 'x-real-ip': '198.51.100.1' } })).status, 429, 'X-Real-IP keys the same client');
  for (const probe of ['/health', '/healthz', '/live', '/ready']) {
    t.equal((await s.request('GET', probe, as('198.51.100.1'))).status, 200, `${probe} is exempt`);
  }
  await new Promise((r) => setTimeout(r, 3_100));
  t.equal((await s.request('GET', '/queues', as('198.51.100.1'))).status, 200, 'allowed again after the window');
});

t.test('clients-without-forwarding-headers-share-the-unknown-key', async (t) => {
  const s = await startServer({ config: { rateLimitMaxRequests: 2, rateLimitWindowMs: 60_000 } });
  t.teardown(() => s.close());
  t.equal((await s.request('GET', '/queues')).status, 200);
  t.equal((await s.request('GET', '/queues')).status, 200);
  t.equal((await s.request('GET', '/queues')).status, 429);
});

t.test('rate-limit-off-by-default', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  for (let i = 0; i < 50; i++) t.equal((await s.request('GET', '/queues')).status, 200);
});

t.test('openapi-documents-429-on-every-route-the-limiter-counts-and-only-there', async (t) => {
  const s = await startServer({ config: { rateLimitMaxRequests: 1, rateLimitWindowMs: 60_000 } });
  t.teardown(() => s.close());
  const doc = (await s.request('GET', '/openapi.json')).json as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
  const probes = new Set(['/health', '/healthz', '/live', '/ready']);
  const missing: string[] = [];
  const extra: string[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const has = '429' in op.responses;
      if (probes.has(path) && has) extra.push(`${method} ${path}`);
      if (!probes.has(path) && !has) missing.push(`${method} ${path}`);
    }
  }
  t.same(missing, [], 'every counted route documents 429');
  t.same(extra, [], 'the probes never answer 429');
  // What the document says of the routes that used not to list it, asked for real (the
  // document's own request used up the client's one request).
  for (const [method, path] of [['GET', '/stats'], ['GET', '/metrics'], ['GET', '/queues'], ['GET', '/workers'], ['GET', '/heapstats'], ['POST', '/gc'], ['GET', '/prometheus']] as const) {
    t.equal((await s.request(method, path)).status, 429, `${method} ${path} is limited`);
  }
});

t.test('a-wall-clock-step-back-does-not-refuse-a-client-for-its-length', async (t) => {
  const s = await startServer({ config: { rateLimitMaxRequests: 1, rateLimitWindowMs: 300 } });
  const wallNow = Date.now;
  t.teardown(async () => {
    Date.now = wallNow;
    await s.close();
  });
  const as = { headers: { 'x-forwarded-for': '198.51.100.7' } };
  t.equal((await s.request('GET', '/queues', as)).status, 200);
  t.equal((await s.request('GET', '/queues', as)).status, 429);
  Date.now = () => wallNow() - 3_600_000;
  await new Promise((r) => setTimeout(r, 400));
  t.equal((await s.request('GET', '/queues', as)).status, 200, 'the window is elapsed time, whatever the wall clock did');
});

t.test('an-over-long-forwarded-address-is-cut-so-spoofed-headers-cannot-grow-the-client-map', async (t) => {
  // The limiter keeps up to rateLimitTrackedIpsMax keys: with the header's whole first entry as
  // the key (up to Node's 16 KiB header limit) that was gigabytes. No address is longer than
  // clientAddressLengthMax, so a longer entry is cut there (and recorded cut in the actor too).
  const s = await startServer({ config: { rateLimitMaxRequests: 1, rateLimitWindowMs: 60_000 } });
  t.teardown(() => s.close());
  const long = 'f'.repeat(8_000);
  const as = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
  t.equal((await s.request('GET', '/queues', as(`${long}a`))).status, 200);
  t.equal((await s.request('GET', '/queues', as(`${long}b`))).status, 429, 'same first characters, same key');
  const fake = (headers: Record<string, string>) => ({ headers, socket: { remoteAddress: '127.0.0.1' } }) as unknown as FastifyRequest;
  t.equal(forwardedIp(fake({ 'x-forwarded-for': long })).length, clientAddressLengthMax);
  t.equal(forwardedIp(fake({ 'x-real-ip': long })).length, clientAddressLengthMax);
  t.equal(clientAddress(fake({ 'x-forwarded-for': `${long}, 10.0.0.1` })).length, clientAddressLengthMax);
  t.equal(forwardedIp(fake({ 'x-forwarded-for': '2001:db8::1, 10.0.0.1' })), '2001:db8::1', 'a real address is kept whole');
});
