import t from 'tap';
import { idOf, manualClock, pullToken, startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

t.test('exponential-backoff-then-dlq', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { data: 1, maxAttempts: 3, backoff: 1000 }, ctx));
  const delays: number[] = [];
  for (let attempt = 1; attempt <= 3; attempt++) {
    const { token } = await pullToken(b, 'q');
    const before = clock.now();
    t.same(await b.fail(id, { error: `e${attempt}`, token }, ctx), { ok: true });
    const job = b.getJob(id);
    if (attempt < 3) {
      t.equal(job?.state, 'delayed');
      delays.push((job?.runAt ?? 0) - before);
      t.same(await b.pull('q', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null }, 'nothing to pull while delayed');
      clock.advance(delays[delays.length - 1] as number);
      b.runDueTimers();
      t.equal(b.jobState(id), 'waiting');
    } else {
      t.equal(job?.state, 'failed');
      t.equal(job?.failedReason, 'e3');
      t.equal(job?.attempts, 3);
    }
  }
  t.same(delays, [1000, 2000], 'attempt n waits backoff * 2^(n-1)');
  t.same(b.dlq('q', 0, 10).jobs.map((j) => j.id), [id]);
  t.same(await b.dlqRetry('q', id, ctx), { ok: true, retried: 1 });
  t.equal(b.getJob(id)?.attempts, 0);
  t.equal(b.getJob(id)?.failedReason, null, 'a retry clears the last failure, as BullMQ does');
  t.equal(b.jobState(id), 'waiting');
});

t.test('fixed-backoff-waits-the-same-each-time', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { name: 'n', data: 1, opts: { attempts: 3, backoff: { type: 'fixed', delay: 500 } } }, ctx));
  for (let i = 0; i < 2; i++) {
    const { token } = await pullToken(b, 'q');
    await b.fail(id, { token }, ctx);
    t.equal((b.getJob(id)?.runAt ?? 0) - clock.now(), 500);
    clock.advance(500);
    b.runDueTimers();
  }
});

t.test('bullmq-number-backoff-is-fixed-and-the-seed-number-backoff-exponential', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const waitsOf = async (queue: string, input: unknown): Promise<number[]> => {
    const id = await idOf(b.push(queue, input, ctx));
    const waits: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { token } = await pullToken(b, queue);
      await b.fail(id, { token }, ctx);
      const wait = (b.getJob(id)?.runAt ?? 0) - clock.now();
      waits.push(wait);
      clock.advance(wait);
      b.runDueTimers();
    }
    return waits;
  };
  t.same(await waitsOf('bull', { name: 'n', data: 1, opts: { attempts: 4, backoff: 500 } }), [500, 500, 500], 'BullMQ: n means {type: "fixed", delay: n}');
  t.same(b.getJob((await pullToken(b, 'bull')).id)?.backoff, { type: 'fixed', delay: 500 });
  t.same(await waitsOf('seed', { data: 1, maxAttempts: 4, backoff: 500 }), [500, 1000, 2000], 'seed 004: exponential');
});

t.test('stale-ack-after-stall-is-rejected', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 1000 });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { data: 1 }, ctx));
  const first = await pullToken(b, 'q');
  clock.advance(1000);
  b.runDueTimers();
  t.equal(b.jobState(id), 'waiting', 'expired lock → stalled → requeued');
  t.equal(b.getJob(id)?.stalledCount, 1);
  const offset = f.log.nextOffset;
  t.same(await b.ack(id, { token: first.token }, ctx), { ok: false, code: 'LOCK_MISMATCH', error: 'Lock token mismatch' });
  t.same(await b.ack(id, {}, ctx), { ok: false, code: 'NOT_ACTIVE', error: 'Job not found or not active' });
  const second = await pullToken(b, 'q');
  t.same(await b.fail(id, { token: first.token }, ctx), { ok: false, code: 'LOCK_MISMATCH', error: 'Lock token mismatch' });
  t.equal(f.log.nextOffset, offset + 1, 'only the second pull was appended');
  t.same(await b.ack(id, { token: second.token }, ctx), { ok: true });
});

t.test('stall-past-max-stalled-fails-the-job', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false, lockMsDefault: 1000 });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { data: 1 }, ctx));
  for (let i = 0; i < 2; i++) {
    await pullToken(b, 'q');
    clock.advance(1000);
    b.runDueTimers();
  }
  t.equal(b.jobState(id), 'failed');
  t.equal(b.getJob(id)?.failedReason, 'job stalled more than allowable limit');
});

t.test('custom-jobid-push-is-idempotent-and-records-duplicated', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  t.same(await b.push('q', { data: 1, jobId: 'order-7' }, ctx), { ok: true, id: 'order-7' });
  const offset = f.log.nextOffset;
  t.same(await b.push('q', { data: 2, jobId: 'order-7' }, ctx), { ok: true, id: 'order-7' });
  const bodies: unknown[] = [];
  for await (const rec of f.log.read(offset)) bodies.push(rec.body);
  t.same(bodies, [{ type: 'duplicated', queue: 'q', jobId: 'order-7', uniqueKey: '' }]);
  t.same(b.getJob('order-7')?.data, 1, 'the first push is the job');
  t.equal(b.counts('q').waiting, 1);
});

t.test('custom-jobid-of-another-queues-job-is-refused-and-appends-nothing', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('a', { data: 'a', jobId: 'shared' }, ctx);
  const offset = f.log.nextOffset;
  const refused = { ok: false, code: 'CONFLICT', error: 'jobId "shared" already names a job of queue "a"' };
  t.same(await b.push('b', { data: 'b', jobId: 'shared' }, ctx), refused);
  const item = { ...refused, error: 'jobs[1].jobId "shared" already names a job of queue "a"' };
  t.same(await b.pushBulk('b', [{ data: 1 }, { data: 'b', jobId: 'shared' }], ctx), item, 'a bulk push is all-or-nothing, naming the item');
  const bull = { ...refused, error: 'opts.jobId "shared" already names a job of queue "a"' };
  t.same(await b.push('b', { name: 'n', data: 'b', opts: { jobId: 'shared' } }, ctx), bull, 'in BullMQ opts');
  t.equal(f.log.nextOffset, offset);
  t.equal(b.counts('b').waiting, 0);
  t.same(b.getJob('shared')?.data, 'a');
});

t.test('unique-key-push-returns-existing-id-and-records-duplicated', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const id = await idOf(b.push('q', { data: 1, uniqueKey: 'k' }, ctx));
  const offset = f.log.nextOffset;
  t.same(await b.push('q', { data: 2, uniqueKey: 'k' }, ctx), { ok: true, id });
  t.equal(f.log.nextOffset, offset + 1);
  const types: string[] = [];
  for await (const rec of f.log.read(offset)) types.push(rec.body.type);
  t.same(types, ['duplicated']);
  const { token } = await pullToken(b, 'q');
  await b.ack(id, { token }, ctx);
  const other = await idOf(b.push('q', { data: 3, uniqueKey: 'k' }, ctx));
  t.not(other, id, 'a completed holder frees the key');
});

t.test('priority-fifo-lifo-order-and-bullmq-priority', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const a = await idOf(b.push('q', { data: 'a' }, ctx));
  const hi = await idOf(b.push('q', { data: 'hi', priority: 10 }, ctx));
  const c = await idOf(b.push('q', { data: 'c' }, ctx));
  const l = await idOf(b.push('q', { data: 'l', lifo: true }, ctx));
  const bull1 = await idOf(b.push('q', { name: 'x', data: 'b1', opts: { priority: 1 } }, ctx));
  const bull5 = await idOf(b.push('q', { name: 'x', data: 'b5', opts: { priority: 5 } }, ctx));
  const order: string[] = [];
  for (let i = 0; i < 6; i++) order.push((await pullToken(b, 'q')).id);
  t.same(order, [hi, l, a, c, bull1, bull5]);
});

t.test('paused-queue-pull-returns-no-job', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  await b.push('q', { data: 1 }, ctx);
  await b.pause('q', ctx);
  t.ok(b.isPaused('q'));
  t.same(b.counts('q').paused, 1);
  t.same(await b.pull('q', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null });
  await b.resume('q', ctx);
  t.ok((await b.pull('q', { timeoutMs: 0 }, ctx)).ok);
  t.equal(b.counts('q').active, 1);
});

t.test('depends-on-waits-for-children', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const dep = await idOf(b.push('q', { data: 1 }, ctx));
  const parent = await idOf(b.push('q', { data: 2, dependsOn: [dep, 'never-existed'] }, ctx));
  t.equal(b.jobState(parent), 'waiting-children', 'unknown ids count as satisfied; the live one is pending');
  const { token } = await pullToken(b, 'q');
  t.same(await b.pull('q', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null });
  await b.ack(dep, { token }, ctx);
  t.equal(b.jobState(parent), 'waiting');
});

t.test('remove-on-complete-and-count-retention', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const gone = await idOf(b.push('q', { data: 0, removeOnComplete: true }, ctx));
  await b.ack(gone, { token: (await pullToken(b, 'q')).token }, ctx);
  t.equal(b.getJob(gone), null);
  const ids: string[] = [];
  for (let i = 0; i < 4; i++) {
    const id = await idOf(b.push('q', { name: 'n', data: i, opts: { removeOnComplete: 2 } }, ctx));
    ids.push(id);
    await b.ack(id, { token: (await pullToken(b, 'q')).token }, ctx);
  }
  t.same(b.listJobs('q', ['completed'], 0, 10).jobs.map((j) => j.id), [ids[3], ids[2]], 'keeps the newest 2');
});

t.test('cancel-progress-logs-promote-priority', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const d = await idOf(b.push('q', { data: 1, delay: 60_000 }, ctx));
  t.equal(b.jobState(d), 'delayed');
  t.same(await b.changePriority(d, 'x', ctx), { ok: false, code: 'BAD_REQUEST', error: 'priority must be an integer' });
  t.same(await b.changePriority(d, 4, ctx), { ok: true });
  t.same(await b.progress(d, { progress: 101 }, ctx), { ok: false, code: 'BAD_REQUEST', error: 'progress must be a number between 0 and 100' });
  t.same(await b.progress(d, { progress: 50, message: 'half' }, ctx), { ok: true });
  await b.addLog(d, 'one', ctx);
  await b.addLog(d, 'two', ctx);
  t.same(b.getLogs(d, 1, 5), { ok: true, logs: ['two'], count: 2 });
  t.same(await b.promote(d, ctx), { ok: true });
  t.same(await b.promote(d, ctx), { ok: false, code: 'CONFLICT', error: 'Job is not delayed' });
  const pulled = await pullToken(b, 'q');
  t.equal(pulled.id, d);
  t.equal(b.getJob(d)?.priority, 4);
  t.same(await b.cancel(d, ctx), { ok: true });
  t.same(await b.cancel(d, ctx), { ok: false, code: 'NOT_FOUND', error: 'Job not found' });
  t.same(b.jobResult(d), { ok: false, code: 'NOT_FOUND', error: 'Job not found' });
});

t.test('release-owner-requeues-at-front-without-an-attempt', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const a = await idOf(b.push('q', { data: 'a' }, ctx));
  const c = await idOf(b.push('q', { data: 'c' }, ctx));
  const r = await b.pull('q', { timeoutMs: 0 }, { actor: null, owner: 'ws-1' });
  t.equal(r.ok && r.job?.id, a);
  await b.releaseOwner('ws-1', 'socket closed');
  t.equal(b.jobState(a), 'waiting');
  t.equal(b.getJob(a)?.attempts, 0);
  t.equal((await pullToken(b, 'q')).id, a);
  t.equal((await pullToken(b, 'q')).id, c);
});

t.test('bulk-push-with-a-repeat-that-never-runs-appends-nothing', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const offset = f.log.nextOffset;
  const never = { data: 2, repeat: { pattern: '0 0 30 2 *' } }; // February 30th
  t.same(await b.pushBulk('q', [{ data: 1 }, never], ctx), { ok: false, code: 'BAD_REQUEST', error: 'jobs[1].repeat.pattern has no future run' });
  t.equal(f.log.nextOffset, offset);
});

t.test('a-dependent-never-runs-after-its-dependency-failed-and-was-removed', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  // removeOnFail: the failed dependency is removed at once; a DLQ purge removes one kept there.
  const charge = await idOf(b.push('orders', { name: 'charge', data: 1, maxAttempts: 1, removeOnFail: true }, ctx));
  const ship = await idOf(b.push('orders', { name: 'ship', data: 2, dependsOn: [charge] }, ctx));
  const kept = await idOf(b.push('orders', { name: 'charge', data: 3, maxAttempts: 1 }, ctx));
  const ship2 = await idOf(b.push('orders', { name: 'ship', data: 4, dependsOn: [kept] }, ctx));
  for (const id of [charge, kept]) {
    const pulled = await pullToken(b, 'orders');
    t.equal(pulled.id, id);
    t.same(await b.fail(id, { token: pulled.token, error: 'card declined' }, ctx), { ok: true });
  }
  t.equal(b.jobState(charge), null, 'removed on fail');
  t.same(await b.dlqPurge('orders', ctx), { ok: true, purged: 1 });
  t.equal(b.jobState(ship), 'waiting-children');
  t.equal(b.jobState(ship2), 'waiting-children');
  t.same(await b.pull('orders', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null }, 'nothing runs');
  const restarted = await f.restart();
  t.teardown(() => restarted.cleanup());
  t.equal(restarted.broker.jobState(ship), 'waiting-children', 'replay agrees');
});

t.test('a-dependency-that-expired-unrun-never-sets-its-dependents-free', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now, start: false });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  // Nobody charged the card within its ttl: the charge never ran, so the shipment must not run
  // either (seed 004: dependsOn names jobs "that must complete first").
  const charge = await idOf(b.push('orders', { name: 'charge', data: 1, ttl: 1000 }, ctx));
  const ship = await idOf(b.push('orders', { name: 'ship', data: 2, dependsOn: [charge] }, ctx));
  clock.advance(1000);
  b.runDueTimers();
  t.equal(b.jobState(charge), null, 'expired and removed');
  t.equal(b.jobState(ship), 'waiting-children');
  t.same(await b.pull('orders', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null }, 'nothing runs');
  // Expired at a pull's look at the queue head, the same.
  const charge2 = await idOf(b.push('orders', { name: 'charge', data: 3, ttl: 1000 }, ctx));
  const ship2 = await idOf(b.push('orders', { name: 'ship', data: 4, dependsOn: [charge2] }, ctx));
  clock.advance(1000);
  t.same(await b.pull('orders', { timeoutMs: 0 }, ctx), { ok: true, job: null, token: null });
  t.equal(b.jobState(charge2), null);
  t.equal(b.jobState(ship2), 'waiting-children');
  const restarted = await f.restart();
  t.teardown(() => restarted.cleanup());
  t.equal(restarted.broker.jobState(ship), 'waiting-children', 'replay agrees');
  t.equal(restarted.broker.jobState(ship2), 'waiting-children');
});
