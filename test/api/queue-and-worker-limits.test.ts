// The queue table and the push workers are bounded (queuesMax, workersMax): a request that would
// add one more is refused with 409 and appends nothing; the ones already there keep working, and
// obliterating a queue or removing a worker makes room again. A queue with no job that is not
// paused is forgotten, so the table holds only queues GET /queues lists.

import t, { type Test } from 'tap';
import { queuesMax, workersMax } from '../../src/constants.js';
import { startBroker } from '../fixtures/broker.js';
import { startServer } from '../fixtures/server.js';

/** A server over a broker with these limits, both closed at the test's end. */
async function serving(t: Test, limits: { queuesMax?: number; workersMax?: number }) {
  const fx = await startBroker(limits);
  const s = await startServer({ broker: fx.broker });
  t.teardown(async () => {
    await s.close();
    await fx.cleanup();
  });
  return { fx, s };
}

const worker = (queue: string): unknown => ({ queue, endpoint: { url: 'http://127.0.0.1:9/hook', method: 'POST' } });

t.test('a-new-queue-past-queuesMax-is-refused-and-appends-nothing', async (t) => {
  const { fx, s } = await serving(t, { queuesMax: 2 });
  t.equal((await s.request('POST', '/queues/a/jobs', { body: { data: 1 } })).status, 200);
  t.equal((await s.request('POST', '/queues/b/pause')).status, 200);
  const error = 'Too many queues: at most 2 (obliterate the ones no longer used)';
  const refused: Array<{ name: string; method: string; path: string; body?: unknown }> = [
    { name: 'push', method: 'POST', path: '/queues/c/jobs', body: { data: 1 } },
    { name: 'push-array', method: 'POST', path: '/queues/c/jobs', body: [{ data: 1 }, { data: 2 }] },
    { name: 'bulk', method: 'POST', path: '/queues/c/jobs/bulk', body: { jobs: [{ data: 1 }] } },
    { name: 'pause', method: 'POST', path: '/queues/c/pause' },
  ];
  for (const c of refused) {
    const before = fx.log.nextOffset;
    const res = await s.request(c.method, c.path, c.body === undefined ? {} : { body: c.body });
    t.equal(res.status, 409, `${c.name}: status`);
    t.same(res.json, { ok: false, error }, `${c.name}: error text`);
    t.equal(fx.log.nextOffset, before, `${c.name}: nothing appended`);
  }
  t.equal(fx.broker.state.queues.size, 2);
  t.equal((await s.request('POST', '/queues/a/jobs', { body: { data: 2 } })).status, 200, 'a queue already there takes pushes');
  t.equal((await s.request('POST', '/queues/a/pause')).status, 200, 'and pauses');
  t.equal((await s.request('POST', '/queues/b/obliterate')).status, 200);
  t.equal((await s.request('POST', '/queues/c/jobs', { body: { data: 1 } })).status, 200, 'obliterating one makes room');
});

t.test('a-queue-without-jobs-that-is-not-paused-is-forgotten-and-frees-its-place', async (t) => {
  const { fx, s } = await serving(t, { queuesMax: 2 });
  const { json: pushed } = await s.request('POST', '/queues/a/jobs', { body: { data: 1 } });
  t.equal((await s.request('POST', '/queues/b/pause')).status, 200);
  t.equal((await s.request('POST', '/queues/c/jobs', { body: { data: 1 } })).status, 409, 'the table is full');
  t.equal((await s.request('DELETE', `/jobs/${pushed.id}`)).status, 200);
  t.notOk(fx.broker.state.queues.has('a'), 'its last job removed, queue a is forgotten');
  t.equal((await s.request('POST', '/queues/b/resume')).status, 200);
  t.notOk(fx.broker.state.queues.has('b'), 'resumed and empty, queue b is forgotten');
  t.same((await s.request('GET', '/queues')).json.queues ?? [], [], 'GET /queues never listed them');
  t.equal((await s.request('POST', '/queues/c/jobs', { body: { data: 1 } })).status, 200);
  t.equal((await s.request('POST', '/queues/d/jobs', { body: { data: 1 } })).status, 200);
  const counts = (await s.request('GET', '/queues/a/counts')).json.counts as Record<string, number>;
  t.ok(Object.keys(counts).length > 0 && Object.values(counts).every((n) => n === 0), 'a forgotten queue counts as empty');
  const restarted = await fx.restart();
  t.teardown(() => restarted.cleanup());
  t.same([...restarted.broker.state.queues.keys()].sort(), ['c', 'd'], 'a replay keeps the same queues');
});

t.test('a-new-worker-past-workersMax-is-refused-and-appends-nothing', async (t) => {
  const { fx, s } = await serving(t, { workersMax: 1 });
  t.equal((await s.request('POST', '/workers', { body: worker('a') })).status, 200);
  const before = fx.log.nextOffset;
  const res = await s.request('POST', '/workers', { body: worker('b') });
  t.equal(res.status, 409);
  t.same(res.json, { ok: false, error: 'Too many workers: at most 1 (remove the ones no longer used)' });
  t.equal(fx.log.nextOffset, before, 'nothing appended');
  t.equal((await s.request('POST', '/workers', { body: worker('a') })).status, 200, 'replacing a registered worker is no new one');
  t.equal((await s.request('DELETE', '/workers/a')).status, 200);
  t.equal((await s.request('POST', '/workers', { body: worker('b') })).status, 200, 'removing one makes room');
});

t.test('the-default-limits-are-the-documented-ones', async (t) => {
  t.equal(queuesMax, 100_000);
  t.equal(workersMax, 1_000);
});
