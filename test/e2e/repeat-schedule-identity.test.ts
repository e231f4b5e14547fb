// The real `tapeq serve` process: a repeating job pushed again with its jobId (what an app does on
// every deploy) answers the schedule's live instance even after the first instance was removed,
// starts a fresh schedule once the old one has ended, and keeps doing so after a restart by full
// replay and by snapshot + tail; `tapeq replay --digest` agrees with and without the snapshot.

import { cp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { runTapeq, startTapeq, tempDataDir, type TapeqProcess } from '../fixtures/process.js';

const json = { 'content-type': 'application/json' };

async function call(p: TapeqProcess, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${p.url}${path}`, { method, headers: json, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return res.json();
}

async function push(p: TapeqProcess, body: unknown): Promise<string> {
  const r = await call(p, 'POST', '/queues/cron/jobs', body);
  if (r.ok !== true) throw new Error(JSON.stringify(r));
  return r.id;
}

/** Pulls (waiting up to 5 s) and acks one job; its id. */
async function runOnce(p: TapeqProcess): Promise<string> {
  const pulled = await call(p, 'GET', '/queues/cron/jobs?timeout=5000');
  if (pulled.job === null) throw new Error('nothing to pull');
  await call(p, 'POST', `/jobs/${pulled.job.id}/ack`, { token: pulled.token });
  return pulled.job.id;
}

const nightly = { data: { report: 'sales' }, jobId: 'nightly', repeat: { every: 3_600_000 }, removeOnComplete: true };
const twice = { data: { report: 'once more' }, jobId: 'twice', repeat: { every: 100, limit: 2 } };

t.test('repeat-schedule-identity-holds-over-http-and-across-restarts', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  let server = await startTapeq(data.dir);
  t.teardown(() => server.kill('SIGKILL'));

  t.equal(await push(server, nightly), 'nightly');
  t.equal(await runOnce(server), 'nightly');
  t.equal((await call(server, 'GET', '/jobs/nightly')).ok, false, 'the first instance was removed on completion');
  const pending = await push(server, nightly);
  t.not(pending, 'nightly', 'the re-push answers the pending next run');
  const job = (await call(server, 'GET', `/jobs/${pending}`)).job;
  t.match(job, { state: 'delayed', repeat: { every: 3_600_000, count: 1, key: 'nightly' } });
  t.equal(await push(server, { ...nightly, repeat: { every: 60_000 } }), pending, 'another repeat spec: the same schedule');
  const counts = (await call(server, 'GET', '/queues/cron/counts')).counts;
  t.match(counts, { waiting: 0, delayed: 1, active: 0 }, 'one chain, not two');
  const history = (await call(server, 'GET', `/jobs/${pending}/history`)).history.map((e: { type: string }) => e.type);
  t.same(history, ['pushed', 'duplicated', 'duplicated'], 'each re-push is on record as a duplicate');

  t.equal(await push(server, twice), 'twice');
  t.equal(await runOnce(server), 'twice');
  const second = await runOnce(server);
  t.not(second, 'twice', 'the limit ran out with the second run');
  const fresh = await push(server, twice);
  t.notOk(['twice', second].includes(fresh), 'the ended schedule starts afresh under a new id');
  t.match((await call(server, 'GET', `/jobs/${fresh}`)).job, { state: 'waiting', repeat: { count: 0, key: 'twice' } });

  t.equal(await server.kill('SIGTERM'), 0);
  server = await startTapeq(data.dir);
  t.match(server.stderr(), /snapshot: none, replayed \d+ records/);
  t.equal(await push(server, nightly), pending, 'after a full replay');
  t.equal(await push(server, twice), fresh, 'after a full replay');

  t.equal(await server.kill('SIGTERM'), 0);
  server = await startTapeq(data.dir, { SNAPSHOT_EVERY_RECORDS: '1' });
  await push(server, { data: 'after the snapshot' });
  const deadline = Date.now() + 10_000;
  while (!(await readdir(join(data.dir, 'snapshots')).catch(() => [])).some((f) => f.endsWith('.snap'))) {
    if (Date.now() > deadline) throw new Error('no snapshot written');
    await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(await server.kill('SIGTERM'), 0);
  server = await startTapeq(data.dir);
  t.match(server.stderr(), /snapshot: \S+snapshot-\d+\.snap, replayed 0 records/, 'started from the snapshot');
  t.equal(await push(server, nightly), pending, 'after loading the snapshot');
  t.equal(await server.kill('SIGTERM'), 0);
  server = await startTapeq(data.dir);
  t.match(server.stderr(), /snapshot: \S+snapshot-\d+\.snap, replayed 1 records/, 'the snapshot and a tail');
  t.equal(await push(server, twice), fresh, 'after snapshot + tail');
  t.equal(await push(server, nightly), pending, 'after snapshot + tail');
  t.equal(await server.kill('SIGTERM'), 0);

  const withSnapshot = await runTapeq(['replay', '--dir', data.dir, '--digest']);
  const logOnly = join(data.dir, 'log-only');
  await cp(join(data.dir, 'log'), join(logOnly, 'log'), { recursive: true });
  t.teardown(() => rm(logOnly, { recursive: true, force: true }));
  const withoutSnapshot = await runTapeq(['replay', '--dir', logOnly, '--digest']);
  t.equal(withSnapshot.code, 0, withSnapshot.stderr);
  t.match(withSnapshot.stderr + withSnapshot.stdout, /[0-9a-f]{64}/);
  t.equal(withoutSnapshot.stdout, withSnapshot.stdout, 'replay --digest: snapshot + tail = the log alone');
});
