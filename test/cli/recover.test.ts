// tapeq recover and replay as real child processes over a data directory written by a real
// server: point-in-time recovery reproduces the live state's digest at every checkpoint, the
// recovered directory serves, a dry run writes nothing, and the source is never modified.

import { mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { runTapeq, startTapeq } from '../fixtures/process.js';
import { compactedDataDir, hashTree, runWorkload, tempDir } from '../history/workload.js';

const root = await mkdtemp(join(tmpdir(), 'tapeq-pitr-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const w = await runWorkload(join(root, 'src'));
const compacted = await compactedDataDir(join(root, 'compacted'));

async function digestOfDir(dir: string, until?: string): Promise<string> {
  const r = await runTapeq(['replay', '--dir', dir, '--digest', ...(until === undefined ? [] : ['--until', until])]);
  if (r.code !== 0) throw new Error(`replay failed (${r.code}): ${r.stderr}`);
  return r.stdout.trim();
}

t.test('pitr-recovered-directory-has-the-live-digest-at-every-offset-and-time', async (t) => {
  const outRoot = await tempDir(t, 'tapeq-pitr-out-');
  t.ok(w.checkpoints.length >= 4, 'several checkpoints');
  // Every process spawn costs about a second on a busy 2-core machine: the normal run checks every
  // other checkpoint (still offsets and times across several segments), TAPEQ_LONG=1 all of them.
  const checked = w.checkpoints.filter((_, i) => process.env.TAPEQ_LONG === '1' || i % 2 === 0);
  t.ok(checked.length >= 3, `${checked.length} checkpoints checked`);
  for (const [i, cp] of checked.entries()) {
    t.equal(await digestOfDir(w.dir, String(cp.offset)), cp.digest, `replay --until ${cp.offset} = live digest`);
    const iso = new Date(cp.timestamp).toISOString();
    t.equal(await digestOfDir(w.dir, iso), cp.digest, `replay --until ${iso} = live digest`);

    const points = i % 2 === 0 ? ([['offset', String(cp.offset)], ['time', iso]] as const) : ([['offset', String(cp.offset)]] as const);
    for (const [kind, until] of points) {
      const out = join(outRoot, `${kind}-${i}`);
      const r = await runTapeq(['recover', '--dir', w.dir, '--until', until, '--out', out]);
      t.equal(r.code, 0, `recover --until ${until}: ${r.stderr}`);
      const report = JSON.parse(r.stdout);
      t.equal(report.until, cp.offset, `${until} resolves to offset ${cp.offset}`);
      t.equal(await digestOfDir(out), cp.digest, `recovered (${kind} ${until}) digest = live digest`);
      if (kind === 'time') continue;
      await rm(join(out, 'snapshots'), { recursive: true });
      t.equal(await digestOfDir(out), cp.digest, 'and the recovered log alone, replayed from 0, gives it too');
      const logs = (await readdir(join(out, 'log'))).filter((n) => n.endsWith('.log'));
      t.ok(logs.length >= 1, 'segments copied');
    }
  }
  const end = await digestOfDir(w.dir);
  t.equal(await digestOfDir(w.dir, String(w.records)), end, 'no --until = the end');
});

t.test('recovered-directory-starts-and-serves', async (t) => {
  const cp = w.checkpoints[1];
  if (cp === undefined) throw new Error('no checkpoint');
  const out = join(await tempDir(t, 'tapeq-pitr-serve-'), 'data');
  t.equal((await runTapeq(['recover', '--dir', w.dir, '--until', String(cp.offset), '--out', out])).code, 0);
  const p = await startTapeq(out);
  t.teardown(() => p.kill());
  const existing = w.ids[0] as string;
  const job = await (await fetch(`${p.url}/jobs/${existing}`)).json();
  t.equal(job.ok, true, 'a job from before the cut is there');
  const later = w.ids.at(-1) as string;
  t.equal((await fetch(`${p.url}/jobs/${later}`)).status, 404, 'a job pushed after the cut is not');
  const history = await (await fetch(`${p.url}/jobs/${existing}/history`)).json();
  t.ok(history.history.every((e: any) => e.offset < cp.offset), 'history ends at the cut');
  let total = 0;
  for (const q of ['q0', 'q1', 'q2']) {
    const counts = (await (await fetch(`${p.url}/queues/${q}/counts`)).json()).counts;
    total += Object.entries(counts).filter(([k]) => k !== 'paused').reduce((n, [, v]) => n + (v as number), 0);
  }
  t.equal(total, cp.jobs, 'job counts match the state at the cut');
  const pushed = await fetch(`${p.url}/queues/q0/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: 1 }) });
  t.equal(pushed.status, 200, 'the recovered server accepts writes');
  const pushedId = (await pushed.json()).id;
  const h = await (await fetch(`${p.url}/jobs/${pushedId}/history`)).json();
  t.equal(h.history[0].offset, cp.offset, 'new records continue at the cut offset');
});

t.test('recover-dry-run-writes-nothing', async (t) => {
  const cp = w.checkpoints[0];
  if (cp === undefined) throw new Error('no checkpoint');
  const out = join(await tempDir(t, 'tapeq-pitr-dry-'), 'data');
  const before = await hashTree(w.dir);
  const r = await runTapeq(['recover', '--dir', w.dir, '--until', String(cp.offset), '--out', out, '--dry-run']);
  t.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout);
  t.equal(report.dryRun, true);
  t.equal(report.leftOut.records, w.records - cp.offset);
  t.same(report.leftOut.offsets, { first: cp.offset, last: w.records - 1 });
  t.equal(Object.values(report.leftOut.types as Record<string, number>).reduce((a, b) => a + b, 0), w.records - cp.offset, 'per-type counts add up');
  t.ok(report.leftOut.types.pushed > 0);
  t.ok(Date.parse(report.leftOut.times.first) > cp.timestamp, 'left-out records are stamped after the point');
  await t.rejects(stat(out), 'nothing created');
  t.same(await hashTree(w.dir), before, 'source untouched');
});

t.test('recover-refuses-a-non-empty-out-and-bad-arguments', async (t) => {
  const r1 = await runTapeq(['recover', '--dir', w.dir, '--until', '5', '--out', w.dir]);
  t.equal(r1.code, 1);
  t.match(r1.stderr, /is not empty/);
  t.equal((await runTapeq(['recover', '--dir', w.dir, '--out', '/tmp/x'])).code, 2, '--until required');
  t.equal((await runTapeq(['recover', '--dir', w.dir, '--until', 'yesterday-ish', '--out', '/tmp/x'])).code, 2);
  // Date.parse alone reads these as times in 2001 or the year -5: a typo must not become a point.
  for (const loose of ['1.5', '-5', '5 ', 'x 5', '12.3']) {
    const r = await runTapeq(['recover', '--dir', w.dir, `--until=${loose}`, '--out', '/tmp/x']);
    t.equal(r.code, 2, `--until ${JSON.stringify(loose)} is refused`);
    t.match(r.stderr, 'neither an offset nor an ISO 8601 time');
  }
});

t.test('a-recovery-that-fails-at-the-end-leaves-nothing-half-built', async (t) => {
  const parent = await mkdtemp(join(tmpdir(), 'tapeq-recover-link-'));
  t.teardown(() => rm(parent, { recursive: true, force: true }));
  await mkdir(join(parent, 'empty'));
  await symlink(join(parent, 'empty'), join(parent, 'link'));
  // An empty directory passes the target check; renaming the finished copy over a symlink fails.
  const r = await runTapeq(['recover', '--dir', w.dir, '--until', '5', '--out', join(parent, 'link')]);
  t.equal(r.code, 1, r.stderr);
  t.same((await readdir(parent)).sort(), ['empty', 'link'], 'no <out>.recovering-<pid> left behind');
});

t.test('recover-refuses-an-out-inside-the-source-data-dir-and-leaves-it-untouched', async (t) => {
  const before = await hashTree(w.dir);
  for (const out of [join(w.dir, 'recovered'), join(w.dir, 'log', 'recovered'), join(w.dir, 'snapshots', 'x', '..', 'y')]) {
    const r = await runTapeq(['recover', '--dir', w.dir, '--until', '5', '--out', out]);
    t.equal(r.code, 1, `--out ${out}`);
    t.match(r.stderr, /is inside the data directory being recovered/);
  }
  const viaLogDir = await runTapeq(['recover', '--dir', join(w.dir, 'log'), '--until', '5', '--out', join(w.dir, 'recovered')]);
  t.equal(viaLogDir.code, 1, '--dir naming the log dir: its data dir is the source');
  t.same(await hashTree(w.dir), before, 'the source data directory is byte-identical: nothing was written into it');
});

/** Everything a real recover prints that a dry run can know (all but the new log id). */
function planOf(report: Record<string, unknown>): Record<string, unknown> {
  const { logId: _id, dryRun: _dry, ...rest } = report;
  return rest;
}

t.test('recover-dry-run-reports-the-fallback-snapshot-the-real-run-copies', async (t) => {
  // A compacted source: retention cut its first segments, so a fork of it needs a fallback snapshot.
  const root = await tempDir(t, 'tapeq-pitr-compacted-');
  const src = compacted;
  const until = String(src.records - 10);
  const out = join(root, 'out');
  const dry = await runTapeq(['recover', '--dir', src.dir, '--until', until, '--out', out, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  await t.rejects(stat(out), 'the dry run created nothing');
  const real = await runTapeq(['recover', '--dir', src.dir, '--until', until, '--out', out]);
  t.equal(real.code, 0, real.stderr);
  const planned = JSON.parse(dry.stdout);
  const done = JSON.parse(real.stdout);
  t.equal(done.fallbackSnapshot, join(out, 'snapshots', basename(src.newer)), 'the real run copied the newest snapshot below the cut');
  t.equal(planned.fallbackSnapshot, done.fallbackSnapshot, 'the dry run names the same fallback snapshot');
  t.equal(planned.snapshot, done.snapshot, 'and the same snapshot at the cut');
  t.same(planOf(planned), planOf(done), 'the dry run reports exactly what the real run did');
  t.same((await readdir(join(out, 'snapshots'))).sort(), [basename(done.snapshot), basename(done.fallbackSnapshot)].sort(), 'and wrote those two');

  const plain = await runTapeq(['recover', '--dir', w.dir, '--until', '5', '--out', join(root, 'plain'), '--dry-run']);
  t.equal(plain.code, 0, plain.stderr);
  t.equal(JSON.parse(plain.stdout).fallbackSnapshot, null, 'a log that starts at 0 needs no fallback, and the dry run says so');
});

t.test('a-point-before-a-compacted-logs-first-record-is-refused-naming-the-records-gone', async (t) => {
  const src = compacted;
  const before = String(src.firstOffset - 5);
  for (const args of [['replay', '--until', before], ['recover', '--until', before, '--out', join(root, 'never'), '--dry-run']]) {
    const r = await runTapeq([...args, '--dir', src.dir]);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.stderr, `offset ${before} is before the log's first record (offset ${src.firstOffset}): records [0, ${src.firstOffset}) are gone`);
    t.notMatch(r.stderr, /snapshot at offset/, 'and asks for no snapshot, which could not help');
  }
});

t.test('recover-into-the-working-directory-is-refused-in-one-line-not-a-stack-trace', async (t) => {
  // `cd new-data && tapeq recover … --out .`: the directory is empty, as the README asks, but
  // the finished copy is renamed into place, and `.` cannot be removed: EINVAL and a stack trace.
  const cwd = await tempDir(t, 'tapeq-pitr-cwd-');
  for (const out of ['.', './', cwd]) {
    const r = await runTapeq(['recover', '--dir', w.dir, '--until', '5', '--out', out], {}, cwd);
    t.equal(r.code, 1, `--out ${out}`);
    t.match(r.stderr, /^tapeq recover: --out .* is the working directory: recovery renames the new data directory into place; run it from elsewhere or name a new directory\n$/);
    t.same(await readdir(cwd), [], 'nothing written');
  }
});
