// tapeq replay and serve --until as real child processes; and the promise every tool makes:
// the data directory is byte-identical after any of them ran.

import { cp as copyPath, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { apply, createState } from '../../src/state/index.js';
import { startBroker } from '../fixtures/broker.js';
import { runTapeq, startTapeq } from '../fixtures/process.js';
import { hashTree, runWorkload } from '../history/workload.js';

const root = await mkdtemp(join(tmpdir(), 'tapeq-replay-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const w = await runWorkload(join(root, 'src'), 60);
const cp = w.checkpoints[1];
if (cp === undefined) throw new Error('no checkpoint');
const before = w.ids.find((_, i) => i === 0) as string;
const after = w.ids.at(-1) as string;

t.test('replay-prints-summary-job-and-digest-as-of-a-point', async (t) => {
  const summary = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset)]);
  t.equal(summary.code, 0, summary.stderr);
  const s = JSON.parse(summary.stdout);
  t.equal(s.offset, cp.offset);
  t.equal(s.timestamp, cp.timestamp);
  t.equal(s.jobs, cp.jobs);
  t.same(Object.keys(s.queues).sort(), ['q0', 'q1', 'q2']);
  t.ok(typeof s.queues.q0.counts.waiting === 'number');
  const byTime = JSON.parse((await runTapeq(['replay', '--dir', w.dir, '--until', new Date(cp.timestamp).toISOString()])).stdout);
  t.equal(byTime.offset, cp.offset, 'a time resolves to the last record stamped <= it, + 1');

  const job = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset), '--job', before]);
  t.equal(job.code, 0, job.stderr);
  t.equal(JSON.parse(job.stdout).job.id, before);
  const missing = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset), '--job', after]);
  t.equal(missing.code, 1, 'a job pushed later did not exist then');
  t.match(missing.stderr, /did not exist/);
  const wrongQueue = await runTapeq(['replay', '--dir', w.dir, '--job', before, '--queue', 'q2']);
  t.equal(wrongQueue.code, 1);

  const digest = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset), '--digest']);
  t.equal(digest.stdout.trim(), cp.digest);
  t.equal((await runTapeq(['replay', '--dir', w.dir, '--until', 'not a time'])).code, 2);
});

t.test('replay-queue-that-never-existed-is-unknown-exit-1', async (t) => {
  const unknown = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset), '--queue', 'no-such-queue']);
  t.equal(unknown.code, 1, 'as an unknown --job');
  t.equal(unknown.stdout, '', 'no zero counts as if the queue existed');
  t.match(unknown.stderr, /queue no-such-queue did not exist at offset/);
  const known = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset), '--queue', 'q0']);
  t.equal(known.code, 0, known.stderr);
  t.same(Object.keys(JSON.parse(known.stdout).queues), ['q0']);
});

t.test('serve-until-refuses-writes-with-409', async (t) => {
  const p = await startTapeq(w.dir, {}, { args: ['--until', String(cp.offset)] });
  t.teardown(() => p.kill());
  t.equal((await fetch(`${p.url}/jobs/${before}`)).status, 200, 'a job from before the point is served');
  t.equal((await fetch(`${p.url}/jobs/${after}`)).status, 404, 'a later job is not');
  const push = await fetch(`${p.url}/queues/q0/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: 1 }) });
  t.equal(push.status, 409);
  t.same(await push.json(), {
    ok: false,
    error: `Read-only: this server shows the state at offset ${cp.offset} (serve --until); writes are refused`,
  });
  t.equal((await fetch(`${p.url}/jobs/${before}`, { method: 'DELETE' })).status, 409);
  t.equal((await fetch(`${p.url}/queues/q0/pause`, { method: 'POST' })).status, 409);
  const pull = await fetch(`${p.url}/queues/q0/jobs`);
  t.equal(pull.status, 409, 'a pull is a write too');
  const history = await (await fetch(`${p.url}/jobs/${before}/history`)).json();
  t.ok(history.history.length > 0 && history.history.every((e: any) => e.offset < cp.offset), 'history stops at the point');
  t.match(p.stderr(), /READ-ONLY server/);
  t.notMatch(p.stderr(), "past the log's end");
});

t.test('serve-until-past-the-end-says-it-serves-the-state-at-the-end', async (t) => {
  const p = await startTapeq(w.dir, {}, { args: ['--until', '99999999'] });
  t.teardown(() => p.kill());
  t.equal((await fetch(`${p.url}/jobs/${after}`)).status, 200, 'the last jobs are served');
  t.match(p.stderr(), /READ-ONLY server on the state at offset 99999999 \(past the log's end: the state at its end, offset \d+\): records \[0, \d+\)/);
});

t.test('replay-recover-and-export-until-past-the-end-say-so-as-serve-does', async (t) => {
  // replay printed the state at the end, recover reported "until" as the end, export wrote every
  // record, each without a word that the offset asked for was not there.
  const end = w.records;
  const note = (tool: string) => `tapeq ${tool}: --until 99999999 is past the log's end: `;
  const replay = await runTapeq(['replay', '--dir', w.dir, '--until', '99999999', '--digest']);
  t.equal(replay.code, 0, replay.stderr);
  t.equal(replay.stderr, `${note('replay')}the state at its end, offset ${end}\n`);
  t.equal(replay.stdout, (await runTapeq(['replay', '--dir', w.dir, '--digest'])).stdout, 'the state at the end');
  const recover = await runTapeq(['recover', '--dir', w.dir, '--until', '99999999', '--out', join(root, 'past-end'), '--dry-run']);
  t.equal(recover.code, 0, recover.stderr);
  t.equal(recover.stderr, `${note('recover')}the state at its end, offset ${end}\n`);
  t.equal(JSON.parse(recover.stdout).until, end);
  const exported = await runTapeq(['export', '--dir', w.dir, '--until', '99999999', '--avro', join(root, 'past-end.avro')]);
  t.equal(exported.code, 0, exported.stderr);
  t.match(exported.stderr, new RegExp(`^${note('export')}records to its end, offset ${end}\n`));
  const atEnd = await runTapeq(['replay', '--dir', w.dir, '--until', String(end), '--digest']);
  t.equal(atEnd.stderr, '', 'the end itself is no point past it');
});

t.test('read-only-commands-leave-data-dir-byte-identical', async (t) => {
  const hashes = await hashTree(w.dir);
  t.ok(Object.keys(hashes).some((f) => f.endsWith('.jobindex')), 'the server wrote job indexes (they must stay as they are)');
  const out = join(root, 'recovered');
  const runs: string[][] = [
    ['replay', '--dir', w.dir],
    ['replay', '--dir', w.dir, '--until', String(cp.offset), '--job', before],
    ['replay', '--dir', w.dir, '--digest'],
    ['recover', '--dir', w.dir, '--until', String(cp.offset), '--out', out, '--dry-run'],
    ['recover', '--dir', w.dir, '--until', String(cp.offset), '--out', out],
    ['export', '--dir', w.dir, '--avro', join(root, 'x.avro')],
    ['logcat', '--dir', join(w.dir, 'log'), '--job', before],
    ['logcat', '--dir', join(w.dir, 'log'), '--queue', 'q1'],
    ['verify', '--dir', join(w.dir, 'log')],
  ];
  for (const args of runs) {
    const r = await runTapeq(args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    t.same(await hashTree(w.dir), hashes, `data dir byte-identical after ${args[0]} ${args.slice(3).join(' ')}`);
  }
  const p = await startTapeq(w.dir, {}, { args: ['--until', String(cp.offset)] });
  await fetch(`${p.url}/jobs/${before}/history`);
  await fetch(`${p.url}/queues/q0/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":1}' });
  await p.kill('SIGTERM');
  t.same(await hashTree(w.dir), hashes, 'data dir byte-identical after serve --until');
});

t.test('replay-and-export-take-the-log-dir-as-dir-too', async (t) => {
  const fromData = await runTapeq(['replay', '--dir', w.dir, '--until', String(cp.offset), '--digest']);
  const fromLog = await runTapeq(['replay', '--dir', join(w.dir, 'log'), '--until', String(cp.offset), '--digest']);
  t.equal(fromLog.code, 0, fromLog.stderr);
  t.equal(fromLog.stdout, fromData.stdout, 'the same state either way');
  const out = await mkdtemp(join(tmpdir(), 'tapeq-export-logdir-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const exported = await runTapeq(['export', '--dir', join(w.dir, 'log'), '--avro', join(out, 'x.avro')]);
  t.equal(exported.code, 0, exported.stderr);
});

t.test('a-log-copy-named-as-dir-is-the-log-every-tool-reads-not-the-log-beside-it', async (t) => {
  // A data dir copy beside which the operator kept its first segment under another name (as an
  // archive or a backup holds segments): verify and logcat read that directory; replay, export
  // and recover read the data dir's log/ instead, and answered for a log the user did not name.
  const copy = join(root, 'copy');
  await copyPath(w.dir, copy, { recursive: true });
  const early = join(copy, 'log-early');
  await mkdir(early);
  const first = (await readdir(join(copy, 'log'))).filter((n) => n.startsWith('00000000000000000000.'));
  for (const name of first) await copyPath(join(copy, 'log', name), join(early, name));
  const verified = await runTapeq(['verify', '--dir', early]);
  const records = Number(/ok 1 segments, (\d+) records/.exec(verified.stdout)?.[1]);
  t.ok(records > 0 && records < w.records, `verify reads the copy: ${verified.stdout}`);

  const digest = await runTapeq(['replay', '--dir', early, '--digest']);
  t.equal(digest.code, 0, digest.stderr);
  t.equal(digest.stdout, (await runTapeq(['replay', '--dir', w.dir, '--until', String(records), '--digest'])).stdout, 'replay: the state at the copy\'s end');
  const exported = await runTapeq(['export', '--dir', early, '--avro', join(root, 'early.avro')]);
  t.equal(exported.code, 0, exported.stderr);
  t.match(exported.stderr, `${records} records (offsets 0..${records - 1})`, 'export: the copy\'s records');
  const recovered = await runTapeq(['recover', '--dir', early, '--until', String(records + 10), '--out', join(root, 'early-out'), '--dry-run']);
  t.equal(recovered.code, 0, recovered.stderr);
  t.equal(JSON.parse(recovered.stdout).until, records, 'recover: cut at the copy\'s end');
});

t.test('a-time-before-a-compacted-logs-first-record-is-refused-unless-the-snapshot-there-is-stamped-by-then', async (t) => {
  // Every record a second apart; a snapshot exactly at a segment boundary B, and retention
  // removed everything before B. The last record stamped at or before ts(B - 1) - 1 ms is B - 2:
  // the state there is gone with the segments, and the snapshot at B (which holds record B - 1)
  // is not it.
  const dir = join(root, 'compacted-at-a-boundary');
  let now = Date.parse('2026-01-01T00:00:00Z');
  const f = await startBroker({ dir: join(dir, 'log'), segmentBytes: 4096, clock: () => (now += 1000), start: false });
  for (let i = 0; i < 60; i++) await f.broker.push('q', { data: { i, pad: 'x'.repeat(200) } }, { actor: null });
  const boundary = f.log.segments()[2]?.baseOffset;
  if (boundary === undefined) throw new Error('too few segments');
  const state = createState();
  for await (const batch of f.log.readBatches(0, boundary)) for (const r of batch) apply(state, r);
  await writeStateSnapshot(join(dir, 'snapshots'), state);
  await f.log.dropSegmentsBefore(boundary, Number.POSITIVE_INFINITY);
  t.equal(f.log.firstOffset, boundary, 'the log now starts at the snapshot');
  await f.cleanup();

  const exact = new Date(state.timestamp).toISOString();
  const r = await runTapeq(['replay', '--dir', dir, '--until', exact]);
  t.equal(r.code, 0, `at the last removed record's stamp the snapshot is the state: ${r.stderr}`);
  t.equal(JSON.parse(r.stdout).offset, boundary);

  const earlier = new Date(state.timestamp - 1).toISOString();
  for (const args of [['replay', '--until', earlier], ['recover', '--until', earlier, '--out', join(root, 'never'), '--dry-run']]) {
    const refused = await runTapeq([...args, '--dir', dir]);
    t.equal(refused.code, 1, `${args.join(' ')}: ${refused.stdout}`);
    t.match(refused.stderr, `${earlier} is before the log's first record (offset ${boundary})`);
  }
  const serving = startTapeq(dir, {}, { args: ['--until', earlier] });
  serving.then((p) => t.teardown(() => p.kill()), () => undefined);
  await t.rejects(serving, /is before the log's first record/, 'serve --until refuses it too');
});
