// /prometheus counts a push worker's calls by what its endpoint made of them, on a real server
// (`serve`) calling a real local endpoint: a 2xx is a success, any other answer a failure, a call
// that times out unanswered; a call the endpoint holds is in flight until it answers; a DELETE
// of the worker ends its series.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve } from '../../src/main.js';
import { json, startEndpoint, until } from './endpoint.js';

t.test('worker-calls-are-counted-by-what-the-endpoint-made-of-them', async (t) => {
  let release: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const ep = await startEndpoint(async (call, res) => {
    const kind = (call.body.job.data as { kind: string }).kind;
    if (kind === 'hang') return; // never answered: the call times out
    if (kind === 'hold') await held;
    json(res, kind === 'fail' ? 500 : 200, { kind });
  });
  t.teardown(() => ep.close());
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-worker-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const s = await serve(loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1' }), { logger: () => undefined });
  t.teardown(() => s.close());
  const url = `http://127.0.0.1:${s.port}`;
  const post = async (path: string, body: unknown): Promise<any> =>
    (await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json();
  const metrics = async (): Promise<string> => (await fetch(`${url}/prometheus`)).text();
  const sample = (text: string, labels: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`bunqueue_worker_calls_${labels} `));
    return line === undefined ? undefined : Number(line.split(' ')[1]);
  };
  const states = async (ids: string[]): Promise<string[]> =>
    Promise.all(ids.map(async (id) => ((await (await fetch(`${url}/jobs/${id}/state`)).json()) as { state: string }).state));

  t.notMatch(await metrics(), /_worker_calls_(total|in_flight)\{/, 'no worker, no series');
  t.equal((await post('/workers', { queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 300 } })).ok, true);
  const ids: string[] = [];
  for (const kind of ['ok', 'ok', 'ok', 'fail', 'fail', 'hang']) ids.push((await post('/queues/q/jobs', { data: { kind }, maxAttempts: 1 })).id);
  const settled = async (): Promise<boolean> => (await states(ids)).every((state) => state === 'completed' || state === 'failed');
  for (const deadline = Date.now() + 10_000; !(await settled()); await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (Date.now() > deadline) throw new Error(`jobs not settled: ${(await states(ids)).join(', ')}`);
  }
  t.same(await states(ids), ['completed', 'completed', 'completed', 'failed', 'failed', 'failed']);
  let text = await metrics();
  t.equal(sample(text, 'total{queue="q",outcome="success"}'), 3);
  t.equal(sample(text, 'total{queue="q",outcome="failure"}'), 2);
  t.equal(sample(text, 'total{queue="q",outcome="unanswered"}'), 1);
  t.equal(sample(text, 'in_flight{queue="q"}'), 0);

  // A call the endpoint holds is in flight until it answers. The timeout above paused the worker
  // for 100 ms; the held job is called once that pause ends.
  const calls = ep.calls.length;
  const heldId = (await post('/queues/q/jobs', { data: { kind: 'hold' } })).id;
  await until('the held call', () => ep.calls.length > calls);
  t.equal(sample(await metrics(), 'in_flight{queue="q"}'), 1, 'one call in flight');
  release();
  for (const deadline = Date.now() + 5_000; (await states([heldId]))[0] !== 'completed'; await new Promise((resolve) => setTimeout(resolve, 20))) {
    if (Date.now() > deadline) throw new Error('the held job did not complete');
  }
  text = await metrics();
  t.equal(sample(text, 'total{queue="q",outcome="success"}'), 4);
  t.equal(sample(text, 'in_flight{queue="q"}'), 0);

  // Posting the worker again keeps its counts; removing it ends its series.
  t.equal((await post('/workers', { queue: 'q', endpoint: { url: ep.url, method: 'POST', timeout: 500 } })).ok, true);
  t.equal(sample(await metrics(), 'total{queue="q",outcome="success"}'), 4, 'a re-POST keeps the counts');
  t.equal((await (await fetch(`${url}/workers/q`, { method: 'DELETE' })).json()).ok, true);
  t.notMatch(await metrics(), /_worker_calls_(total|in_flight)\{/, 'a removed worker has no series');
});
