import t, { type Test } from 'tap';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotHeaderBytes } from '../../src/snapshot/format.js';
import { writeStateFile } from '../../src/snapshot/format-v2.js';
import { BackoffType, FailOutcome, JobState, type JobSpec, type RecordBody } from '../../src/record/types.js';
import {
  listSnapshots,
  loadNewestSnapshot,
  loadNewestState,
  snapshotFileName,
  writeSnapshot,
  writeStateSnapshot,
} from '../../src/snapshot/store.js';
import { apply, createState, exportState, type State } from '../../src/state/index.js';
import { emptyImage, fullImage } from './images.js';
import { smallPushDraft } from '../fixtures/records.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-snap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function collect(): { lines: string[]; logger: (line: string) => void } {
  const lines: string[] = [];
  return { lines, logger: (line) => lines.push(line) };
}

t.test('write-then-load-returns-the-newest', async (t) => {
  const dir = await tempDir(t);
  await writeSnapshot(dir, fullImage(10));
  const file = await writeSnapshot(dir, fullImage(20));
  t.equal(file, join(dir, snapshotFileName(20)));
  t.equal(snapshotFileName(20), 'snapshot-00000000000000000020.snap');
  const { lines, logger } = collect();
  const loaded = await loadNewestSnapshot(dir, logger);
  t.strictSame(loaded, { image: fullImage(20), file });
  t.strictSame(lines, []);
});

t.test('empty-image-file-matches-the-documented-worked-example', async (t) => {
  const dir = await tempDir(t);
  const file = await writeSnapshot(dir, emptyImage());
  const bytes = await readFile(file);
  t.equal(bytes.length, snapshotHeaderBytes + 13);
  t.equal(bytes.subarray(0, 8).toString('latin1'), 'TAPEQSNP');
});

t.test('prune-keeps-the-newest-valid-snapshots-only-after-the-new-one-is-durable', async (t) => {
  const dir = await tempDir(t);
  for (const offset of [1, 2, 3, 4]) await writeSnapshot(dir, emptyImage(offset), { kept: 2 });
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [4, 3]);
  // A corrupt newest does not count as kept: 3 and 5 are the two valid ones, 4 is not deleted.
  await writeFile(join(dir, snapshotFileName(4)), 'garbage');
  await writeSnapshot(dir, emptyImage(5), { kept: 2 });
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [5, 4, 3]);
  await writeSnapshot(dir, emptyImage(6), { kept: 2 });
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [6, 5]);
});

t.test('snapshot-write-is-atomic-tmp-never-loaded', async (t) => {
  const dir = await tempDir(t);
  const older = await writeSnapshot(dir, fullImage(10));
  // A crash after writing (even completely) but before the rename leaves only a .tmp file.
  const complete = await readFile(await writeSnapshot(await tempDir(t), fullImage(30)));
  await writeFile(join(dir, `${snapshotFileName(30)}.tmp`), complete);
  await writeFile(join(dir, `${snapshotFileName(40)}.tmp`), complete.subarray(0, 20));
  const { lines, logger } = collect();
  const readOnly = await loadNewestSnapshot(dir, logger, { readOnly: true });
  t.equal(readOnly?.file, older, 'the tmp file is never a candidate');
  t.equal((await readdir(dir)).length, 3, 'read-only load leaves the directory alone');
  const loaded = await loadNewestSnapshot(dir, logger);
  t.equal(loaded?.file, older);
  t.strictSame(await readdir(dir), [snapshotFileName(10)], 'leftover tmp files are removed');
  t.equal(lines.length, 2);
  t.match(lines[0], /removed unfinished snapshot .*\.tmp/);
  t.notOk((await readdir(dir)).some((n) => n.endsWith('.tmp')), 'writeSnapshot leaves no tmp behind');
});

async function corruptCase(t: Test, damage: (file: string) => Promise<void>, why: RegExp): Promise<void> {
  const dir = await tempDir(t);
  const older = await writeSnapshot(dir, fullImage(10));
  const newest = await writeSnapshot(dir, fullImage(20));
  await damage(newest);
  const { lines, logger } = collect();
  const loaded = await loadNewestSnapshot(dir, logger);
  t.equal(loaded?.file, older, 'falls back to the older snapshot');
  t.strictSame(loaded?.image, fullImage(10));
  t.equal(lines.length, 1);
  t.match(lines[0], new RegExp(`^snapshot ${newest} is unusable: .*; trying older$`));
  t.match(lines[0], why);
}

async function flipByte(file: string, at: (size: number) => number): Promise<void> {
  const bytes = await readFile(file);
  const i = at(bytes.length);
  bytes[i] = (bytes[i] ?? 0) ^ 0x10;
  await writeFile(file, bytes);
}

t.test('corrupt-newest-snapshot-falls-back-to-older', async (t) => {
  t.test('payload byte flipped', (t) => corruptCase(t, (f) => flipByte(f, (n) => n - 40), /payload checksum mismatch/));
  t.test('covered offset flipped', (t) => corruptCase(t, (f) => flipByte(f, () => 16), /header checksum mismatch/));
  t.test('truncated', async (t) =>
    corruptCase(t, async (f) => truncate(f, (await stat(f)).size - 1), /announces/));
  t.test('truncated inside the header', (t) => corruptCase(t, (f) => truncate(f, 30), /shorter than the 48-byte header/));
  t.test('bad magic', (t) => corruptCase(t, (f) => flipByte(f, () => 0), /bad magic/));
  t.test('trailing garbage', async (t) =>
    corruptCase(t, async (f) => writeFile(f, Buffer.concat([await readFile(f), Buffer.from('x')])), /announces/));
  t.test('renamed to another offset', async (t) =>
    corruptCase(t, async (f) => writeFile(f, await readFile(join(f, '..', snapshotFileName(10)))), /file name says offset 20/));
});

t.test('no-valid-snapshot-means-full-replay', async (t) => {
  const dir = await tempDir(t);
  const { lines, logger } = collect();
  t.equal(await loadNewestSnapshot(join(dir, 'missing'), logger), null, 'no directory');
  t.equal(await loadNewestSnapshot(dir, logger), null, 'empty directory');
  const only = await writeSnapshot(dir, fullImage(5));
  await writeFile(only, 'not a snapshot');
  t.equal(await loadNewestSnapshot(dir, logger), null, 'only a corrupt one');
  t.equal(lines.length, 1);
  t.match(lines[0], /is unusable: file is 14 bytes/);
});

t.test('max-offset-picks-the-newest-at-or-below', async (t) => {
  const dir = await tempDir(t);
  for (const offset of [10, 20]) await writeSnapshot(dir, emptyImage(offset), { kept: 5 });
  const { logger } = collect();
  t.equal((await loadNewestSnapshot(dir, logger, { maxOffset: 19 }))?.image.offset, 10);
  t.equal((await loadNewestSnapshot(dir, logger, { maxOffset: 20 }))?.image.offset, 20);
  t.equal(await loadNewestSnapshot(dir, logger, { maxOffset: 9 }), null);
});

/** A state with every container in use: waiting (with priorities and options), delayed, active,
 *  waiting for children, completed, failed, a paused queue and a worker registration. */
function mixedState(): State {
  const state = createState();
  const spec = (id: string, queue: string, over: Partial<JobSpec> = {}): JobSpec => ({
    id, queue, name: 'default', data: `{"id":"${id}"}`, priority: 0, runAt: 1000, maxAttempts: 3, backoff: 1000,
    backoffType: BackoffType.EXPONENTIAL, ttl: null, timeout: null, uniqueKey: '', customId: false, tags: [],
    groupId: '', lifo: false, removeOnComplete: null, removeOnFail: null, dependsOn: [], repeat: null, maxStalled: null,
    ...over,
  });
  const bodies: RecordBody[] = [
    { type: 'pushed', job: spec('a', 'q1'), state: JobState.WAITING, pendingDeps: [] },
    { type: 'pushed', job: spec('b', 'q1', { priority: 5, name: 'named', tags: ['t'], ttl: 9_000 }), state: JobState.WAITING, pendingDeps: [] },
    { type: 'pushed', job: spec('c', 'q1', { uniqueKey: 'k' }), state: JobState.WAITING, pendingDeps: [] },
    { type: 'pushed', job: spec('d', 'q2', { runAt: 99_000 }), state: JobState.DELAYED, pendingDeps: [] },
    { type: 'pushed', job: spec('e', 'q2', { dependsOn: ['a'] }), state: JobState.WAITING_CHILDREN, pendingDeps: ['a'] },
    { type: 'pushed', job: spec('f', 'q1'), state: JobState.WAITING, pendingDeps: [] },
    { type: 'pulled', queue: 'q1', jobId: 'b', token: 'tok', owner: 'w', lockMs: 30_000 },
    { type: 'pulled', queue: 'q1', jobId: 'c', token: 'tok2', owner: 'w', lockMs: 30_000 },
    { type: 'completed', queue: 'q1', jobId: 'c', result: '{"ok":1}', token: 'tok2' },
    { type: 'pulled', queue: 'q1', jobId: 'f', token: 'tok3', owner: 'w', lockMs: 30_000 },
    { type: 'failed', queue: 'q1', jobId: 'f', error: 'boom', outcome: FailOutcome.DEAD, runAt: 0, retryDelay: 0, token: 'tok3', cause: 'ack' },
    { type: 'progressed', queue: 'q1', jobId: 'b', progress: 12.5, message: 'going', lockMs: 0 },
    { type: 'logged', queue: 'q1', jobId: 'b', message: 'line' },
    { type: 'queuePaused', queue: 'q3' },
    { type: 'workerRegistered', queue: 'q2', config: '{"url":"http://x"}' },
  ];
  for (const body of bodies) apply(state, { offset: state.offset, timestamp: 1000 + state.offset, actor: null, body });
  return state;
}

/** A one-record snapshot to fall back to when a newer one is damaged. */
async function writeOlderSnapshot(dir: string): Promise<string> {
  const older = createState();
  apply(older, { offset: 0, timestamp: 5, actor: null, body: { type: 'queuePaused', queue: 'q' } });
  return writeStateSnapshot(dir, older);
}

t.test('format-2-state-round-trips-and-a-bad-block-falls-back-to-an-older-one', async (t) => {
  const dir = await tempDir(t);
  const olderFile = await writeOlderSnapshot(dir);
  const state = mixedState();
  const file = await writeStateSnapshot(dir, state);
  t.equal((await readFile(file)).readUInt32LE(8), 2, 'format version 2');
  const { lines, logger } = collect();
  const loaded = await loadNewestState(dir, logger);
  t.equal(loaded?.file, file);
  t.strictSame(exportState(loaded?.state ?? createState()), exportState(state), 'state round-trips');
  t.strictSame((await loadNewestSnapshot(dir, logger))?.image, exportState(state), 'and reads as an image');
  const bytes = await readFile(file);
  bytes[bytes.length - 3] = (bytes[bytes.length - 3] as number) ^ 0x40;
  await writeFile(file, bytes);
  t.equal((await loadNewestState(dir, logger))?.file, olderFile);
  t.equal(lines.length, 1);
  t.match(lines[0], /block at byte \d+: checksum mismatch; trying older/);
});

t.test('format-1-files-load-as-states', async (t) => {
  const dir = await tempDir(t);
  const state = mixedState();
  const file = await writeSnapshot(dir, exportState(state));
  t.equal((await readFile(file)).readUInt32LE(8), 1, 'format version 1');
  const loaded = await loadNewestState(dir, () => {});
  t.strictSame(exportState(loaded?.state ?? createState()), exportState(state));
});

t.test('format-2-blocks-read-ahead-round-trip-and-a-damaged-middle-block-is-named', async (t) => {
  const dir = await tempDir(t);
  const olderFile = await writeOlderSnapshot(dir);
  const state = createState();
  for (let i = 0; i < 10_000; i++) apply(state, { offset: i, ...smallPushDraft(i) });
  const file = await writeStateSnapshot(dir, state);
  const pristine = await readFile(file);
  // Block frames: [u32 rows length, u32 checksum] after the 48-byte header and the head.
  const frames: number[] = [];
  for (let at = snapshotHeaderBytes + 4 + pristine.readUInt32LE(snapshotHeaderBytes); at < pristine.length; at += 8 + pristine.readUInt32LE(at)) {
    frames.push(at);
  }
  t.ok(frames.length >= 3, `${frames.length} blocks`);
  const loaded = await loadNewestState(dir, () => {});
  t.equal(loaded?.file, file);
  t.strictSame(exportState(loaded?.state ?? createState()), exportState(state), 'every block read, in order');

  const middle = frames[1] as number;
  const damaged: Array<[string, (bytes: Buffer) => void, RegExp]> = [
    ['a row byte', (b) => (b[middle + 100] = (b[middle + 100] as number) ^ 0x10), new RegExp(`block at byte ${middle}: checksum mismatch`)],
    ['its length', (b) => b.writeUInt32LE(pristine.length, middle), new RegExp(`block at byte ${middle} runs past the end of the file`)],
  ];
  for (const [what, damage, expected] of damaged) {
    const bytes = Buffer.from(pristine);
    damage(bytes);
    await writeFile(file, bytes);
    const { lines, logger } = collect();
    t.equal((await loadNewestState(dir, logger))?.file, olderFile, `${what} damaged: the older snapshot is used`);
    t.match(lines.join('\n'), expected);
  }
});

t.test('an-aborted-load-stops-between-blocks-and-rejects-with-the-reason-logging-nothing', async (t) => {
  const dir = await tempDir(t);
  await writeOlderSnapshot(dir);
  const state = createState();
  for (let i = 0; i < 10_000; i++) apply(state, { offset: i, ...smallPushDraft(i) });
  await writeStateSnapshot(dir, state);
  const { lines, logger } = collect();
  const reason = new Error('the log failed to open');
  const before = new AbortController();
  before.abort(reason);
  await t.rejects(loadNewestState(dir, logger, { signal: before.signal }), reason, 'aborted before it starts');
  // Aborted while the first block is read: the next block check stops it, and the older snapshot
  // is not tried.
  const during = new AbortController();
  const loading = loadNewestState(dir, logger, { signal: during.signal });
  setImmediate(() => during.abort(reason));
  await t.rejects(loading, reason, 'aborted mid-load');
  t.strictSame(lines, [], 'an abandoned load is not reported as an unusable snapshot');
});

t.test('a-snapshot-written-through-short-writes-is-whole', async (t) => {
  // A filling disk makes write(2) write less than asked and report it, without an error.
  const dir = await tempDir(t);
  const state = mixedState();
  const file = join(dir, snapshotFileName(state.offset));
  const handle = await open(file, 'w');
  const shortWrites = {
    write: (buffer: Uint8Array, offset: number, length: number, position: number) =>
      handle.write(buffer, offset, Math.min(length, 7), position),
    writev: async (buffers: Uint8Array[], position: number) => {
      const first = buffers[0] ?? new Uint8Array(0);
      const { bytesWritten } = await handle.write(first, 0, Math.min(first.length, 7), position);
      return { bytesWritten, buffers };
    },
  } as unknown as FileHandle;
  try {
    await writeStateFile(shortWrites, state);
  } finally {
    await handle.close();
  }
  const loaded = await loadNewestState(dir, () => {});
  t.equal(loaded?.file, file, 'the file verifies');
  t.strictSame(exportState(loaded?.state ?? createState()), exportState(state));
});

t.test('a-failed-snapshot-write-leaves-no-tmp-file', async (t) => {
  const dir = await tempDir(t);
  const state = mixedState();
  // The rename cannot replace a non-empty directory: the write fails after the .tmp is complete.
  await mkdir(join(dir, snapshotFileName(state.offset), 'occupied'), { recursive: true });
  await t.rejects(writeStateSnapshot(dir, state));
  t.strictSame((await readdir(dir)).filter((name) => name.endsWith('.tmp')), [], 'its bytes do not stay on the disk');
});
