// The queue table and the push workers are bounded (queuesMax, workersMax): a request that would
// add one more is refused with 409 and appends nothing; the ones already there keep working, and
// obliterating a queue or removing a worker makes room again. A queue with no job that is not
// paused keeps only its name (idle) and still counts, as GET /queues lists it, until obliterated.

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

t.test('an-emptied-queue-keeps-only-its-name-counts-against-queuesMax-and-obliterate-frees-it', async (t) => {
  const fx = await startBroker({ queuesMax: 2 });
  const s = await startServer({ broker: fx.broker });
  t.teardown(async () => {
    await s.close();
    await fx.cleanup();
  });
  const { json: pushed } = await s.request('POST', '/queues/a/jobs', { body: { data: 1 } });
  t.equal((await s.request('POST', '/queues/b/pause')).status, 200);
  t.equal((await s.request('DELETE', `/jobs/${pushed.id}`)).status, 200);
  t.notOk(fx.broker.state.queues.has('a'), 'its last job removed, queue a gives up its containers');
  t.equal((await s.request('POST', '/queues/b/resume')).status, 200);
  t.notOk(fx.broker.state.queues.has('b'), 'resumed and empty, so does queue b');
  t.same([...fx.broker.state.idleQueues].sort(), ['a', 'b'], 'both are kept by name');
  const listed = (await s.request('GET', '/queues')).json.queues as Array<{ name: string; counts: Record<string, number> }>;
  t.same(listed.map((q) => q.name), ['a', 'b'], 'GET /queues lists them');
  t.ok(listed.every((q) => Object.values(q.counts).every((n) => n === 0)), 'with zero counts');
  const before = fx.log.nextOffset;
  t.equal((await s.request('POST', '/queues/c/jobs', { body: { data: 1 } })).status, 409, 'idle queues count against queuesMax');
  t.equal(fx.log.nextOffset, before, 'nothing appended');
  t.equal((await s.request('POST', '/queues/a/jobs', { body: { data: 2 } })).status, 200, 'an idle queue takes pushes');
  t.ok(fx.broker.state.queues.has('a') && !fx.broker.state.idleQueues.has('a'), 'and has its containers again');
  t.equal((await s.request('POST', '/queues/b/obliterate')).status, 200);
  t.notOk(fx.broker.state.idleQueues.has('b'), 'obliterating an idle queue forgets its name');
  t.equal((await s.request('POST', '/queues/c/jobs', { body: { data: 1 } })).status, 200, 'and frees its place');
  t.equal((await s.request('POST', '/queues/never/resume')).status, 200);
  t.equal((await s.request('POST', '/queues/never/drain')).status, 200);
  t.notOk(fx.broker.state.idleQueues.has('never'), 'a resume or drain of an unknown name adds no queue');
  const restarted = await fx.restart();
  t.teardown(() => restarted.cleanup());
  t.same([...restarted.broker.state.queues.keys()].sort(), ['a', 'c'], 'a replay keeps the same queues');
  t.same([...restarted.broker.state.idleQueues], [], 'and the same idle ones');
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
