// Push workers end to end: a real broker + API + dispatcher calling real local endpoints.
import t from 'tap';
import { gzipSync } from 'node:zlib';
import { FailOutcome } from '../../src/record/types.js';
import { deadPort, json, sleep, startEndpoint, text, until } from './endpoint.js';
import { startStack, startStackWithEndpoint } from './harness.js';

const worker = (queue: string, url: string, extra: Record<string, unknown> = {}, opts: Record<string, unknown> = {}) => ({
  queue,
  endpoint: { url, method: 'POST', ...extra },
  opts,
});

t.test('json-answer-completes-the-job-with-the-parsed-result', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (c, res) => json(res, 200, { doubled: (c.body.job.data as { n: number }).n * 2 }));
  await s.registerWorker(worker('q', ep.url, { headers: { 'x-secret': 's3' } }));
  const id = await s.push('q', { data: { n: 21 } });
  await until('completed', () => s.broker.jobState(id) === 'completed');
  t.strictSame(s.job(id).result, { doubled: 42 });
  const call = ep.calls[0];
  t.equal(call?.headers['x-secret'], 's3', 'registered headers are sent');
  t.equal(call?.headers['content-type'], 'application/json');
  t.equal(call?.body.job.id, id, 'body carries the job view');
  t.equal(typeof call?.body.token, 'string');
  t.ok((call?.body.token ?? '').length > 0, 'and its lock token');
});

t.test('text-answer-completes-the-job-with-the-text', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'all done'));
  await s.registerWorker(worker('q', ep.url, { method: 'put' }));
  const id = await s.push('q', { data: 1 });
  await until('completed', () => s.broker.jobState(id) === 'completed');
  t.equal(s.job(id).result, 'all done');
  t.equal(ep.calls[0]?.method, 'PUT');
});

t.test('a-result-too-large-to-keep-fails-the-attempt-at-once', async (t) => {
  // 600,000 bytes of text: within what the client reads, over what a job's result may be.
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'r'.repeat(600_000)));
  await s.registerWorker(worker('q', ep.url));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(id) === 'failed');
  t.equal(s.job(id).failedReason, `result must be at most 524288 bytes as JSON (answer of POST ${ep.url})`);
  t.equal(ep.calls.length, 1, 'called once: the job did not wait out its lock to be called again');
});

t.test('a-2xx-body-over-the-read-limit-fails-and-a-non-2xx-keeps-its-status', async (t) => {
  let status = 200;
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, status, 'b'.repeat(1_100_000)));
  await s.registerWorker(worker('q', ep.url));
  const ok = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(ok) === 'failed');
  t.equal(s.job(ok).failedReason, `response body over 1048576 bytes in HTTP 200 from POST ${ep.url}`);
  status = 503;
  const refused = await s.push('q', { data: 2, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(refused) === 'failed');
  t.equal(s.job(refused).failedReason, `HTTP 503 from POST ${ep.url}: ${'b'.repeat(200)}`);
});

t.test('non-2xx-fails-with-status-and-body-start-then-retries-with-backoff-then-dlq', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => json(res, 500, { boom: 1 }));
  await s.registerWorker(worker('q', ep.url));
  const id = await s.push('q', { data: 1, maxAttempts: 3, backoff: 100 });
  await until('failed for good', () => s.broker.jobState(id) === 'failed');
  const job = s.job(id);
  t.equal(job.failedReason, `HTTP 500 from POST ${ep.url}: {"boom":1}`);
  t.equal(job.attempts, 3);
  t.equal(ep.calls.length, 3, 'one call per attempt');
  const gaps = [1, 2].map((i) => (ep.calls[i]?.atMs ?? 0) - (ep.calls[i - 1]?.atMs ?? 0));
  t.ok((gaps[0] ?? 0) >= 90, `first retry after backoff 100 ms (gap ${gaps[0]})`);
  t.ok((gaps[1] ?? 0) >= 190, `second retry after exponential 200 ms (gap ${gaps[1]})`);
  t.equal(s.broker.dlq('q', 0, 10).count, 1, 'the job is in the DLQ');
  await sleep(20);
  const failed = (await s.records()).filter((r) => r.body.type === 'failed');
  t.strictSame(
    failed.map((r) => (r.body.type === 'failed' ? r.body.outcome : -1)),
    [FailOutcome.RETRY, FailOutcome.RETRY, FailOutcome.DEAD],
    'the history shows two retries then dead',
  );
});

t.test('connection-refused-fails-with-the-socket-error', async (t) => {
  const port = await deadPort();
  const s = await startStack();
  t.teardown(() => s.close());
  const url = `http://127.0.0.1:${port}/x`;
  await s.registerWorker(worker('q', url));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(id) === 'failed');
  t.equal(s.job(id).failedReason, `connect ECONNREFUSED 127.0.0.1:${port} (POST ${url})`);
});

t.test('timeout-fails-the-attempt-and-the-late-answer-is-ignored', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    await sleep(400);
    if (!res.destroyed) text(res, 200, 'too late');
  });
  await s.registerWorker(worker('q', ep.url, { timeout: 150 }));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(id) === 'failed');
  t.equal(s.job(id).failedReason, `timeout after 150 ms (POST ${ep.url})`);
  t.equal(s.job(id).result, null);
});

t.test('slow-body-counts-against-the-timeout', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"part":');
    await sleep(600);
    if (!res.destroyed) res.end('1}');
  });
  await s.registerWorker(worker('q', ep.url, { timeout: 200 }));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(id) === 'failed');
  t.equal(s.job(id).failedReason, `timeout after 200 ms (POST ${ep.url})`);
});

t.test('invalid-json-from-a-2xx-fails-the-attempt', async (t) => {
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('not json');
  });
  await s.registerWorker(worker('q', ep.url));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(id) === 'failed');
  t.equal(s.job(id).failedReason, `invalid JSON in HTTP 200 from POST ${ep.url}: not json`);
});

t.test('answer-for-a-job-cancelled-meanwhile-is-dropped', async (t) => {
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    await held;
    text(res, 200, 'done');
  }, {}, release);
  await s.registerWorker(worker('q', ep.url));
  const id = await s.push('q', { data: 1 });
  await until('called', () => ep.calls.length === 1);
  const cancelled = await s.request('DELETE', `/jobs/${id}`);
  t.equal(cancelled.status, 200);
  release();
  await until('dropped line', () => s.lines.some((l) => l.includes(`ack of job ${id} dropped (late answer)`)));
  t.equal(s.broker.getJob(id), null, 'the cancelled job stays gone');
  const completed = (await s.records()).filter((r) => r.body.type === 'completed');
  t.equal(completed.length, 0, 'no completion was written');
});

t.test('progress-and-logs-with-the-job-token-over-http', async (t) => {
  const s = await startStack({ authToken: 'admin-token' });
  let seen: { token: string; id: string } | null = null;
  const answers: Record<string, number> = {};
  const ep = await startEndpoint(async (c, res) => {
    const auth = { authorization: `Bearer ${c.body.token}` };
    const id = c.body.job.id;
    seen = { token: c.body.token, id };
    answers.progress = (await s.request('POST', `/queues/q/jobs/${id}/progress`, 50, auth)).status;
    answers.log = (await s.request('POST', `/jobs/${id}/logs`, { message: 'half way' }, auth)).status;
    answers.wrong = (await s.request('POST', `/jobs/${id}/progress`, 60, { authorization: 'Bearer nope' })).status;
    json(res, 200, 'job-result');
  });
  t.teardown(async () => {
    await s.close();
    await ep.close();
  });
  await s.registerWorker(worker('q', ep.url));
  const id = await s.push('q', { data: 1 });
  await until('completed', () => s.broker.jobState(id) === 'completed');
  t.equal(answers.progress, 200, 'progress accepted while active');
  t.equal(answers.log, 200, 'log accepted while active');
  t.equal(s.job(id).progress, 50);
  t.strictSame(s.broker.getLogs(id, 0, 10), { ok: true, logs: ['half way'], count: 1 });
  t.equal(s.job(id).result, 'job-result');
  const token = (seen as { token: string } | null)?.token ?? '';
  const after = await s.request('POST', `/jobs/${id}/progress`, 70, { authorization: `Bearer ${token}` });
  t.equal(after.status, 401, 'the job token is refused after completion');
  t.equal(answers.wrong, 401, 'a wrong token is refused while active');
  t.equal(s.job(id).progress, 50, 'neither refused call changed the progress');
});

t.test('a-dependent-made-waiting-while-the-worker-is-busy-is-called', async (t) => {
  // Concurrency 1: the parent's call holds the only slot when its ack releases the child, so the
  // wake for the child reaches a full runner; it must still be called once the slot frees.
  let release = () => {};
  const held = new Promise<void>((resolve) => (release = resolve));
  const { s, ep } = await startStackWithEndpoint(t, async (c, res) => {
    if (c.body.job.data === 'parent') await held;
    text(res, 200, 'ok');
  }, {}, () => release());
  await s.registerWorker(worker('q', ep.url));
  const parent = await s.push('q', { data: 'parent' });
  const child = await s.push('q', { data: 'child', dependsOn: [parent] });
  await until('parent called', () => ep.calls.length === 1);
  release();
  await until('parent completed', () => s.broker.jobState(parent) === 'completed');
  await until('child completed', () => s.broker.jobState(child) === 'completed', 3_000);
  t.strictSame(ep.calls.map((c) => c.body.job.data), ['parent', 'child']);
});

t.test('a-job-timeout-shorter-than-the-endpoint-timeout-ends-the-call', async (t) => {
  // The broker fails an attempt when the job's own `timeout` passes; a call left running past it
  // can only have its answer dropped, and the retry's call would run beside it.
  let open = 0;
  let openMax = 0;
  let closedByBroker = 0;
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    open += 1;
    openMax = Math.max(openMax, open);
    res.on('close', () => {
      open -= 1;
      if (!res.writableFinished) closedByBroker += 1;
    });
    await sleep(1_000);
    if (!res.destroyed) text(res, 200, 'too late');
  });
  await s.registerWorker(worker('q', ep.url, {}, { concurrency: 3 }));
  const id = await s.push('q', { data: 1, timeout: 200, backoff: 100, maxAttempts: 3 });
  await until('failed for good', () => s.broker.jobState(id) === 'failed');
  await until('every call ended', () => open === 0);
  t.equal(ep.calls.length, 3, 'one call per attempt');
  t.equal(openMax, 1, 'never two calls of the job at once');
  t.equal(closedByBroker, 3, 'each call was ended when its attempt timed out');
});

/** Four jobs whose calls the endpoint never answers in time, then one it answers at once (worker
 *  concurrency 1, FIFO): ms from the first call to the quick job's call. */
async function slowThenQuick(
  t: Parameters<typeof startStackWithEndpoint>[0],
  slowJob: Record<string, unknown>,
  endpoint: Record<string, unknown>,
): Promise<{ elapsedMs: number; s: Awaited<ReturnType<typeof startStackWithEndpoint>>['s']; slow: string[] }> {
  const { s, ep } = await startStackWithEndpoint(t, async (c, res) => {
    if (c.body.job.data === 'slow') await sleep(1_000);
    if (!res.destroyed) text(res, 200, 'ok');
  });
  await s.registerWorker(worker('q', ep.url, endpoint));
  const slow: string[] = [];
  for (let i = 0; i < 4; i++) slow.push(await s.push('q', { data: 'slow', maxAttempts: 1, ...slowJob }));
  const quick = await s.push('q', { data: 'quick' });
  await until('the quick job completed', () => s.broker.jobState(quick) === 'completed', 8_000);
  const first = ep.calls[0]?.atMs ?? 0;
  const quickCall = ep.calls.find((c) => c.body.job.id === quick)?.atMs ?? 0;
  return { elapsedMs: quickCall - first, s, slow };
}

t.test('a-job-timeout-fails-that-attempt-without-pausing-the-worker', async (t) => {
  // The endpoint is healthy (it answers the quick job at once); only those jobs are slow. Their
  // own `timeout` must not back the worker off as an unanswered endpoint does (100, 200, 400,
  // 800 ms after four in a row: about 1.7 s before the quick job is called).
  const { elapsedMs, s, slow } = await slowThenQuick(t, { timeout: 50 }, {});
  t.ok(elapsedMs < 1_200, `the quick job was called ${elapsedMs} ms after the first slow one`);
  for (const id of slow) {
    await until('slow job failed', () => s.broker.jobState(id) === 'failed');
    t.equal(s.job(id).attempts, 1, 'each slow job spent its one attempt');
  }
});

t.test('an-endpoint-timeout-still-pauses-the-worker', async (t) => {
  const { elapsedMs, s, slow } = await slowThenQuick(t, {}, { timeout: 50 });
  t.ok(elapsedMs >= 1_200, `the quick job waited out the pauses (${elapsedMs} ms)`);
  for (const id of slow) t.equal(s.broker.jobState(id), 'failed');
});

t.test('get-workers-redacts-header-values-and-calls-still-send-them', async (t) => {
  // Endpoint headers commonly hold the endpoint's credentials: GET /workers answers every token
  // holder (and the openapi schema lists it), so it names the headers without their values.
  const { s, ep } = await startStackWithEndpoint(t, (_c, res) => text(res, 200, 'ok'));
  const headers = { Authorization: 'Bearer endpoint-secret', 'x-api-key': 'k-123' };
  await s.registerWorker(worker('q', ep.url, { headers, timeout: 1_000 }));
  const list = await s.request('GET', '/workers');
  t.equal(list.status, 200);
  t.strictSame(list.json.workers, [
    {
      queue: 'q',
      endpoint: { url: ep.url, method: 'POST', headers: { Authorization: '[redacted]', 'x-api-key': '[redacted]' }, timeout: 1_000 },
      opts: { concurrency: 1, limiter: null, removeOnComplete: null, removeOnFail: null, maxStalledCount: 1 },
    },
  ]);
  t.notOk(JSON.stringify(list.json).includes('endpoint-secret'), 'no value anywhere in the listing');
  const id = await s.push('q', { data: 1 });
  await until('completed', () => s.broker.jobState(id) === 'completed');
  t.equal(ep.calls[0]?.headers.authorization, 'Bearer endpoint-secret', 'the call still sends the value');
  t.equal(ep.calls[0]?.headers['x-api-key'], 'k-123');
  t.strictSame(s.broker.workers()[0]?.endpoint.headers, headers, 'and the registration keeps it');
});

t.test('a-redirect-is-not-followed-and-fails-the-attempt-with-its-status', async (t) => {
  // SPEC section 6: any status outside 200-299 fails the attempt. Following a redirect would also
  // let an endpoint send the job, its lock token and the registered headers somewhere else.
  const { s, ep } = await startStackWithEndpoint(t, (c, res) => {
    if (c.path.includes('moved')) return text(res, 200, 'followed');
    res.writeHead(307, { location: '/hook?moved=1', 'content-length': 0 });
    res.end();
  });
  await s.registerWorker(worker('q', ep.url));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('failed', () => s.broker.jobState(id) === 'failed');
  t.equal(s.job(id).failedReason, `HTTP 307 from POST ${ep.url}`);
  t.equal(ep.calls.length, 1, 'the Location was not called');
});

t.test('a-call-ended-by-its-job-timeout-leaves-the-failure-to-the-broker-and-logs-nothing', async (t) => {
  // The broker fails the attempt at the job's timeout, counted from the pull, a little before the
  // call (started after the pull) reaches it: the runner's own fail could only arrive late, be
  // refused and be logged as a "late answer" for every such job, though nothing answered.
  const { s, ep } = await startStackWithEndpoint(t, async (_c, res) => {
    await sleep(1_000);
    if (!res.destroyed) text(res, 200, 'too late');
  });
  await s.registerWorker(worker('q', ep.url, {}, { concurrency: 5 }));
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await s.push('q', { data: i, timeout: 50, maxAttempts: 1 }));
  await until('all failed', () => ids.every((id) => s.broker.jobState(id) === 'failed'));
  await until('every call ended', () => ep.open() === 0);
  await sleep(50);
  for (const id of ids) t.equal(s.job(id).failedReason, 'Job timed out after 50 ms');
  t.strictSame(s.lines.filter((l) => l.includes('tapeq: worker')), [], 'no worker log line');
});

t.test('a-compressed-2xx-body-fails-the-attempt-instead-of-completing-with-its-bytes', async (t) => {
  // A registration may carry `Accept-Encoding` (copied from another client's headers); the broker
  // reads bodies as they come, so a gzip answer completed the job with the compressed bytes as
  // text, or failed it as invalid JSON, without saying why.
  const { s, ep } = await startStackWithEndpoint(t, (c, res) => {
    const body = gzipSync(JSON.stringify({ done: true }));
    const encoded = String(c.headers['accept-encoding'] ?? '').includes('gzip');
    res.writeHead(200, { 'content-type': 'text/plain', ...(encoded ? { 'content-encoding': 'gzip' } : {}), 'content-length': body.length });
    res.end(body);
  });
  await s.registerWorker(worker('q', ep.url, { headers: { 'Accept-Encoding': 'gzip, deflate' } }));
  const id = await s.push('q', { data: 1, maxAttempts: 1 });
  await until('finished', () => ['completed', 'failed'].includes(s.broker.jobState(id) ?? ''));
  t.equal(s.broker.jobState(id), 'failed');
  t.equal(s.job(id).failedReason, `body with content-encoding gzip in HTTP 200 from POST ${ep.url} (the broker reads bodies uncompressed: register no Accept-Encoding)`);
  t.equal(s.job(id).result, null);
});
