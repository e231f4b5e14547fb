import t from 'tap';
import { startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

t.test('long-poll-wakes-on-push', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const waiting = b.pull('q', { timeoutMs: 5000 }, ctx);
  await new Promise((r) => setTimeout(r, 20));
  const started = Date.now();
  const pushed = await b.push('q', { data: 'x' }, ctx);
  const got = await waiting;
  t.equal(got.ok && got.job?.id, pushed.ok && pushed.id);
  t.ok(Date.now() - started < 1000, 'woken, not timed out');
});

t.test('two-waiters-never-get-the-same-job', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const w1 = b.pull('q', { timeoutMs: 300 }, ctx);
  const w2 = b.pull('q', { timeoutMs: 300 }, ctx);
  await b.push('q', { data: 1 }, ctx);
  const [r1, r2] = await Promise.all([w1, w2]);
  t.ok(r1.ok && r1.job !== null, 'the first waiter gets the job');
  t.same(r2, { ok: true, job: null, token: null }, 'the second times out empty');
});

t.test('long-poll-abort-and-close-resolve-with-no-job', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ac = new AbortController();
  const aborted = b.pull('q', { timeoutMs: 5000, signal: ac.signal }, ctx);
  ac.abort();
  t.same(await aborted, { ok: true, job: null, token: null });
  const closing = b.pull('q', { timeoutMs: 5000 }, ctx);
  await b.close();
  t.same(await closing, { ok: true, job: null, token: null });
});

t.test('pull-timeout-is-bounded', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const r = await f.broker.pull('q', { timeoutMs: 10 ** 9 }, ctx);
  t.same(r, { ok: false, code: 'BAD_REQUEST', error: 'timeout must be at most 60000' });
});

t.test('long-poll-wakes-when-a-dependency-in-another-queue-settles', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  for (const settle of ['ack', 'cancel'] as const) {
    const dep = await b.push('parents', { data: 'dep' }, ctx);
    const child = await b.push('children', { data: settle, dependsOn: [dep.ok ? dep.id : ''] }, ctx);
    t.equal(child.ok && b.jobState(child.id), 'waiting-children');
    const waiting = b.pull('children', { timeoutMs: 5000 }, ctx);
    await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    if (settle === 'ack') {
      const pulled = await b.pull('parents', { timeoutMs: 0 }, ctx);
      t.same(await b.ack(pulled.ok && pulled.job ? pulled.job.id : '', {}, ctx), { ok: true });
    } else {
      t.same(await b.cancel(dep.ok ? dep.id : '', ctx), { ok: true });
    }
    const got = await waiting;
    t.equal(got.ok && got.job?.id, child.ok && child.id, `the child is handed out once its dependency is settled by ${settle}`);
    t.ok(Date.now() - started < 1000, 'woken, not timed out');
  }
});
