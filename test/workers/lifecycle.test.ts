// Registration lifecycle (replace, delete) and the worker settings the broker applies
// (removeOnComplete / removeOnFail retention, maxStalledCount).
import t from 'tap';
import { sleep, startEndpoint, text, until } from './endpoint.js';
import { startStack, startStackWithEndpoint } from './harness.js';

t.test('replacing-a-worker-applies-to-new-calls-only', async (t) => {
  let releaseA = () => {};
  const heldA = new Promise<void>((resolve) => (releaseA = resolve));
  const a = await startEndpoint(async (_c, res) => {
    await heldA;
    text(res, 200, 'from-a');
  });
  const b = await startEndpoint((_c, res) => text(res, 200, 'from-b'));
  const s = await startStack();
  t.teardown(async () => {
    releaseA();
    await s.close();
    await a.close();
    await b.close();
  });
  await s.registerWorker({ queue: 'q', endpoint: { url: a.url, method: 'POST' } });
  const first = await s.push('q', { data: 1 });
  await until('a called', () => a.calls.length === 1);
  await s.registerWorker({ queue: 'q', endpoint: { url: b.url, method: 'POST' }, opts: { concurrency: 2 } });
  const second = await s.push('q', { data: 2 });
  await until('second completed', () => s.broker.jobState(second) === 'completed');
  t.equal(b.calls.length, 1);
  t.equal(s.job(second).result, 'from-b', 'the new endpoint serves new jobs');
  t.equal(s.broker.jobState(first), 'active', 'the call already running on the old endpoint continues');
  releaseA();
  await until('first completed', () => s.broker.jobState(first) === 'completed');
  t.equal(s.job(first).result, 'from-a', 'and completes its job');
  t.equal(a.calls.length, 1);
});

t.test('deleting-a-worker-lets-running-calls-finish-and-starts-none', async (t) => {
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    await held;
    text(res, 200, 'done');
  }, {}, release);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' } });
  const running = await s.push('q', { data: 1 });
  await until('called', () => ep.calls.length === 1);
  const del = await s.request('DELETE', '/workers/q');
  t.equal(del.status, 200);
  t.equal((await s.request('DELETE', '/workers/q')).status, 404, 'a second delete finds none');
  const later = await s.push('q', { data: 2 });
  release();
  await until('running completed', () => s.broker.jobState(running) === 'completed');
  await sleep(200);
  t.equal(ep.calls.length, 1, 'no call after the delete');
  t.equal(s.broker.jobState(later), 'waiting', 'the new job waits for a worker or a pull');
  t.strictSame((await s.request('GET', '/workers')).json.workers, []);
});

t.test('worker-removeOnComplete-count-applies-unless-the-job-has-its-own', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'ok'));
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { removeOnComplete: { count: 3 } } });
  const run = async (body: Record<string, unknown>): Promise<string> => {
    const id = await s.push('q', body);
    await until(`job ${id} done`, () => s.broker.jobState(id) === 'completed' || s.broker.getJob(id) === null);
    await sleep(5);
    return id;
  };
  const own: string[] = [];
  for (let i = 0; i < 5; i++) own.push(await run({ data: i, removeOnComplete: { count: 100 } }));
  t.equal(s.broker.counts('q').completed, 5, 'jobs with their own count 100 are all kept');
  const plain: string[] = [];
  for (let i = 0; i < 2; i++) plain.push(await run({ data: i }));
  t.equal(s.broker.counts('q').completed, 3, 'a job without a setting trims the queue to the worker count 3');
  t.ok(plain.every((id) => s.broker.getJob(id) !== null), 'the newest (plain) jobs are kept');
  t.equal(own.filter((id) => s.broker.getJob(id) !== null).length, 1, 'the oldest finished jobs went first');
  const gone = await run({ data: 'x', removeOnComplete: true });
  t.equal(s.broker.getJob(gone), null, 'removeOnComplete:true on the job removes it at once');
  t.equal(s.broker.counts('q').completed, 3);
});

t.test('worker-removeOnFail-age-drops-old-failures', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 500, 'no'));
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { removeOnFail: { age: 1 } } });
  const old = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('old failed', () => s.broker.jobState(old) === 'failed');
  await sleep(1_100);
  const fresh = await s.push('q', { data: 2, maxAttempts: 1 });
  await until('fresh failed', () => s.broker.jobState(fresh) === 'failed');
  await until('old removed', () => s.broker.getJob(old) === null, 2_000);
  t.equal(s.broker.jobState(fresh), 'failed', 'a failure younger than age is kept');
  const removed = (await s.records()).filter((r) => r.body.type === 'removed');
  t.ok(removed.length >= 1, 'the removal is a record in the log');
});

t.test('worker-maxStalledCount-decides-when-a-stalled-job-fails', async (t) => {
  // A pull with a 50 ms lock that never answers plays a dispatcher that died mid-call; the
  // broker's stall timer then applies the worker's maxStalledCount (the job sets none).
  const s = await startStack();
  t.teardown(() => s.close());
  await s.dispatcher.close();
  await s.registerWorker({ queue: 'q', endpoint: { url: 'http://127.0.0.1:9/unused', method: 'POST' }, opts: { maxStalledCount: 2 } });
  const id = await s.push('q', { data: 1, maxAttempts: 5 });
  for (let stall = 1; stall <= 3; stall++) {
    const pulled = await s.broker.pull('q', { timeoutMs: 1_000, lockMs: 50 }, { actor: null, owner: 'crashed' });
    t.ok(pulled.ok && pulled.job?.id === id, `pull ${stall}`);
    await until(`stall ${stall}`, () => s.job(id).stalledCount === stall, 3_000);
    t.equal(s.broker.jobState(id), stall <= 2 ? 'waiting' : 'failed', `state after stall ${stall}`);
  }
  t.match(s.job(id).failedReason, /stalled more than allowable limit/);
});
