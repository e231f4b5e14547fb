// Registration lifecycle (replace, delete) and the worker settings the broker applies
// (removeOnComplete / removeOnFail retention, maxStalledCount).
import t from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../../src/broker/digest.js';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { createState } from '../../src/state/index.js';
import { replayLog } from '../fixtures/broker.js';
import { sleep, startEndpoint, text, until, type Handler } from './endpoint.js';
import { holdPulls, startStack, startStackWithEndpoint, type Stack } from './harness.js';

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

t.test('delete-then-post-counts-the-removed-workers-running-calls-against-the-new-concurrency', async (t) => {
  let release = () => {};
  let held = new Promise<void>((resolve) => (release = resolve));
  let running = 0;
  let most = 0;
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    running++;
    most = Math.max(most, running);
    await held;
    running--;
    text(res, 200, 'done');
  }, {}, () => release());
  const worker = { queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { concurrency: 2 } };
  await s.registerWorker(worker);
  const ids: string[] = [];
  for (let i = 0; i < 6; i++) ids.push(await s.push('q', { data: i }));
  await until('two calls running', () => ep.calls.length === 2);
  t.equal((await s.request('DELETE', '/workers/q')).status, 200);
  await s.registerWorker(worker);
  await sleep(200);
  t.equal(ep.calls.length, 2, 'the new worker starts no call while the removed one holds both slots');
  // Free the slots: the new worker takes them, two at a time, until every job is done.
  const done = (): number => ids.filter((id) => s.broker.jobState(id) === 'completed').length;
  while (done() < ids.length) {
    const releaseNow = release;
    held = new Promise<void>((resolve) => (release = resolve));
    releaseNow();
    const before = ep.calls.length;
    await until('the next calls', () => done() === ids.length || ep.calls.length > before);
  }
  release();
  t.equal(most, 2, 'never more than two calls at once across the delete and the post');
  t.equal(ep.calls.length, 6, 'each job called once');
});

t.test('delete-then-post-keeps-the-limiters-start-history', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'done'));
  const worker = { queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { limiter: { max: 2, duration: 60_000 } } };
  await s.registerWorker(worker);
  for (let i = 0; i < 4; i++) await s.push('q', { data: i });
  await until('two calls', () => ep.calls.length === 2);
  t.equal((await s.request('DELETE', '/workers/q')).status, 200);
  await s.registerWorker(worker);
  await sleep(300);
  t.equal(ep.calls.length, 2, 'no start past the limit of the window the removed worker began');
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

t.test('a-job-removeOnComplete-false-is-kept-whatever-the-worker-retention-across-a-snapshot-restart', async (t) => {
  // BullMQ: a job's own removeOnComplete/removeOnFail, when given, wins over the worker's, and
  // `false` means keep. Unset (absent) is what leaves the job to the worker's retention.
  const ep = await startEndpoint((call, res) => text(res, (call.body as { job: { data: { fail?: boolean } } }).job.data.fail === true ? 500 : 200, 'done'));
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-keep-false-'));
  let s = await startStack({ dir });
  t.teardown(async () => {
    await s.close();
    await ep.close();
    await rm(dir, { recursive: true, force: true });
  });
  // Waiting when the snapshot is taken (a cold row after the restart), its policy on the row's options.
  const restored = await s.push('q', { data: {}, removeOnComplete: false });
  await writeStateSnapshot(join(dir, 'snapshots'), s.broker.state);
  await s.close();
  s = await startStack({ dir });

  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { removeOnComplete: { count: 1 }, removeOnFail: { count: 1 } } });
  await until('restored job completed', () => s.broker.jobState(restored) === 'completed');
  const kept = [restored];
  kept.push(await s.push('q', { data: {}, removeOnComplete: false }));
  kept.push(await s.push('q', { name: 'bull', data: {}, opts: { removeOnComplete: false } }));
  kept.push(await s.push('q', { data: { fail: true }, maxAttempts: 1, removeOnFail: false }));
  kept.push(await s.push('q', { name: 'bull', data: { fail: true }, opts: { attempts: 1, removeOnFail: false } }));
  await until('all finished or removed', () => kept.every((id) => ['completed', 'failed', null].includes(s.broker.jobState(id))));
  await sleep(20);
  t.same(s.broker.counts('q'), { ...s.broker.counts('q'), completed: 3, failed: 2 }, 'the worker count of 1 removed none of them');
  for (const id of kept) {
    const got = await s.request('GET', `/jobs/${id}`);
    t.match(got.json.job, { removeOnComplete: false, removeOnFail: false }, `GET /jobs/${id} still shows false`);
  }

  // A job that sets nothing is the worker's to trim: the queue goes down to the worker's count.
  const plain = await s.push('q', { data: {} });
  await until('plain job trimmed the completed jobs', () => s.broker.counts('q').completed === 1);
  t.equal(s.broker.jobState(plain), 'completed', 'the newest is the one kept');

  // The replay reads durable records only: wait until the trim's records are synced too.
  await s.records();
  const live = digestOf(s.broker.state);
  t.equal(digestOf(await replayLog(s.log, 0, createState())), live, 'full replay == snapshot + tail == live');
});

/** Holds the first call of each job for `holdMs` (unless the broker's side gives up on it first),
 *  answers later calls at once, and tracks how many calls of one job were ever open at once. */
function firstCallHeld(holdMs: number): { handler: Handler; openMaxPerJob(): number } {
  const open = new Map<string, number>();
  const seen = new Set<string>();
  let worst = 0;
  const handler: Handler = async (c, res) => {
    const id = c.body.job.id;
    open.set(id, (open.get(id) ?? 0) + 1);
    worst = Math.max(worst, open.get(id) ?? 0);
    res.on('close', () => open.set(id, (open.get(id) ?? 1) - 1));
    const first = !seen.has(id);
    seen.add(id);
    const deadline = Date.now() + (first ? holdMs : 0);
    while (!res.destroyed && Date.now() < deadline) await sleep(10);
    if (!res.destroyed) text(res, 200, first ? 'first' : 'again');
  };
  return { handler, openMaxPerJob: () => worst };
}

const stallsOf = async (s: Stack, id: string): Promise<number> =>
  (await s.records()).filter((r) => r.body.type === 'stalled' && r.body.jobId === id).length;

t.test('a-pull-on-its-way-during-a-replace-is-called-within-the-lock-it-got', async (t) => {
  // The pull locks the job for the old timeout (300 ms + margin); the replacement allows 5 s. A
  // call made with the new timeout could outlive that lock: the job would stall and be called
  // again while the first call still runs.
  const held = firstCallHeld(3_000);
  const { s, ep } = await startStackWithEndpoint(t, held.handler);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 300 } });
  const pulls = holdPulls(s);
  const id = await s.push('q', { data: 1, backoff: 50 });
  await until('the pull took the job', () => pulls.held() === 1);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 5_000 }, opts: { concurrency: 2 } });
  pulls.open();
  await until('completed', () => s.broker.jobState(id) === 'completed', 8_000);
  t.equal(held.openMaxPerJob(), 1, 'never two calls of the job at once');
  t.equal(await stallsOf(s, id), 0, 'the job never stalled');
});

t.test('a-pull-on-its-way-during-delete-then-post-goes-to-the-new-worker-under-a-lock-of-its-own', async (t) => {
  // DELETE then POST (a change of settings done the other way): the old worker's late pull holds
  // the job under the old lock (300 ms + margin); the new worker must not call it under that lock.
  const held = firstCallHeld(3_000);
  const { s, ep } = await startStackWithEndpoint(t, held.handler);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 300 } });
  const pulls = holdPulls(s);
  const id = await s.push('q', { data: 1 });
  await until('the pull took the job', () => pulls.held() === 1);
  t.equal((await s.request('DELETE', '/workers/q')).status, 200);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 5_000 }, opts: { concurrency: 2 } });
  pulls.open();
  await until('completed', () => s.broker.jobState(id) === 'completed', 8_000);
  t.equal(held.openMaxPerJob(), 1, 'never two calls of the job at once');
  t.equal(await stallsOf(s, id), 0, 'the job never stalled');
  t.equal(s.job(id).result, 'first', 'the one call answered');
});

t.test('a-removed-workers-late-pull-is-released-without-taking-its-successors-running-jobs', async (t) => {
  // Worker A is deleted with a pull on its way; B is registered, starts a call, and is deleted
  // while that call runs. A's late pull goes back to the queue; B's running job must stay B's.
  let releaseB = () => {};
  const heldB = new Promise<void>((resolve) => (releaseB = resolve));
  const { s, ep } = await startStackWithEndpoint(t, async (c, res) => {
    if (c.body.job.data === 'b') await heldB;
    text(res, 200, `done ${String(c.body.job.data)}`);
  }, {}, () => releaseB());
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' } });
  const pulls = holdPulls(s);
  const late = await s.push('q', { data: 'a' });
  await until('A took its job', () => pulls.held() === 1);
  t.equal((await s.request('DELETE', '/workers/q')).status, 200);
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' } });
  const running = await s.push('q', { data: 'b' });
  await until('B called', () => ep.calls.some((c) => c.body.job.data === 'b'));
  t.equal((await s.request('DELETE', '/workers/q')).status, 200);
  pulls.open();
  await until("A's late pull released", () => s.broker.jobState(late) === 'waiting');
  releaseB();
  await until('B answered', () => s.broker.jobState(running) !== 'active');
  t.equal(s.broker.jobState(running), 'completed', "B's answer completes B's job");
  t.notOk(s.lines.some((l) => l.includes('dropped (late answer)')), 'no answer was dropped');
});

t.test('a-shutdown-out-of-patience-abandons-running-calls-and-releases-their-jobs-without-spending-an-attempt', async (t) => {
  // An endpoint that answers one call at once and holds the other until the test ends.
  const ep = await startEndpoint(async (call, res) => {
    if ((call.body.job.data as { hold?: boolean }).hold !== true) return text(res, 200, 'done');
    await new Promise((resolve) => res.once('close', resolve));
  });
  const s = await startStack();
  t.teardown(async () => {
    await s.close();
    await ep.close();
  });
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 60_000 }, opts: { concurrency: 2 } });
  const quick = await s.push('q', { data: {} });
  const held = await s.push('q', { data: { hold: true }, maxAttempts: 3 });
  await until('quick completed', () => s.broker.jobState(quick) === 'completed');
  await until('held called', () => ep.calls.some((c) => c.body.job.id === held));

  const started = Date.now();
  await s.dispatcher.close(300);
  t.ok(Date.now() - started < 5_000, `close waited about its grace, not the call's 60 s timeout (${Date.now() - started} ms)`);
  t.equal(s.broker.jobState(held), 'waiting', 'the abandoned call is released back to its queue');
  const job = s.job(held);
  t.equal(job.attempts, 0, 'no attempt spent');
  t.equal(job.stalledCount, 0, 'not a stall');
  const released = (await s.records()).filter((r) => r.body.type === 'released');
  t.match(
    released.map((r) => r.body),
    [{ jobId: held, reason: 'server shutting down' }],
    'one released record, saying why',
  );
  t.match(s.lines.join('\n'), /shutdown: 1 push-worker call\(s\) still running after 300 ms; abandoned, their jobs released/);
});

t.test('many-running-calls-of-one-worker-raise-no-listener-leak-warning', async (t) => {
  // Every call listens on the runner's one abandon signal: a concurrency past Node's default of 10
  // listeners must not print "Possible EventTarget memory leak detected".
  const warnings: string[] = [];
  const onWarning = (warning: Error): void => {
    warnings.push(`${warning.name}: ${warning.message}`);
  };
  process.on('warning', onWarning);
  const ep = await startEndpoint(async (_call, res) => {
    await new Promise((resolve) => res.once('close', resolve));
  });
  const s = await startStack();
  t.teardown(async () => {
    process.off('warning', onWarning);
    await s.close();
    await ep.close();
  });
  const calls = 16;
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 60_000 }, opts: { concurrency: calls } });
  for (let i = 0; i < calls; i++) await s.push('q', { data: { i } });
  await until('every call running', () => ep.calls.length === calls);
  await sleep(50); // a warning is emitted on the next tick
  await s.dispatcher.close(100);
  t.same(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
});
