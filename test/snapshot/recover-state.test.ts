import t from 'tap';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Log } from '../../src/log/log.js';
import { exportState, type State } from '../../src/state/index.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { writeSnapshot, writeStateSnapshot } from '../../src/snapshot/store.js';
import { manualClock, replayLog, startBroker } from '../fixtures/broker.js';
import { digestOf, prng, runWorkload } from './workload.js';

const seed = Number(process.env.TAPEQ_SEED ?? Date.now() % 1_000_000);
t.comment(`seed ${seed} (TAPEQ_SEED=${seed} replays it)`);

function collect(): { lines: string[]; logger: (line: string) => void } {
  const lines: string[] = [];
  return { lines, logger: (line) => lines.push(line) };
}

const writers: Array<[string, (dir: string, state: State) => Promise<string>]> = [
  ['format-1-image', (dir, state) => writeSnapshot(dir, exportState(state))],
  ['format-2-blocks', (dir, state) => writeStateSnapshot(dir, state)],
];

for (const [format, write] of writers) t.test(`snapshot-plus-tail-equals-full-replay-${format}`, async (t) => {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, segmentBytes: 16 * 1024 });
  t.teardown(() => f.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  const random = prng(seed);
  const { lines, logger } = collect();

  await runWorkload(f.broker, 600, random, clock.advance);
  const mid = await loadState({ log: f.log, dir: snapshots, logger });
  t.equal(mid.fromSnapshot, null, 'no snapshot yet: full replay');
  t.equal(mid.replayed, f.log.durableOffset);
  t.equal(digestOf(mid.state), digestOf(f.broker.state), 'full replay = live state');
  const file = await write(snapshots, mid.state);

  await runWorkload(f.broker, 600, random, clock.advance);
  const end = f.log.durableOffset;
  const loaded = await loadState({ log: f.log, dir: snapshots, logger });
  t.equal(loaded.fromSnapshot, file);
  t.equal(loaded.replayed, end - mid.offset, 'only the tail is folded');
  t.equal(loaded.offset, end);
  const full = await replayLog(f.log);
  t.equal(digestOf(loaded.state), digestOf(full), 'snapshot + tail = full replay');
  t.equal(digestOf(loaded.state), digestOf(f.broker.state), 'snapshot + tail = live state');
  // The server hands loadState its log while open() still runs: the snapshot is decoded meanwhile.
  const overlapped = await loadState({ log: Promise.resolve(f.log), dir: snapshots, logger });
  t.equal(overlapped.fromSnapshot, file);
  t.equal(overlapped.replayed, loaded.replayed);
  t.equal(digestOf(overlapped.state), digestOf(loaded.state), 'decoded while the log opens: the same state');
  t.ok(f.log.segments().length > 2, 'the workload spans several segments');
  const types = new Set<string>();
  for await (const record of f.log.read(0)) types.add(record.body.type);
  for (const type of ['pushed', 'pulled', 'completed', 'failed', 'progressed', 'logged', 'removed', 'queuePaused']) {
    t.ok(types.has(type), `workload wrote ${type} records`);
  }

  // Point in time: until between the snapshot and the end, and until before the snapshot.
  for (const until of [mid.offset + Math.floor((end - mid.offset) / 2), Math.floor(mid.offset / 3)]) {
    const pit = await loadState({ log: f.log, dir: snapshots, logger, until, readOnly: true });
    const expected = digestOf(await replayPrefix(f.log, until));
    t.equal(digestOf(pit.state), expected, `point in time ${until}`);
    t.equal(pit.fromSnapshot, until >= mid.offset ? file : null);
  }
  t.strictSame(lines, []);
});

async function replayPrefix(log: Log, until: number) {
  const { createState, apply } = await import('../../src/state/index.js');
  const state = createState();
  for await (const record of log.read(0, until)) apply(state, record);
  return state;
}

t.test('snapshot-beyond-the-log-end-is-reported-and-an-older-one-used', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now });
  t.teardown(() => f.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  const random = prng(seed + 1);
  await runWorkload(f.broker, 100, random, clock.advance);
  const { lines, logger } = collect();
  const first = await loadState({ log: f.log, dir: snapshots, logger });
  const older = await writeSnapshot(snapshots, exportState(first.state));
  // A snapshot from a future the log no longer has (lost tail): offset beyond durableOffset.
  const ahead = exportState(first.state);
  ahead.offset = f.log.durableOffset + 50;
  const aheadFile = await writeSnapshot(snapshots, ahead);
  for (const log of [f.log, Promise.resolve(f.log)]) {
    lines.length = 0;
    const loaded = await loadState({ log, dir: snapshots, logger, readOnly: true });
    t.equal(loaded.fromSnapshot, older, 'the snapshot decoded while the log opened is dropped for the older one');
    t.equal(digestOf(loaded.state), digestOf(f.broker.state));
    t.equal(lines.length, 1);
    t.match(lines[0], `snapshot ${aheadFile} covers offsets up to ${ahead.offset} but the log ends at ${f.log.durableOffset} (the log lost its tail); trying older`);
  }
  t.ok((await readdir(snapshots)).includes(aheadFile.split('/').at(-1) as string), 'a read-only load leaves it where it is');

  // The server's load moves it aside: after the log grows past its offset, it must not come back
  // and replace the records written since with the lost ones.
  lines.length = 0;
  const served = await loadState({ log: Promise.resolve(f.log), dir: snapshots, logger });
  t.equal(served.fromSnapshot, older);
  t.equal(lines.length, 1);
  t.match(lines[0], /\(the log lost its tail\); moved to .*beyond-log-\d+ so that it is never used once the log grows past it/);
  const names = await readdir(snapshots);
  t.notOk(names.includes(aheadFile.split('/').at(-1) as string), 'moved out of the snapshots the loader lists');
  const aside = names.find((n) => n.startsWith('beyond-log-'));
  t.ok(aside !== undefined && (await readdir(join(snapshots, aside))).length === 1, 'kept, not deleted');
  while (f.log.durableOffset <= ahead.offset) await runWorkload(f.broker, 20, random, clock.advance);
  const later = await loadState({ log: f.log, dir: snapshots, logger });
  t.equal(later.fromSnapshot, older, 'the log grew past it: still the older snapshot plus the tail');
  t.equal(digestOf(later.state), digestOf(f.broker.state), 'the records written since are all there');
});

t.test('a-snapshot-of-another-log-at-offsets-this-log-has-is-refused-and-an-older-one-used', async (t) => {
  // Two servers' logs with the same offsets: the same workload an hour apart.
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now });
  t.teardown(() => f.cleanup());
  const otherClock = manualClock(1_700_000_000_000 + 3_600_000);
  const other = await startBroker({ start: false, clock: otherClock.now });
  t.teardown(() => other.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  await runWorkload(f.broker, 60, prng(seed + 2), clock.advance);
  const own = await loadState({ log: f.log, dir: snapshots, logger: () => {} });
  const older = await writeStateSnapshot(snapshots, own.state);
  await runWorkload(f.broker, 60, prng(seed + 3), clock.advance);
  await runWorkload(other.broker, 200, prng(seed + 4), otherClock.advance);
  // The other log's state at an offset this log also has, copied in as if from its backup.
  const theirs = await loadState({ log: other.log, dir: await mkdtemp(join(tmpdir(), 'tapeq-snaps-')), logger: () => {}, until: f.log.durableOffset - 5 });
  t.ok(theirs.offset > own.offset && theirs.offset <= f.log.durableOffset, 'newer than this log\'s own snapshot, at an offset this log has');
  const foreign = await writeStateSnapshot(snapshots, theirs.state);
  const { lines, logger } = collect();
  for (const log of [f.log, Promise.resolve(f.log)]) {
    lines.length = 0;
    const loaded = await loadState({ log, dir: snapshots, logger, readOnly: true });
    t.equal(loaded.fromSnapshot, older, 'the older snapshot of this log, plus the tail');
    t.equal(digestOf(loaded.state), digestOf(f.broker.state), 'the state is this log\'s');
    t.equal(lines.length, 1, lines.join('\n'));
    t.match(lines[0], `snapshot ${foreign} was not taken of this log (the last record it folded, offset ${theirs.offset - 1}, is of 2023-11-14T`);
    t.match(lines[0], /; this log's record \d+ is of 2023-11-14T.*\); trying older$/);
  }
  t.ok((await readdir(snapshots)).includes(foreign.split('/').at(-1) as string), 'a read-only load leaves it where it is');
  lines.length = 0;
  const served = await loadState({ log: f.log, dir: snapshots, logger });
  t.equal(served.fromSnapshot, older);
  t.match(lines[0], /was not taken of this log .*; moved to .*other-log-\d+, trying older$/);
  const names = await readdir(snapshots);
  t.notOk(names.includes(foreign.split('/').at(-1) as string), 'moved out of the snapshots the loader lists');
  const aside = names.find((n) => n.startsWith('other-log-'));
  t.ok(aside !== undefined && (await readdir(join(snapshots, aside))).length === 1, 'kept, not deleted');
});

t.test('a-snapshot-of-this-log-passes-the-check-at-every-offset-it-can-be-taken', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, segmentBytes: 16 * 1024 });
  t.teardown(() => f.cleanup());
  await runWorkload(f.broker, 150, prng(seed + 5), clock.advance);
  for (const until of [1, 2, Math.floor(f.log.durableOffset / 2), f.log.durableOffset]) {
    const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
    t.teardown(() => rm(snapshots, { recursive: true, force: true }));
    const at = await loadState({ log: f.log, dir: snapshots, logger: () => {}, until });
    const file = await writeStateSnapshot(snapshots, at.state);
    const { lines, logger } = collect();
    const loaded = await loadState({ log: f.log, dir: snapshots, logger });
    t.equal(loaded.fromSnapshot, file, `the snapshot at ${until} is used`);
    t.same(lines, []);
    t.equal(digestOf(loaded.state), digestOf(f.broker.state));
  }
});

t.test('a-log-that-fails-to-open-fails-the-load-with-its-own-error', async (t) => {
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  const refused = Object.assign(new Error('corrupt record in 00000000000000000000.log'), { code: 'LOG_CORRUPT' });
  await t.rejects(loadState({ log: Promise.reject(refused), dir: snapshots, logger: () => {} }), refused);
});

t.test('snapshot-below-the-log-start-with-removed-segments-is-an-error-naming-the-range', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now, segmentBytes: 4 * 1024 });
  t.teardown(() => f.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  await runWorkload(f.broker, 300, prng(seed + 2), clock.advance);
  const { lines, logger } = collect();
  const early = await loadState({ log: f.log, dir: snapshots, logger, until: 5 });
  await writeSnapshot(snapshots, exportState(early.state));
  // Remove history past the snapshot (as a careless operator or a foreign tool could).
  const removed = await f.log.dropSegmentsBefore(f.log.durableOffset, Number.POSITIVE_INFINITY);
  t.ok(removed.length > 0 && f.log.firstOffset > 5, `log now starts at ${f.log.firstOffset}`);
  for (const log of [f.log, Promise.resolve(f.log)]) {
    await t.rejects(loadState({ log, dir: snapshots, logger }), {
      code: 'RECOVERY_IMPOSSIBLE',
      message: new RegExp(`records \\[0, ${f.log.firstOffset}\\) are gone`),
    });
  }
  t.match(lines.join('\n'), `but the log starts at ${f.log.firstOffset} (records [5, ${f.log.firstOffset}) were removed)`);
  t.ok((await readdir(snapshots)).length === 1, 'nothing deleted by the failed load');
});

t.test('an-unusable-snapshot-is-reported-once-when-decoded-while-the-log-opens', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ start: false, clock: clock.now });
  t.teardown(() => f.cleanup());
  const snapshots = await mkdtemp(join(tmpdir(), 'tapeq-snaps-'));
  t.teardown(() => rm(snapshots, { recursive: true, force: true }));
  await runWorkload(f.broker, 100, prng(seed), clock.advance);
  const file = await writeStateSnapshot(snapshots, (await loadState({ log: f.log, dir: snapshots, logger: () => {} })).state);
  await writeFile(file, 'garbage');
  const { lines, logger } = collect();
  const loaded = await loadState({ log: Promise.resolve(f.log), dir: snapshots, logger });
  t.equal(loaded.fromSnapshot, null, 'full replay');
  t.equal(digestOf(loaded.state), digestOf(f.broker.state));
  t.equal(lines.length, 1, lines.join('\n'));
  t.match(lines[0], /is unusable: .*; trying older/);
});
