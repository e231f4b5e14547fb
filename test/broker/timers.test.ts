import t from 'tap';
import { manualClock, startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

t.test('delayed-job-is-promoted-by-timer', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, delay: 5000 }, ctx);
  const id = r.ok ? r.id : '';
  clock.advance(4999);
  b.runDueTimers();
  t.equal(b.jobState(id), 'delayed');
  clock.advance(1);
  b.runDueTimers();
  t.equal(b.jobState(id), 'waiting');
});

t.test('ttl-expired-job-is-never-pulled', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, ttl: 1000 }, ctx);
  const keep = await b.push('q', { data: 2 }, ctx);
  clock.advance(1000);
  const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
  t.equal(pulled.ok && pulled.job?.id, keep.ok && keep.id, 'the expired head is skipped');
  t.equal(b.getJob(r.ok ? r.id : ''), null, 'and removed (reason expired)');
  const r2 = await b.push('q', { data: 3, ttl: 500 }, ctx);
  clock.advance(500);
  b.runDueTimers();
  t.equal(b.getJob(r2.ok ? r2.id : ''), null, 'the timer expires it too');
});

t.test('processing-timeout-fails-the-attempt', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, timeout: 2000, maxAttempts: 1 }, ctx);
  const id = r.ok ? r.id : '';
  await b.pull('q', { timeoutMs: 0 }, ctx);
  clock.advance(2000);
  b.runDueTimers();
  t.equal(b.jobState(id), 'failed');
  t.equal(b.getJob(id)?.failedReason, 'Job timed out after 2000 ms');
});

t.test('repeat-every-schedules-the-next-instance-until-the-limit', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('q', { data: 'tick', repeat: { every: 1000, limit: 3 } }, ctx);
  const seen: number[] = [];
  for (let i = 0; i < 4; i++) {
    const p = await b.pull('q', { timeoutMs: 0 }, ctx);
    if (!p.ok || p.job === null) break;
    seen.push(p.job.repeat?.count ?? -1);
    await b.ack(p.job.id, { token: p.token as string }, ctx);
    clock.advance(1000);
    b.runDueTimers();
  }
  t.same(seen, [0, 1, 2], 'three runs, then the limit stops it');
});

t.test('repeat-pattern-runs-at-the-next-cron-time', async (t) => {
  const clock = manualClock(Date.UTC(2030, 0, 1, 0, 0, 0, 500));
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, repeat: { pattern: '*/10 * * * * *' } }, ctx);
  t.equal(b.getJob(r.ok ? r.id : '')?.runAt, Date.UTC(2030, 0, 1, 0, 0, 10));
  t.same(await b.push('q', { data: 1, repeat: { pattern: 'nope' } }, ctx).then((x) => x.ok), false);
});

t.test('restart-turns-expired-locks-into-stalls', async (t) => {
  const clock = manualClock();
  let f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 1000 });
  t.teardown(() => f.cleanup());
  const r = await f.broker.push('q', { data: 1 }, ctx);
  await f.broker.pull('q', { timeoutMs: 0 }, ctx);
  f = await f.restart();
  t.equal(f.broker.jobState(r.ok ? r.id : ''), 'active', 'the lock survives the restart in the log');
  clock.advance(1000);
  f.broker.runDueTimers();
  t.equal(f.broker.jobState(r.ok ? r.id : ''), 'waiting');
  t.equal(f.broker.getJob(r.ok ? r.id : '')?.stalledCount, 1);
});

t.test('real-timers-promote-a-delayed-job', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const r = await b.push('q', { data: 1, delay: 30 }, ctx);
  const p = await b.pull('q', { timeoutMs: 2000 }, ctx);
  t.equal(p.ok && p.job?.id, r.ok && r.id, 'a long-poll is woken by the timer promotion');
});
