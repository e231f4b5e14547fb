import t, { type Test } from 'tap';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobHistory } from '../../src/history/history.js';
import { exportState } from '../../src/state/index.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { compact } from '../../src/snapshot/retention.js';
import { snapshotFileName, writeSnapshot } from '../../src/snapshot/store.js';
import { manualClock, startBroker, type BrokerFixture } from '../fixtures/broker.js';
import { digestOf, prng, runWorkload } from './workload.js';
import { makeFutureSchema } from './images.js';

const day = 24 * 60 * 60 * 1_000;
const quiet = () => undefined;

async function setup(t: Test): Promise<{ f: BrokerFixture; snapshots: string; clock: ReturnType<typeof manualClock> }> {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, segmentBytes: 4 * 1024 });
  t.teardown(() => f.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  await runWorkload(f.broker, 400, prng(7), clock.advance);
  t.ok(f.log.segments().length >= 5, `${f.log.segments().length} segments`);
  return { f, snapshots, clock };
}

async function snapshotAt(f: BrokerFixture, dir: string, offset: number): Promise<string> {
  const { state } = await loadState({ log: f.log, dir, logger: quiet, until: offset });
  return writeSnapshot(dir, exportState(state), { kept: 5 });
}

/** Two snapshots (retention wants one to fall back to) that cover every sealed segment: at the
 *  active segment's start and at the log's end. */
async function snapshotsCoveringSealed(t: Test, f: BrokerFixture, dir: string): Promise<void> {
  await f.broker.push('alpha', { data: 'tail' }, { actor: null });
  const activeBase = f.log.segments().at(-1)?.baseOffset ?? 0;
  t.ok(f.log.durableOffset > activeBase, 'the active segment holds a record');
  await snapshotAt(f, dir, activeBase);
  await snapshotAt(f, dir, f.log.durableOffset);
}

t.test('retention-never-touches-active-or-unsnapshotted-segments', async (t) => {
  const { f, snapshots, clock } = await setup(t);
  const far = clock.now() + 365 * day;
  const before = f.log.segments();

  t.strictSame(await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, now: far }), [], 'no snapshot: keep all');

  const middle = before[Math.floor(before.length / 2)];
  if (middle === undefined) throw new Error('segments');
  const boundary = middle.baseOffset + 1; // inside the middle segment
  await snapshotAt(f, snapshots, boundary);
  await snapshotAt(f, snapshots, boundary + 1);
  await writeFile(join(snapshots, snapshotFileName(2)), 'corrupt: must not count as the oldest kept');

  t.strictSame(
    await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 30 * day, now: far - 365 * day }),
    [],
    'nothing older than the retention time',
  );
  const removed = await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, now: far });
  const expected = before.filter((s) => s.nextOffset <= boundary).map((s) => s.file);
  t.strictSame(removed, expected, 'exactly the segments wholly before the oldest kept snapshot');
  t.equal(f.log.segments()[0]?.baseOffset, middle.baseOffset, 'the segment holding the snapshot offset stays');

  await snapshotAt(f, snapshots, f.log.durableOffset);
  const last = f.log.segments().at(-1);
  await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, now: far });
  t.equal(f.log.segments()[0]?.baseOffset, middle.baseOffset, 'oldest kept snapshot still bounds removal');
  await snapshotAt(f, snapshots, f.log.durableOffset - 1);
  await rm(join(snapshots, snapshotFileName(boundary)));
  await rm(join(snapshots, snapshotFileName(boundary + 1)));
  await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, now: far });
  t.strictSame(f.log.segments().at(-1), last, 'the active segment is never removed, even when fully snapshotted');
  t.ok(f.log.segments().length >= 1);

  const loaded = await loadState({ log: f.log, dir: snapshots, logger: quiet });
  t.equal(digestOf(loaded.state), digestOf(f.broker.state), 'state still loads after compaction');
});

t.test('retention-keeps-what-a-fallback-needs-while-fewer-than-two-snapshots-are-readable', async (t) => {
  const { f, snapshots, clock } = await setup(t);
  const far = clock.now() + 365 * day;
  const before = f.log.segments();
  const only = await snapshotAt(f, snapshots, before[Math.floor(before.length / 2)]?.baseOffset ?? 0);
  t.strictSame(await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, now: far }), [], 'one snapshot: keep all');
  // Readable only by a newer build (schema 99, header checksum fixed): it verifies, yet no
  // fallback can load it.
  const future = await snapshotAt(f, snapshots, f.log.durableOffset);
  await makeFutureSchema(future);
  t.strictSame(await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, now: far }), [], 'one readable snapshot: keep all');
  t.equal(f.log.firstOffset, 0);
  // The only snapshot then proves bad: the full replay still has every record.
  await writeFile(only, 'bit rot');
  const loaded = await loadState({ log: f.log, dir: snapshots, logger: quiet, readOnly: true });
  t.equal(loaded.fromSnapshot, null, 'full replay');
  t.equal(digestOf(loaded.state), digestOf(f.broker.state));
});

t.test('retention-moves-to-archive-dir', async (t) => {
  const { f, snapshots, clock } = await setup(t);
  const archive = await mkdtemp(join(tmpdir(), 'tapeq-archive-'));
  t.teardown(() => rm(archive, { recursive: true, force: true }));
  await snapshotsCoveringSealed(t, f, snapshots);
  const before = f.log.segments();
  const removed = await compact({
    log: f.log,
    snapshotsDir: snapshots,
    retentionMs: day,
    archiveDir: archive,
    now: clock.now() + 2 * day,
  });
  t.strictSame(removed, before.slice(0, -1).map((s) => s.file), 'every sealed segment');
  const archived = await readdir(archive);
  for (const file of removed) t.ok(archived.includes(file), `${file} archived`);
  const logFiles = await readdir(f.dir);
  for (const file of removed) t.notOk(logFiles.includes(file), `${file} gone from the log dir`);
  const loaded = await loadState({ log: f.log, dir: snapshots, logger: quiet });
  t.equal(digestOf(loaded.state), digestOf(f.broker.state));
});

/** Every `.jobindex` file in `dir`, by name. */
async function jobIndexFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.jobindex')).sort();
}

for (const mode of ['deleted', 'archived'] as const) {
  t.test(`retention-takes-each-segments-job-index-with-it-${mode}`, async (t) => {
    const { f, snapshots, clock } = await setup(t);
    const archive = mode === 'archived' ? await mkdtemp(join(tmpdir(), 'tapeq-archive-')) : undefined;
    if (archive !== undefined) t.teardown(() => rm(archive, { recursive: true, force: true }));
    await snapshotsCoveringSealed(t, f, snapshots);
    // The server's history writes a `.jobindex` beside every sealed segment; no query runs here.
    const history = new JobHistory({ log: f.log, writeFiles: true });
    history.start();
    const sealed = f.log.segments().slice(0, -1).map((s) => s.file.replace(/\.log$/, '.jobindex'));
    for (let waitedMs = 0; (await jobIndexFiles(f.dir)).length < sealed.length && waitedMs < 5_000; waitedMs += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await history.close();
    t.strictSame(await jobIndexFiles(f.dir), sealed, 'one job index per sealed segment');

    const removed = await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: 0, archiveDir: archive ?? null, now: clock.now() + day });

    t.equal(removed.length, sealed.length, 'every sealed segment');
    t.strictSame(await jobIndexFiles(f.dir), [], 'no job index left without its segment');
    if (archive !== undefined) t.strictSame(await jobIndexFiles(archive), sealed, 'archived beside their segments');
  });
}

/** A week of work in 6-hour rounds over a 2-day retention window: after each round a snapshot is
 *  written (pruned with `points` spread over the window) and retention runs, as the server does.
 *  Returns the live digest at the end of each round and how far back the log still starts. */
async function weekOfRounds(t: Test, points: number): Promise<{ f: BrokerFixture; snapshots: string; rounds: Array<{ offset: number; ts: number; digest: string }>; windowMs: number }> {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, segmentBytes: 4 * 1024, sync: 'always' });
  t.teardown(() => f.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  const windowMs = 2 * day;
  const spread = { windowMs, points };
  const random = prng(11);
  const rounds: Array<{ offset: number; ts: number; digest: string }> = [];
  for (let round = 0; round < 28; round++) {
    await runWorkload(f.broker, 30, random, clock.advance);
    rounds.push({ offset: f.log.durableOffset, ts: clock.now(), digest: digestOf(f.broker.state) });
    const { state } = await loadState({ log: f.log, dir: snapshots, logger: quiet, until: f.log.durableOffset });
    await writeSnapshot(snapshots, exportState(state), { kept: 2, spread, now: clock.now() });
    await compact({ log: f.log, snapshotsDir: snapshots, retentionMs: windowMs, now: clock.now() });
    clock.advance(6 * 60 * 60 * 1_000);
  }
  return { f, snapshots, rounds, windowMs };
}

t.test('point-in-time-recovery-reaches-every-point-of-the-retention-window-after-retention-ran', async (t) => {
  const { f, snapshots, rounds, windowMs } = await weekOfRounds(t, 4);
  const now = (rounds.at(-1) as { ts: number }).ts;
  t.ok(f.log.firstOffset > 0, `retention removed the log's beginning (it starts at offset ${f.log.firstOffset})`);
  const inWindow = rounds.filter((r) => r.ts >= now - windowMs);
  t.ok(inWindow.length >= 8, `${inWindow.length} points in the window`);
  for (const r of inWindow) {
    const loaded = await loadState({ log: f.log, dir: snapshots, logger: quiet, until: r.offset, readOnly: true });
    t.equal(digestOf(loaded.state), r.digest, `the state at offset ${r.offset} (${Math.round((now - r.ts) / 3_600_000)} h back) is rebuilt`);
  }
  const files = await readdir(snapshots);
  t.ok(files.length <= 2 + 4 + 2, `${files.length} snapshot files kept`);
  // Retention still removes: the log starts no earlier than the window, a step (12 h) and a round back.
  const before = rounds.filter((r) => r.ts < now - windowMs - 12 * 3_600_000 - 6 * 3_600_000);
  t.ok(before.length > 0 && f.log.firstOffset >= (before.at(-1) as { offset: number }).offset, 'the log kept is not much longer than the window');
});

t.test('without-spread-snapshots-recovery-reaches-back-only-to-the-older-of-the-two-newest', async (t) => {
  // The same week with SNAPSHOT_RECOVERY_POINTS=0: what the spread policy is for.
  const { f, snapshots, rounds, windowMs } = await weekOfRounds(t, 0);
  const now = (rounds.at(-1) as { ts: number }).ts;
  const start = rounds.find((r) => r.ts >= now - windowMs) as { offset: number };
  await t.rejects(
    loadState({ log: f.log, dir: snapshots, logger: quiet, until: start.offset, readOnly: true }),
    { code: 'RECOVERY_IMPOSSIBLE' },
    'the window\'s first point cannot be rebuilt',
  );
  t.equal((await readdir(snapshots)).length, 2);
});
