import t, { type Test } from 'tap';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { snapshotHeaderBytes } from '../../src/snapshot/format.js';
import { decodeHeader } from '../../src/snapshot/format.js';
import { readAtHandle, readStateFile, verifyStateFile, writeStateFile, type ReadAt } from '../../src/snapshot/format-v2.js';
import { encodeHead, encodeRows, type JobRow } from '../../src/snapshot/codec.js';
import { checksum32, initChecksum } from '../../src/log/checksum.js';
import { snapshotBlockBytesMax } from '../../src/constants.js';
import { BackoffType, FailOutcome, JobState, type JobSpec, type RecordBody } from '../../src/record/types.js';
import {
  listSnapshots,
  loadNewestSnapshot,
  loadNewestState,
  snapshotFileName,
  verifySnapshotFile,
  writeSnapshot,
  writeStateSnapshot,
} from '../../src/snapshot/store.js';
import { apply, createState, exportState, type State } from '../../src/state/index.js';
import { emptyImage, fullImage, makeFutureSchema } from './images.js';
import { plainSpec, smallPushDraft } from '../fixtures/records.js';
import { patchFsPromises } from '../log/helpers.js';

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

t.test('prune-with-a-spread-keeps-the-newest-valid-snapshot-before-the-window-as-anchor', async (t) => {
  const dir = await tempDir(t);
  const hour = 3_600_000;
  const spread = { windowMs: 8 * hour, points: 2 };
  // One snapshot an hour, offsets = hours; window 8 h, steps of 4 h.
  for (let h = 1; h <= 20; h++) await writeSnapshot(dir, emptyImage(h, h * hour), { kept: 2, spread, now: h * hour });
  // At 20 h: the newest two, 20 and 19; the window starts at 12 h, and 12 is the newest at or
  // before it (the anchor) and the oldest of the step [12, 16) (13 to 15 went as they came); the
  // step [16, 20) keeps 16.
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [20, 19, 16, 12]);
  await writeSnapshot(dir, emptyImage(21, 21 * hour), { kept: 2, spread, now: 21 * hour });
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [21, 20, 16, 12], 'from 13 h on, 12 is still the anchor; 20 starts the step [20, 24)');
  await writeFile(join(dir, snapshotFileName(12)), 'bit rot');
  await writeSnapshot(dir, emptyImage(22, 22 * hour), { kept: 2, spread, now: 22 * hour });
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [22, 21, 20, 16], 'an unreadable anchor is no anchor: removed, 16 is the oldest left');
  await writeSnapshot(dir, emptyImage(23, 23 * hour), { kept: 2, spread: null, now: 23 * hour });
  t.strictSame((await listSnapshots(dir)).map((e) => e.offset), [23, 22], 'no spread: only the newest two');
});

t.test('a-snapshot-this-build-cannot-read-never-counts-as-kept-by-pruning', async (t) => {
  for (const [format, write] of [
    ['format-1', (dir: string, offset: number) => writeSnapshot(dir, emptyImage(offset), { kept: 2 })],
    ['format-2', (dir: string, offset: number) => writeStateSnapshot(dir, Object.assign(createState(), { offset }), { kept: 2 })],
  ] as const) {
    const dir = await tempDir(t);
    const readable = await write(dir, 10);
    await makeFutureSchema(await write(dir, 20));
    await write(dir, 30);
    t.ok((await listSnapshots(dir)).some((e) => e.file === readable), `${format}: the older readable snapshot stays`);
    // The newest then proves bad: the fallback is the readable one, not the one of a newer schema.
    await writeFile(join(dir, snapshotFileName(30)), 'garbage');
    const { lines, logger } = collect();
    t.equal((await loadNewestState(dir, logger))?.file, readable, `${format}: falls back past the newer schema`);
    t.match(lines.join('\n'), /schema version 99/);
  }
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

t.test('a-leftover-tmp-the-load-cannot-remove-is-reported-and-the-load-goes-on', async (t) => {
  // A snapshot process killed mid-write left its .tmp, and the snapshots directory is not
  // writable now (ownership or permissions changed, a read-only mount): derived data that must
  // not keep the server from starting on the snapshot beside it.
  const dir = await tempDir(t);
  const newest = await writeSnapshot(dir, fullImage(10));
  const leftover = join(dir, `${snapshotFileName(20)}.tmp`);
  await writeFile(leftover, 'unfinished');
  patchFsPromises(t, 'rm', (real) => async (path, options) => {
    if (String(path).endsWith('.tmp')) throw Object.assign(new Error(`EACCES: permission denied, unlink '${String(path)}'`), { code: 'EACCES' });
    return real(path, options);
  });
  const { lines, logger } = collect();
  const loaded = await loadNewestState(dir, logger);
  t.equal(loaded?.file, newest, 'the snapshot beside it loads');
  t.equal(lines.length, 1);
  t.match(lines[0], new RegExp(`could not remove unfinished snapshot ${leftover}.*EACCES`));
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

/** Block lengths of a format-2 file, in order. */
function blockLengths(bytes: Buffer): number[] {
  const lengths: number[] = [];
  for (let at = snapshotHeaderBytes + 4 + bytes.readUInt32LE(snapshotHeaderBytes); at < bytes.length; at += 8 + bytes.readUInt32LE(at)) {
    lengths.push(bytes.readUInt32LE(at));
  }
  return lengths;
}

/** 120 jobs of 400 KB data, in every state a row can have: waiting (cold rows), completed and
 *  failed (with a 400 KB result or error), delayed, active (with logs), waiting for children. */
function largeJobsState(): State {
  const state = createState();
  const big = (i: number) => `"${String(i).padStart(6, '0')}${'x'.repeat(400_000)}"`;
  const add = (body: RecordBody) => apply(state, { offset: state.offset, timestamp: 1000 + state.offset, actor: null, body });
  for (let i = 0; i < 120; i++) {
    const id = `big-${i}`;
    const kind = i % 6;
    const runAt = kind === 3 ? 10_000_000 : 0;
    const state = kind === 3 ? JobState.DELAYED : kind === 5 ? JobState.WAITING_CHILDREN : JobState.WAITING;
    add({ type: 'pushed', job: plainSpec(id, `q${i % 2}`, big(i), runAt, kind === 5 ? { dependsOn: ['big-0'] } : {}), state, pendingDeps: kind === 5 ? ['big-0'] : [] });
    if (kind === 1 || kind === 2 || kind === 4) add({ type: 'pulled', queue: `q${i % 2}`, jobId: id, token: `t${i}`, owner: 'w', lockMs: 30_000 });
    if (kind === 1) add({ type: 'completed', queue: `q${i % 2}`, jobId: id, result: big(i), token: `t${i}` });
    if (kind === 2) add({ type: 'failed', queue: `q${i % 2}`, jobId: id, error: big(i), outcome: FailOutcome.DEAD, runAt: 0, retryDelay: 0, token: `t${i}`, cause: 'ack' });
    if (kind === 4) add({ type: 'logged', queue: `q${i % 2}`, jobId: id, message: 'y'.repeat(4_000) });
  }
  return state;
}

t.test('blocks-end-at-the-byte-bound-for-every-row-kind', async (t) => {
  const dir = await tempDir(t);
  const state = largeJobsState();
  const file = await writeStateSnapshot(dir, state);
  const lengths = blockLengths(await readFile(file));
  // About 64 MB of rows: four blocks or more, none past the bound by more than its last row.
  t.ok(lengths.length >= 4, `${lengths.length} blocks`);
  t.ok(lengths.every((b) => b < snapshotBlockBytesMax + 1_000_000), `block lengths ${lengths.join(', ')}`);
  const loaded = await loadNewestState(dir, () => {});
  t.equal(loaded?.file, file);
  t.strictSame(exportState(loaded?.state ?? createState()), exportState(state), 'the state round-trips');
});

/** A format-2 file as writers before snapshotBlockBytesMax made it: all rows in one block. */
async function writeOneBlockFile(file: string, rows: JobRow[], queues: string[]): Promise<void> {
  await initChecksum();
  const head = encodeHead({
    offset: 10,
    timestamp: 1010,
    jobCount: rows.length,
    queues: queues.map((name, i) => ({ name, paused: false, waitingCount: rows.filter((r) => r.queue === i).length, completedCount: 0, failedCount: 0 })),
    workers: [],
    stats: createState().stats,
  });
  const block = encodeRows(rows);
  const body = Buffer.alloc(4 + head.length + 8 + block.length);
  body.writeUInt32LE(head.length, 0);
  head.copy(body, 4);
  body.writeUInt32LE(block.length, 4 + head.length);
  body.writeUInt32LE(checksum32(block, 0, block.length), 8 + head.length);
  block.copy(body, 12 + head.length);
  const header = Buffer.alloc(snapshotHeaderBytes);
  header.write('TAPEQSNP', 0, 'latin1');
  header.writeUInt32LE(2, 8);
  header.writeUInt32LE(3, 12);
  header.writeBigUInt64LE(10n, 16);
  header.writeBigUInt64LE(1010n, 24);
  header.writeBigUInt64LE(BigInt(body.length), 32);
  header.writeUInt32LE(checksum32(head, 0, head.length), 40);
  header.writeUInt32LE(checksum32(header, 0, 44), 44);
  await writeFile(file, Buffer.concat([header, body]));
}

t.test('an-older-file-with-a-block-past-the-bound-verifies-piece-by-piece-and-loads', async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, snapshotFileName(10));
  const rows: JobRow[] = Array.from({ length: 100 }, (_, i) => ({
    id: `old-${i}`, queue: 0, name: null, data: `"${'z'.repeat(400_000)}"`, priority: 0, createdAt: 1000 + i, runAt: 1000 + i,
    state: JobState.WAITING, seq: i + 1, pendingDeps: [], options: null, run: null,
  }));
  await writeOneBlockFile(file, rows, ['old']);
  const bytes = await readFile(file);
  t.ok((blockLengths(bytes)[0] as number) > 2 * snapshotBlockBytesMax, 'one block of about 40 MB');
  const handle = await open(file, 'r');
  t.teardown(() => handle.close());
  const header = decodeHeader(bytes.subarray(0, snapshotHeaderBytes), bytes.length);
  let longestRead = 0;
  const reads = readAtHandle(handle);
  const spy: ReadAt = (position, length) => {
    longestRead = Math.max(longestRead, length);
    return reads(position, length);
  };
  await verifyStateFile(spy, bytes.length, header);
  t.ok(longestRead <= snapshotBlockBytesMax, `verifying read at most ${longestRead} bytes at once`);
  const loaded = await readStateFile(readAtHandle(handle), bytes.length, header);
  t.equal(loaded.jobs.size, 100, 'and it loads');
  t.equal(loaded.jobs.get('old-99')?.data.length, 400_002);
});

t.test('a-format-1-file-verifies-piece-by-piece-never-read-whole', async (t) => {
  // Retention verifies on the server's main thread: an older format-1 file (a state of a million
  // jobs is about 250 MB) must not be read into memory whole there.
  const dir = await tempDir(t);
  const image = fullImage(10);
  (image.jobs[0] as { data: string }).data = JSON.stringify('x'.repeat(snapshotBlockBytesMax + 1_000));
  const file = await writeSnapshot(dir, image);
  const fileBytes = (await stat(file)).size;
  const probe = await open(file, 'r');
  const proto = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const { readFile: wholeRead, read: pieceRead } = proto;
  let largest = 0;
  proto.readFile = async function (this: FileHandle, ...args: unknown[]) {
    const bytes = (await (wholeRead as (...a: unknown[]) => Promise<Buffer>).apply(this, args)) as Buffer;
    largest = Math.max(largest, bytes.length);
    return bytes;
  } as FileHandle['readFile'];
  proto.read = function (this: FileHandle, ...args: unknown[]) {
    largest = Math.max(largest, typeof args[2] === 'number' ? args[2] : 0);
    return (pieceRead as (...a: unknown[]) => unknown).apply(this, args);
  } as FileHandle['read'];
  t.teardown(() => {
    proto.readFile = wholeRead;
    proto.read = pieceRead;
  });
  t.equal((await verifySnapshotFile(file)).offset, 10);
  t.ok(largest <= snapshotBlockBytesMax, `largest read ${largest} bytes of a ${fileBytes}-byte file`);
  await flipByte(file, (n) => n - 3);
  await t.rejects(verifySnapshotFile(file), /payload checksum mismatch/);
});

t.test('a-snapshot-read-through-short-reads-loads', async (t) => {
  // One read() returns at most about 2 GiB, and any read may return less than asked.
  const dir = await tempDir(t);
  const state = mixedState();
  const file = await writeStateSnapshot(dir, state);
  const handle = await open(file, 'r');
  t.teardown(() => handle.close());
  const shortReads = {
    read: (buffer: Buffer, offset: number, length: number, position: number) => handle.read(buffer, offset, Math.min(length, 7), position),
  };
  const fileBytes = (await stat(file)).size;
  const header = decodeHeader(await readFile(file).then((b) => b.subarray(0, snapshotHeaderBytes)), fileBytes);
  const loaded = await readStateFile(readAtHandle(shortReads), fileBytes, header);
  t.strictSame(exportState(loaded), exportState(state));
});
