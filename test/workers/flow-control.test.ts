// Concurrency, start-rate limiter and the dispatcher's own backoff, measured at a real endpoint.
import t from 'tap';
import type { LogRecord } from '../../src/record/types.js';
import { deadPort, sleep, text, until } from './endpoint.js';
import { holdPulls, startStack, startStackWithEndpoint } from './harness.js';

t.test('observed-max-in-flight-equals-concurrency', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    await sleep(30);
    text(res, 200, 'ok');
  });
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { concurrency: 5 } });
  const res = await s.request('POST', '/queues/q/jobs', Array.from({ length: 50 }, (_, i) => ({ data: i })));
  t.equal(res.status, 200);
  await until('50 completed', () => s.broker.counts('q').completed === 50, 10_000);
  t.equal(ep.calls.length, 50, 'one call per job');
  t.equal(ep.openMax(), 5, 'never more than 5 at once, and 5 were reached');
});

t.test('limiter-caps-call-starts-per-window-and-jobs-wait', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'ok'));
  await s.registerWorker({
    queue: 'q',
    endpoint: { url: ep.url, method: 'POST' },
    opts: { concurrency: 20, limiter: { max: 5, duration: 500 } },
  });
  // Warm-up: the limiter counts a start when the call is handed to the socket pool; a first call
  // that must open its connection reaches the endpoint later, so measure on warm sockets.
  await s.request('POST', '/queues/q/jobs', Array.from({ length: 5 }, (_, i) => ({ data: i })));
  await until('warm-up completed', () => s.broker.counts('q').completed === 5, 10_000);
  await sleep(550);
  // Each start is the pull of a job the limiter let through ('pulled' records, stamped as they are
  // decided), measured here rather than at the endpoint, whose arrival times carry the socket
  // hand-off and the event-loop lag of a loaded machine (the endpoint runs in this process).
  const pulls: number[] = [];
  const off = s.broker.onRecords((records: LogRecord[]) => {
    for (const r of records) if (r.body.type === 'pulled') pulls.push(r.timestamp);
  });
  t.teardown(off);
  const started = Date.now();
  await s.request('POST', '/queues/q/jobs', Array.from({ length: 15 }, (_, i) => ({ data: i })));
  await until('15 completed', () => s.broker.counts('q').completed === 20, 10_000);
  const elapsed = Date.now() - started;
  t.ok(elapsed >= 950, `15 jobs at 5 per 500 ms take at least two windows (${elapsed} ms)`);
  t.equal(pulls.length, 15);
  // The limiter's clock is monotonic and the records' Date.now: a window 10 ms shorter than the
  // limiter's absorbs their difference. Without the limiter all 15 are pulled within a few ms.
  let worst = 0;
  for (const at of pulls) worst = Math.max(worst, pulls.filter((x) => x >= at && x < at + 490).length);
  t.equal(worst, 5, 'at most 5 starts in any 490 ms window, and 5 did start together');
  t.equal(s.broker.counts('q').failed, 0, 'held-back jobs waited, none failed');
});

t.test('endpoint-down-follows-job-backoff-and-the-worker-backs-off-without-spinning', async (t) => {
  const port = await deadPort();
  const s = await startStack();
  t.teardown(() => s.close());
  let pulls = 0;
  const off = s.broker.onRecords((records: LogRecord[]) => {
    for (const r of records) if (r.body.type === 'pulled') pulls++;
  });
  t.teardown(off);
  await s.registerWorker({ queue: 'q', endpoint: { url: `http://127.0.0.1:${port}/down`, method: 'POST' }, opts: { concurrency: 10 } });
  const ids = await Promise.all(
    Array.from({ length: 10 }, (_, i) => s.push('q', { data: i, maxAttempts: 100, backoff: 0 })),
  );
  await sleep(1_000);
  // backoff 0 makes every failed job due at once: only the dispatcher's pause (100, 200, 400 ms …)
  // stands between a dead endpoint and a hot loop.
  t.ok(pulls <= 60, `pulls in 1 s with a dead endpoint: ${pulls} (10 jobs, pauses 100→200→400 ms)`);
  t.ok(pulls >= 10, 'but it kept trying');
  const job = s.job(ids[0] ?? '');
  t.match(job.failedReason, /ECONNREFUSED/);
  // Between attempts it waits; sampled while an attempt is in flight it is active. Never failed.
  t.ok(['waiting', 'active'].includes(job.state), `the job is retrying (${job.state}), not failed`);
});

t.test('no-call-starts-or-counts-against-the-limiter-before-the-http-client-is-loaded', async (t) => {
  const { WorkerRunner } = await import('../../src/workers/worker-runner.js');
  const s = await startStack();
  t.teardown(() => s.close());
  for (let i = 0; i < 6; i++) await s.push('u', { data: i });
  // A client whose module takes a while to load, as undici's first import does (about 100 ms).
  let finishLoading: () => void = () => undefined;
  const loading = new Promise<void>((resolve) => (finishLoading = resolve));
  const calls: number[] = [];
  const client = {
    loaded: false,
    load: () => loading,
    call: async () => {
      calls.push(Date.now());
      return { kind: 'answered' as const, status: 200, contentType: 'text/plain', contentEncoding: '', body: 'ok', cutAtBytes: null };
    },
  };
  const config = {
    queue: 'u',
    endpoint: { url: 'http://127.0.0.1:9/', method: 'POST' as const, headers: {}, timeout: 1_000 },
    opts: { concurrency: 5, limiter: { max: 5, duration: 1_000 }, removeOnComplete: null, removeOnFail: null, maxStalledCount: 1 },
  };
  const runner = new WorkerRunner(config, { broker: s.broker, client, logger: () => undefined, now: Date.now });
  t.teardown(async () => void (await runner.stop()));
  runner.wake(Number.POSITIVE_INFINITY);
  await sleep(150);
  t.equal(s.broker.counts('u').active, 0, 'nothing pulled while the client loads');
  t.equal(calls.length, 0, 'no call started');
  const loadedAt = Date.now();
  client.loaded = true;
  finishLoading();
  await until('5 calls', () => calls.length === 5, 5_000);
  await sleep(300);
  t.equal(calls.length, 5, 'the limiter allows 5 starts in the window that begins once the client is loaded');
  await until('the 6th call, a window later', () => calls.length === 6, 5_000);
  t.ok((calls[5] as number) - loadedAt >= 990, `the window is counted from the loaded client's first start (${(calls[5] as number) - loadedAt} ms)`);
});

t.test('adding-a-limiter-while-a-pull-is-on-its-way-neither-throws-nor-loses-the-job', async (t) => {
  // The pull was made without a limiter, so it reserved no slot; the limiter it returns to must
  // not be asked to convert a reservation it never gave (an assertion that threw in a detached
  // promise: an unhandled rejection, which ends a Node 20 process).
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'ok'));
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' } });
  const pulls = holdPulls(s);
  const id = await s.push('q', { data: 1 });
  await until('the pull took the job', () => pulls.held() === 1);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { limiter: { max: 5, duration: 1_000 } } });
  pulls.open();
  await until('completed', () => s.broker.jobState(id) === 'completed');
  const more = await s.push('q', { data: 2 });
  await until('the next job completed', () => s.broker.jobState(more) === 'completed');
  t.equal(ep.calls.length, 2);
});

t.test('a-wall-clock-step-back-does-not-hold-the-limiter-for-its-length', async (t) => {
  // Stubbed before the stack is built, so that whatever clock function the dispatcher keeps sees
  // the step.
  const wallNow = Date.now;
  let stepBackMs = 0;
  Date.now = () => wallNow() - stepBackMs;
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'ok'), {}, () => {
    Date.now = wallNow;
  });
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { concurrency: 5, limiter: { max: 1, duration: 300 } } });
  await s.push('q', { data: 1 });
  await until('the first call', () => ep.calls.length === 1, 5_000);
  stepBackMs = 3_600_000;
  await s.push('q', { data: 2 });
  await until('the second call, one window later', () => ep.calls.length === 2, 3_000);
  t.equal(ep.calls.length, 2);
});

t.test('replacing-a-backed-off-worker-calls-its-new-endpoint-at-once', async (t) => {
  // The back-off measured the old endpoint: a registration fixing its URL must not wait it out.
  const port = await deadPort();
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'ok'));
  let failed = 0;
  const off = s.broker.onRecords((records: LogRecord[]) => {
    for (const r of records) if (r.body.type === 'failed') failed++;
  });
  t.teardown(off);
  await s.registerWorker({ queue: 'q', endpoint: { url: `http://127.0.0.1:${port}/down`, method: 'POST' } });
  const id = await s.push('q', { data: 1, maxAttempts: 100, backoff: 0 });
  // Five unanswered rounds in a row (pauses 100, 200, 400, 800 ms): the next pause is 1.6 s.
  await until('five failed attempts', () => failed >= 5, 5_000);
  const replacedAt = Date.now();
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' } });
  await until('completed', () => s.broker.jobState(id) === 'completed', 5_000);
  const waitedMs = (ep.calls[0]?.atMs ?? 0) - replacedAt;
  t.ok(waitedMs < 500, `the new endpoint was called ${waitedMs} ms after the replace`);
});
