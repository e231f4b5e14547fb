// GET /jobs/:id/history over a real server (src/main.ts serve(): real log, real job index files).
// Tiny segments (SEGMENT_BYTES=4096) so that histories cross sealed segments and their
// `.jobindex` files, not just the in-memory index of the active segment.

import { readdir, readFile, writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { Broker } from '../../src/broker/broker.js';
import { loadConfig } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';

const actor = { name: 'tester', address: '127.0.0.1' };

async function start(dir: string, env: Record<string, string> = {}): Promise<Running & { url: string }> {
  const config = loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1', SEGMENT_BYTES: '4096', ...env });
  const running = await serve(config, { logger: () => undefined });
  return Object.assign(running, { url: `http://127.0.0.1:${running.port}` });
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-history-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function history(url: string, id: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}/jobs/${encodeURIComponent(id)}/history`);
  return { status: res.status, body: await res.json() };
}

async function pushed(b: Broker, queue: string, input: unknown): Promise<string> {
  const r = await b.push(queue, input, { actor });
  if (!r.ok) throw new Error(`push failed: ${r.error}`);
  return r.id;
}

async function pullOne(b: Broker, queue: string, owner: string, lockMs?: number): Promise<string> {
  const r = await b.pull(queue, { timeoutMs: 0, ...(lockMs !== undefined ? { lockMs } : {}) }, { actor, owner });
  if (!r.ok || r.token === null) throw new Error(`pull failed: ${JSON.stringify(r)}`);
  return r.token;
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

t.test('history-lists-every-transition-of-a-job', async (t) => {
  const dir = await tempDir(t);
  const s = await start(dir);
  t.teardown(() => s.close());
  const b = s.broker;
  const id = await pushed(b, 'mail', { data: { to: 'a@b.c' }, priority: 5, maxAttempts: 2, backoff: 5000, tags: ['vip'] });
  await pushed(b, 'mail', { data: { other: true } });
  await b.cancel((await b.listJobs('mail', ['waiting'], 0, 10)).jobs.find((j) => j.id !== id)?.id ?? '', { actor });

  const token1 = await pullOne(b, 'mail', 'worker-1');
  t.same(await b.progress(id, { progress: 50, message: 'half' }, { actor }), { ok: true });
  t.same(await b.addLog(id, 'hello from the worker', { actor }), { ok: true });
  t.same(await b.fail(id, { error: 'boom', token: token1 }, { actor }), { ok: true });
  t.equal(b.jobState(id), 'delayed');
  t.same(await b.promote(id, { actor }), { ok: true });

  await pullOne(b, 'mail', 'worker-2', 30);
  await until('stall requeue', () => b.jobState(id) === 'waiting');
  await pullOne(b, 'mail', 'ws-conn-7');
  await b.releaseOwner('ws-conn-7', 'connection closed');
  t.equal(b.jobState(id), 'waiting');
  for (let i = 0; i < 5 && b.jobState(id) !== 'failed'; i++) {
    if (b.jobState(id) === 'delayed') await b.promote(id, { actor });
    const token = await pullOne(b, 'mail', 'worker-3');
    await b.fail(id, { error: `boom-${i}`, token }, { actor });
  }
  t.equal(b.jobState(id), 'failed', 'in the DLQ');
  t.same(await b.retry(id, { actor }), { ok: true });
  const token4 = await pullOne(b, 'mail', 'worker-4');
  t.same(await b.ack(id, { result: { sent: 1 }, token: token4 }, { actor }), { ok: true });
  t.same(await b.cancel(id, { actor }), { ok: true });
  t.equal(b.getJob(id), null, 'the job is gone from the state');

  const { status, body } = await history(s.url, id);
  t.equal(status, 200);
  t.equal(body.ok, true);
  const entries: any[] = body.history;
  const types = entries.map((e) => e.type);
  for (const type of ['pushed', 'pulled', 'progressed', 'logged', 'failed', 'promoted', 'stalled', 'released', 'retried', 'completed', 'removed']) {
    t.ok(types.includes(type), `history has a ${type} record`);
  }
  t.equal(types[0], 'pushed');
  t.equal(types.at(-1), 'removed');
  const offsets = entries.map((e) => e.offset);
  t.same(offsets, [...offsets].sort((a, b) => a - b), 'oldest first');
  t.ok(entries.every((e, i) => i === 0 || e.timestamp >= entries[i - 1].timestamp), 'timestamps do not go back');

  const push = entries[0];
  t.equal(push.job.id, id);
  t.equal(push.job.priority, 5);
  t.equal(push.job.maxAttempts, 2);
  t.same(push.job.tags, ['vip']);
  t.equal(push.state, 'waiting');
  t.same(push.actor, actor, 'actor included');
  t.equal(typeof push.time, 'string');
  const pulls = entries.filter((e) => e.type === 'pulled');
  t.same(pulls.slice(0, 3).map((e) => e.owner), ['worker-1', 'worker-2', 'ws-conn-7'], 'pull owners');
  t.equal(pulls[1].lockMs, 30);
  t.match(entries.find((e) => e.type === 'progressed'), { progress: 50, message: 'half' });
  t.match(entries.find((e) => e.type === 'logged'), { message: 'hello from the worker' });
  t.match(entries.find((e) => e.type === 'failed'), { error: 'boom', outcome: 'retry', retryDelay: 5000, token: token1 });
  t.match(entries.find((e) => e.type === 'promoted'), { manual: true, jobIds: [id] });
  t.match(entries.find((e) => e.type === 'stalled'), { outcome: 'requeued' });
  t.equal(entries.find((e) => e.type === 'stalled').actor, undefined, 'timer records carry no actor');
  t.match(entries.find((e) => e.type === 'released'), { reason: 'connection closed' });
  t.match(entries.filter((e) => e.type === 'failed').at(-1), { outcome: 'dead' });
  t.match(entries.find((e) => e.type === 'retried'), { prev: 'failed' });
  t.match(entries.find((e) => e.type === 'completed'), { result: JSON.stringify({ sent: 1 }), token: token4 });
  t.match(entries.at(-1), { reason: 'cancelled', jobs: [{ jobId: id, prev: 'completed' }] });
  t.ok(entries.every((e) => e.type === 'pushed' ? e.job.id === id : e.jobId === id || e.jobIds?.includes(id) || e.jobs?.some((j: any) => j.jobId === id)), 'no other job leaks in');

  t.same((await history(s.url, 'no-such-job')).body, { ok: false, error: 'Job not found' });
  t.equal((await history(s.url, 'no-such-job')).status, 404);
});

t.test('history-needs-auth-like-every-route', async (t) => {
  const dir = await tempDir(t);
  const s = await start(dir, { AUTH_TOKENS: 'sekret' });
  t.teardown(() => s.close());
  const id = await pushed(s.broker, 'q', { data: 1 });
  t.equal((await fetch(`${s.url}/jobs/${id}/history`)).status, 401);
  const ok = await fetch(`${s.url}/jobs/${id}/history`, { headers: { authorization: 'Bearer sekret' } });
  t.equal(ok.status, 200);
});

t.test('http-requests-record-their-caller-anonymous-with-auth-off-and-the-token-name-with-auth-on', async (t) => {
  const pushOverHttp = async (url: string, headers: Record<string, string>): Promise<string> => {
    const res = await fetch(`${url}/queues/q/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ data: 1 }),
    });
    return ((await res.json()) as { id: string }).id;
  };
  const firstActor = async (url: string, id: string, headers: Record<string, string> = {}): Promise<unknown> => {
    const res = await fetch(`${url}/jobs/${id}/history`, { headers });
    return ((await res.json()) as { history: { actor: unknown }[] }).history[0]?.actor;
  };
  const open = await start(await tempDir(t));
  t.teardown(() => open.close());
  t.same(await firstActor(open.url, await pushOverHttp(open.url, {})), { name: 'anonymous', address: '127.0.0.1' });
  const forwarded = await pushOverHttp(open.url, { 'x-forwarded-for': '203.0.113.9, 10.0.0.1' });
  t.same(await firstActor(open.url, forwarded), { name: 'anonymous', address: '203.0.113.9' }, 'the forwarded address');

  const guarded = await start(await tempDir(t), { AUTH_TOKENS: 'sekret' });
  t.teardown(() => guarded.close());
  const bearer = { authorization: 'Bearer sekret' };
  const named = await firstActor(guarded.url, await pushOverHttp(guarded.url, bearer), bearer);
  t.match(named, { name: /^[0-9a-f]{8}$/, address: '127.0.0.1' }, 'a token holder is named by its digest, never the token');
});

t.test('history-survives-removal-and-remove-on-complete', async (t) => {
  const dir = await tempDir(t);
  let s = await start(dir);
  const b = s.broker;
  const gone = await pushed(b, 'q', { data: 'x', removeOnComplete: true });
  const token = await pullOne(b, 'q', 'w');
  t.same(await b.ack(gone, { result: 'done', token }, { actor }), { ok: true });
  t.equal(b.getJob(gone), null, 'removeOnComplete removed it');
  const cancelled = await pushed(b, 'q', { data: 'y', delay: 60_000 });
  t.same(await b.cancel(cancelled, { actor }), { ok: true });
  for (let i = 0; i < 60; i++) await pushed(b, 'filler', { data: 'z'.repeat(200) });

  const check = async (url: string): Promise<void> => {
    const h1 = await history(url, gone);
    t.same(h1.body.history.map((e: any) => e.type), ['pushed', 'pulled', 'completed', 'removed']);
    t.equal(h1.body.complete, true, 'it starts at the push');
    t.equal(h1.body.history[3].reason, 'remove-on-complete');
    const h2 = await history(url, cancelled);
    t.same(h2.body.history.map((e: any) => e.type), ['pushed', 'removed']);
    t.equal(h2.body.history[0].state, 'delayed');
  };
  await check(s.url);
  await s.close();
  s = await start(dir);
  t.teardown(() => s.close());
  t.ok(s.log.segments().length > 2, 'the history now lies in sealed segments');
  await check(s.url);
});

t.test('a-dependents-history-shows-the-records-that-released-it', async (t) => {
  const dir = await tempDir(t);
  let s = await start(dir);
  const b = s.broker;
  const done = await pushed(b, 'd', { data: 'first', jobId: 'dep-done' });
  const gone = await pushed(b, 'd', { data: 'second', jobId: 'dep-gone', delay: 60_000 });
  const child = await pushed(b, 'd', { data: 'child', jobId: 'child', dependsOn: [done, gone] });
  await pushed(b, 'd', { data: 'other', jobId: 'unrelated' });
  const token = await pullOne(b, 'd', 'w');
  t.same(await b.ack(done, { token }, { actor }), { ok: true });
  t.same(await b.cancel(gone, { actor }), { ok: true });
  t.equal(b.jobState(child), 'waiting', 'released by the second');
  for (let i = 0; i < 60; i++) await pushed(b, 'filler', { data: 'z'.repeat(200) });

  const check = async (url: string): Promise<void> => {
    const h = await history(url, child);
    t.same(
      h.body.history.map((e: any) => `${e.type} ${e.jobId ?? e.job?.id ?? e.jobs?.[0]?.jobId}`),
      ['pushed child', 'completed dep-done', 'removed dep-gone'],
      'its push, then each dependency finishing, in log order',
    );
  };
  await check(s.url);
  await s.close();
  s = await start(dir);
  t.teardown(() => s.close());
  await check(s.url);
});

t.test('a-reused-job-ids-history-shows-what-released-each-of-its-pushes-as-logcat-does', async (t) => {
  const dir = await tempDir(t);
  const s = await start(dir);
  t.teardown(() => s.close());
  const b = s.broker;
  await pushed(b, 'r', { data: 'first life', jobId: 'again' });
  t.same(await b.cancel('again', { actor }), { ok: true });
  await pushed(b, 'r', { data: 'the dependency', jobId: 'dep' });
  await pushed(b, 'r', { data: 'second life', jobId: 'again', dependsOn: ['dep'] });
  t.equal(b.jobState('again'), 'waiting-children');
  const token = await pullOne(b, 'r', 'w');
  t.same(await b.ack('dep', { token }, { actor }), { ok: true });
  t.equal(b.jobState('again'), 'waiting', 'released by the completion of dep');

  const h = await history(s.url, 'again');
  t.same(
    h.body.history.map((e: any) => `${e.type} ${e.jobId ?? e.job?.id ?? e.jobs?.[0]?.jobId}`),
    ['pushed again', 'removed again', 'pushed again', 'completed dep'],
    'the completion that released its second push is listed, though its first push waited for nothing',
  );
  const { runCli } = await import('../cli/run-cli.js');
  const logcat = (await runCli(['logcat', '--dir', join(dir, 'log'), '--job', 'again'])).stdout.trim().split('\n');
  t.same(logcat.map((l) => JSON.parse(l).offset), h.body.history.map((e: any) => e.offset), 'the same records as logcat --job');
});

t.test('history-index-rebuilt-when-deleted-or-corrupt', async (t) => {
  const dir = await tempDir(t);
  let s = await start(dir);
  const ids: string[] = [];
  for (let i = 0; i < 80; i++) ids.push(await pushed(s.broker, `q${i % 3}`, { data: 'p'.repeat(150) }));
  for (const id of ids.slice(0, 40)) {
    const queue = s.broker.getJob(id)?.queue ?? '';
    const token = await pullOne(s.broker, queue, 'w');
    await s.broker.ack(id, { token }, { actor });
  }
  const expected = new Map<string, unknown>();
  for (const id of ids) expected.set(id, (await history(s.url, id)).body);
  await s.close();

  const logDir = join(dir, 'log');
  const indexFiles = (await readdir(logDir)).filter((n) => n.endsWith('.jobindex')).sort();
  const segments = (await readdir(logDir)).filter((n) => n.endsWith('.log'));
  t.equal(indexFiles.length, segments.length - 1, 'every sealed segment has a .jobindex file');
  const [deleted, corrupted, truncated] = indexFiles;
  if (deleted === undefined || corrupted === undefined || truncated === undefined) throw new Error('want three sealed segments');
  const originals = new Map<string, Buffer>();
  for (const name of [deleted, corrupted, truncated]) originals.set(name, await readFile(join(logDir, name)));
  await rm(join(logDir, deleted));
  const bad = Buffer.from(originals.get(corrupted) as Buffer);
  bad[40] = (bad[40] as number) ^ 0xff;
  await writeFile(join(logDir, corrupted), bad);
  await writeFile(join(logDir, truncated), (originals.get(truncated) as Buffer).subarray(0, 50));

  s = await start(dir);
  for (const id of ids) t.same((await history(s.url, id)).body, expected.get(id), `history of ${id} unchanged`);
  await s.close();
  for (const name of [deleted, corrupted, truncated]) {
    t.same(await readFile(join(logDir, name)), originals.get(name), `${name} rebuilt byte-identical`);
  }
});

t.test('history-ndjson-streams', async (t) => {
  const dir = await tempDir(t);
  const s = await start(dir);
  t.teardown(() => s.close());
  const id = await pushed(s.broker, 'q', { data: 1 });
  for (let i = 0; i < 300; i++) await s.broker.addLog(id, `line ${i}`, { actor });
  const res = await fetch(`${s.url}/jobs/${id}/history?format=ndjson`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/x-ndjson');
  t.equal(res.headers.get('tapeq-history-complete'), 'true', 'NDJSON has no envelope: the header says it starts at the push');
  t.match(res.headers.get('access-control-expose-headers'), 'tapeq-history-complete');
  const text = await res.text();
  t.ok(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l));
  t.equal(lines.length, 301);
  t.same(lines, (await history(s.url, id)).body.history, 'same entries as the JSON form');
  t.equal((await fetch(`${s.url}/jobs/nope/history?format=ndjson`)).status, 404);
  t.equal((await fetch(`${s.url}/jobs/${id}/history?format=xml`)).status, 400);
});

t.test('iso-time-ms-takes-iso-dates-and-times-only', async (t) => {
  const { isoTimeMs } = await import('../../src/history/point.js');
  t.equal(isoTimeMs('2026-12-06'), Date.UTC(2026, 11, 6));
  t.equal(isoTimeMs('2026-12-06T10:20:30.5Z'), Date.UTC(2026, 11, 6, 10, 20, 30, 500));
  t.equal(isoTimeMs('2026-12-06T10:20+02:00'), Date.UTC(2026, 11, 6, 8, 20));
  for (const loose of ['1.5', '-5', '12.3', 'x 5', '2026-12-06 nonsense', 'Dec 6 2026', '']) t.ok(Number.isNaN(isoTimeMs(loose)), loose);
});

t.test('iso-time-ms-refuses-days-the-month-does-not-have', async (t) => {
  const { isoTimeMs } = await import('../../src/history/point.js');
  // Date.parse rolls these over into the next month: a typo would become another point in time.
  for (const impossible of ['2026-02-30', '2026-02-29', '2026-04-31T10:00Z', '2026-06-31 23:59', '2026-00-10', '2026-01-00']) {
    t.ok(Number.isNaN(isoTimeMs(impossible)), impossible);
  }
  t.equal(isoTimeMs('2028-02-29'), Date.UTC(2028, 1, 29), 'a leap day of a leap year');
  t.equal(isoTimeMs('2026-01-31T23:59:59Z'), Date.UTC(2026, 0, 31, 23, 59, 59));
  t.equal(isoTimeMs('2026-12-31T23:30-02:00'), Date.UTC(2027, 0, 1, 1, 30), 'the zone may move it to another day');
});

t.test('iso-time-ms-reads-a-time-without-a-zone-as-utc-whatever-the-machine-zone', async (t) => {
  const { isoTimeMs } = await import('../../src/history/point.js');
  const saved = process.env['TZ'];
  t.teardown(() => {
    if (saved === undefined) delete process.env['TZ'];
    else process.env['TZ'] = saved;
  });
  process.env['TZ'] = 'America/New_York';
  t.equal(new Date(2026, 11, 6).getTimezoneOffset(), 300, 'the process now runs in New York time');
  t.equal(isoTimeMs('2026-12-06T10:00'), Date.UTC(2026, 11, 6, 10), 'a date-time without a zone is UTC');
  t.equal(isoTimeMs('2026-12-06 10:00:30.25'), Date.UTC(2026, 11, 6, 10, 0, 30, 250));
  t.equal(isoTimeMs('2026-12-06'), Date.UTC(2026, 11, 6), 'as a date alone is');
  t.equal(isoTimeMs('2026-12-06T10:00-05:00'), Date.UTC(2026, 11, 6, 15), 'a zone given is kept');
});

t.test('history-says-whether-it-starts-at-the-push', async (t) => {
  const { startServer } = await import('../fixtures/server.js');
  const { sampleRecord } = await import('../fixtures/records.js');
  const { FakeBroker } = await import('../fixtures/fake-broker.js');
  const broker = new FakeBroker();
  const live = await broker.push('q', { data: 1 }, { actor: null });
  const liveId = live.ok ? live.id : '';
  // What retention can leave: a job's later records without its push, or none at all.
  const pulledOnly = sampleRecord('pulled');
  const source = {
    async *records(id: string) {
      if (id === 'job-1') yield pulledOnly;
    },
  };
  const s = await startServer({ broker, history: source });
  t.teardown(() => s.close());
  const partial = await s.request('GET', '/jobs/job-1/history');
  t.equal(partial.json.complete, false, 'the push is no longer retained');
  t.equal(partial.json.history.length, 1);
  const emptied = await s.request('GET', `/jobs/${liveId}/history`);
  t.same([emptied.status, emptied.json], [200, { ok: true, history: [], complete: false }], 'a live job whose records are all gone');
  t.equal((await s.request('GET', '/jobs/nobody/history')).status, 404);
  for (const [path, lines] of [['/jobs/job-1/history?format=ndjson', 1], [`/jobs/${liveId}/history?format=ndjson`, 0]] as const) {
    const res = await fetch(`${s.url}${path}`);
    t.equal(res.status, 200, path);
    t.equal(res.headers.get('tapeq-history-complete'), 'false', `${path}: incomplete, said in the header`);
    t.equal(res.headers.get('content-type'), 'application/x-ndjson');
    t.equal((await res.text()).split('\n').filter((l) => l !== '').length, lines);
  }
  t.equal(partial.headers.get('tapeq-history-complete'), 'false', 'the JSON form sends the header too');
});
