// Snapshot file format 2: the state written job by job in checksummed blocks, so that a snapshot
// is written and read without one giant buffer and loaded straight into a State (no StateImage,
// no id lookups, no whole-file checksum copy).
//
//   byte  width  field
//   ────  ─────  ───────────────────────────────────────────────────────────────────────────
//      0     48  header           as format 1 (format.ts) with formatVersion = 2,
//                                 schemaVersion = 3 (2 before Repeat.key; still read) and
//                                 payloadChecksum = xxh32 of `head`
//     48      4  headBytes  H     u32 LE
//     52      H  head             Avro SnapshotHead (schema-v3.json): offset, timestamp,
//                                 jobCount, queues with their container counts, workers, stats
//      …         blocks, to the end of the file, each:
//                  4  rowBytes B  u32 LE
//                  4  checksum    u32 LE, xxh32 (seed checksumSeed) of the B bytes
//                  B  rows        Avro array<JobRow>, at most jobsPerBlock rows
//
// Row order carries the container orders, so no id list is stored: for each queue of `head`, in
// order, its waitingCount rows in pull order, completedCount rows and failedCount rows oldest
// first; then every other job (delayed, active, waiting for children). A row's `queue` is an
// index into head.queues; its `state` must match the section it is in. The sum of rows must be
// jobCount and the blocks must end exactly at the end of the file.
//
// Both directions go one block at a time with an await between blocks, so neither the writer nor
// the reader holds the whole file in memory. The state must not change until writeStateFile
// resolves (the snapshot process owns its state). `initChecksum()` first.

import type { FileHandle } from 'node:fs/promises';
import { checksum32 } from '../log/checksum.js';
import { writeAll } from '../log/write-all.js';
import { expectPayloadBytes } from '../state/payloads.js';
import { jobNameDefault } from '../constants.js';
import { JobState } from '../record/types.js';
import {
  addColdJob,
  internOptions,
  Job,
  jobCount,
  NO_IDS,
  restoreJob,
  restoreQueue,
  restoreState,
  waitEntries,
  type JobOptions,
  type QueueState,
  type State,
} from '../state/index.js';
import {
  decodeHead,
  decodeRowsInto,
  encodeHead,
  encodeRows,
  rowsSchemaVersion,
  rowsSchemaVersionsRead,
  type JobRow,
  type QueueHead,
  type StoredJobRow,
} from './codec.js';
import { SnapshotCorruptError, snapshotFormatVersionBlocks, snapshotHeaderBytes, writeHeader, type SnapshotHeader } from './format.js';

/** Rows per block: big enough that per-block costs vanish, small enough to bound the buffers. */
const jobsPerBlock = 4_096;
const blockFrameBytes = 8;

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Queues in the canonical order of exportState (by name, empty unpaused ones left out). */
function queuesOf(state: State): QueueState[] {
  return [...state.queues.values()]
    .filter((q) => q.paused || jobCount(q) > 0)
    .sort((a, b) => compareText(a.name, b.name));
}

/** What a row is written from: a job, or a cold row's fields (coldRowOf). */
type RowSource = Pick<Job, 'id' | 'name' | 'data' | 'priority' | 'createdAt' | 'runAt' | 'state' | 'seq' | 'pendingDeps' | 'options' | 'run'>;

function rowOf(job: RowSource, queueIndex: number): JobRow {
  return {
    id: job.id,
    queue: queueIndex,
    name: job.name === jobNameDefault ? null : job.name,
    data: job.data,
    priority: job.priority,
    createdAt: job.createdAt,
    runAt: job.runAt,
    state: job.state,
    seq: job.seq,
    pendingDeps: job.pendingDeps,
    options: job.options,
    run: job.run,
  };
}

/** Row c of the state's ColdJobs as rowOf would write its job, without making the job. */
function coldRowOf(state: State, c: number, queueIndex: number): JobRow {
  return rowOf({ ...state.cold.row(c), state: JobState.WAITING, pendingDeps: NO_IDS, run: null }, queueIndex);
}

/** Jobs in file order with their queue index. */
function* rowsInOrder(state: State, queues: readonly QueueState[]): Generator<JobRow> {
  const indexOf = new Map(queues.map((q, i) => [q.name, i]));
  for (const [i, q] of queues.entries()) {
    for (const e of waitEntries(q.waiting)) yield typeof e === 'number' ? coldRowOf(state, e, i) : rowOf(e, i);
    for (const job of q.completed) yield rowOf(job, i);
    for (const job of q.failed) yield rowOf(job, i);
  }
  // made(): the cold rows, all waiting and written above, stay rows.
  for (const job of state.jobs.made()) {
    const s = job.state;
    if (s === JobState.WAITING || s === JobState.COMPLETED || s === JobState.FAILED) continue;
    const i = indexOf.get(job.queue);
    if (i === undefined) throw new Error(`writeStateFile: job ${job.id} of unknown queue ${job.queue}`);
    yield rowOf(job, i);
  }
}

/** Writes the whole file through `handle` (header last, once the payload size is known). */
export async function writeStateFile(handle: FileHandle, state: State): Promise<void> {
  const queues = queuesOf(state);
  const head = encodeHead({
    offset: state.offset,
    timestamp: state.timestamp,
    jobCount: state.jobs.size,
    queues: queues.map((q) => ({
      name: q.name,
      paused: q.paused,
      waitingCount: q.waiting.size,
      completedCount: q.completed.size,
      failedCount: q.failed.size,
    })),
    workers: [...state.workers.entries()].sort((a, b) => compareText(a[0], b[0])).map(([queue, config]) => ({ queue, config })),
    stats: { ...state.stats, seconds: state.stats.seconds.map((b) => ({ ...b })) },
  });
  let position = snapshotHeaderBytes;
  const headLength = Buffer.alloc(4);
  headLength.writeUInt32LE(head.length, 0);
  await writeAll(handle, headLength, position);
  await writeAll(handle, head, position + 4);
  position += 4 + head.length;

  let rows: JobRow[] = [];
  const flush = async () => {
    const bytes = encodeRows(rows);
    const frame = Buffer.alloc(blockFrameBytes);
    frame.writeUInt32LE(bytes.length, 0);
    frame.writeUInt32LE(checksum32(bytes, 0, bytes.length), 4);
    await writeAll(handle, frame, position);
    await writeAll(handle, bytes, position + blockFrameBytes);
    position += blockFrameBytes + bytes.length;
    rows = [];
  };
  for (const row of rowsInOrder(state, queues)) {
    rows.push(row);
    if (rows.length === jobsPerBlock) await flush();
  }
  if (rows.length > 0) await flush();

  const header = writeHeader({
    formatVersion: snapshotFormatVersionBlocks,
    schemaVersion: rowsSchemaVersion,
    offset: state.offset,
    timestamp: state.timestamp,
    payloadBytes: position - snapshotHeaderBytes,
    payloadChecksum: checksum32(head, 0, head.length),
  });
  await writeAll(handle, header, 0);
}

/** Reads `length` bytes of the file at `position`. */
export type ReadAt = (position: number, length: number) => Promise<Buffer>;

/** A ReadAt over an open file; a short read is corruption (the size was checked against the header). */
export function readAtHandle(handle: FileHandle): ReadAt {
  return async (position, length) => {
    const bytes = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(bytes, 0, length, position);
    if (bytesRead !== length) throw new SnapshotCorruptError(`short read at byte ${position}`);
    return bytes;
  };
}

/**
 * The head, then each block's row bytes, each checked (lengths inside the file, checksums) before
 * it is yielded. Blocks are read one ahead: each read takes a block's rows and the next block's
 * frame, and the next block's read is in flight while the caller decodes the current one. A large
 * file is never held in memory whole (two blocks at most), and verifying it never blocks the event
 * loop for more than one block. The 48-byte header was decoded by the caller (`header`, checked
 * against `fileBytes`).
 */
async function* sections(readAt: ReadAt, fileBytes: number, headChecksum: number): AsyncGenerator<Buffer> {
  let at = snapshotHeaderBytes;
  if (fileBytes < at + 4) throw new SnapshotCorruptError(`format 2 file of ${fileBytes} bytes has no head`);
  const headBytes = (await readAt(at, 4)).readUInt32LE(0);
  at += 4;
  if (at + headBytes > fileBytes) throw new SnapshotCorruptError(`head of ${headBytes} bytes runs past the end of the file`);
  // The head and the first block's frame in one read.
  const withFrame = Math.min(headBytes + blockFrameBytes, fileBytes - at);
  const headRead = await readAt(at, withFrame);
  const head = headRead.subarray(0, headBytes);
  const actual = checksum32(head, 0, head.length);
  if (headChecksum !== actual) throw new SnapshotCorruptError(`head checksum mismatch (stored ${headChecksum}, computed ${actual})`);
  at += headBytes;
  let next = at < fileBytes ? readAhead(readBlock(readAt, fileBytes, at, headRead.subarray(headBytes))) : null;
  yield head;
  while (next !== null) {
    const block = await next;
    next = block.end < fileBytes ? readAhead(readBlock(readAt, fileBytes, block.end, block.nextFrame)) : null;
    yield block.rows;
  }
}

/** A read started before it is awaited: its failure is reported where it is awaited, and never
 *  as an unhandled rejection (the caller may stop at a bad block before awaiting the next). */
function readAhead(read: Promise<Block>): Promise<Block> {
  read.catch(() => undefined);
  return read;
}

interface Block {
  rows: Buffer;
  /** File position after the rows: the next block's frame. */
  end: number;
  /** The first bytes of that frame, read together with the rows. */
  nextFrame: Buffer;
}

/** The block whose frame starts at `at` (`frame`: what of it was read already), verified. */
async function readBlock(readAt: ReadAt, fileBytes: number, at: number, frame: Buffer): Promise<Block> {
  if (at + blockFrameBytes > fileBytes) throw new SnapshotCorruptError(`block frame at byte ${at} is cut short`);
  const header = frame.length === blockFrameBytes ? frame : await readAt(at, blockFrameBytes);
  const length = header.readUInt32LE(0);
  const start = at + blockFrameBytes;
  if (start + length > fileBytes) throw new SnapshotCorruptError(`block at byte ${at} runs past the end of the file`);
  const end = start + length;
  const bytes = await readAt(start, length + Math.min(blockFrameBytes, fileBytes - end));
  const rows = bytes.subarray(0, length);
  if (checksum32(rows, 0, length) !== header.readUInt32LE(4)) throw new SnapshotCorruptError(`block at byte ${at}: checksum mismatch`);
  return { rows, end, nextFrame: bytes.subarray(length) };
}

/** Every check that needs no decoding (head and block checksums, lengths). */
export async function verifyStateFile(readAt: ReadAt, fileBytes: number, header: SnapshotHeader): Promise<void> {
  for await (const section of sections(readAt, fileBytes, header.payloadChecksum)) void section;
}

/** Where the next rows must go: the queue and state each row position requires. */
class Placement {
  private queueIndex = 0;
  private section = 0;
  private left: number;

  constructor(private readonly queues: readonly QueueHead[]) {
    this.left = queues[0]?.waitingCount ?? 0;
    this.skipEmpty();
  }

  private count(q: QueueHead, section: number): number {
    return section === 0 ? q.waitingCount : section === 1 ? q.completedCount : q.failedCount;
  }

  private skipEmpty(): void {
    while (this.left === 0 && this.queueIndex < this.queues.length) {
      this.section++;
      if (this.section === 3) {
        this.section = 0;
        this.queueIndex++;
      }
      const q = this.queues[this.queueIndex];
      if (q !== undefined) this.left = this.count(q, this.section);
    }
  }

  /** Checks a row against its position; throws SnapshotCorruptError when it does not belong
   *  (`id`: the row's id, asked for only then). */
  check(row: Pick<JobRow, 'queue' | 'state'>, id: () => string): void {
    if (this.queueIndex === this.queues.length) {
      if (row.queue < 0 || row.queue >= this.queues.length) throw new SnapshotCorruptError(`job ${id()}: queue index ${row.queue}`);
      const s = row.state;
      if (s !== JobState.DELAYED && s !== JobState.ACTIVE && s !== JobState.WAITING_CHILDREN) {
        throw new SnapshotCorruptError(`job ${id()} in state ${s} after the ordered sections`);
      }
      return;
    }
    const expected = this.section === 0 ? JobState.WAITING : this.section === 1 ? JobState.COMPLETED : JobState.FAILED;
    if (row.queue !== this.queueIndex || row.state !== expected) {
      throw new SnapshotCorruptError(`job ${id()} (queue ${row.queue}, state ${row.state}) is where queue ${this.queueIndex} state ${expected} belongs`);
    }
    this.left--;
    this.skipEmpty();
  }

  /** Every ordered section got all its rows. */
  get complete(): boolean {
    return this.queueIndex === this.queues.length;
  }
}

/** An ordinary Job for a decoded row (its id taken back out of the arena). */
function jobOfRow(state: State, row: StoredJobRow, queue: QueueState, name: string, options: JobOptions | null): Job {
  let id = row.id;
  if (typeof id === 'number') {
    const at = id;
    id = state.payloads.read(at);
    state.payloads.free(at);
  }
  const job = new Job(
    state.payloads,
    id,
    queue.name,
    name,
    row.data,
    row.seq,
    row.createdAt,
    row.priority,
    row.runAt,
    row.state,
    row.pendingDeps.length === 0 ? NO_IDS : row.pendingDeps,
    options,
  );
  job.run = row.run;
  return job;
}

/** Verifies and decodes a format-2 file straight into a State, one block at a time. */
export async function readStateFile(readAt: ReadAt, fileBytes: number, header: SnapshotHeader, signal?: AbortSignal): Promise<State> {
  if (!rowsSchemaVersionsRead.includes(header.schemaVersion)) {
    const known = rowsSchemaVersionsRead.join(', ');
    throw new SnapshotCorruptError(`format 2 file with schema version ${header.schemaVersion} (this build reads ${known})`);
  }
  const parts = sections(readAt, fileBytes, header.payloadChecksum);
  const first = await parts.next();
  if (first.done === true) throw new SnapshotCorruptError('format 2 file has no head');
  const head = decodeHead(first.value);
  if (head.offset !== header.offset || head.timestamp !== header.timestamp) {
    throw new SnapshotCorruptError(
      `payload covers offset ${head.offset} @${head.timestamp} but the header says ${header.offset} @${header.timestamp}`,
    );
  }
  const state = restoreState(head.offset, head.timestamp, head.workers, head.stats);
  const queues = head.queues.map((q) => restoreQueue(state, q.name, q.paused));
  const placement = new Placement(head.queues);
  // Every row's id and data go to the arena: all of the file but a row's numbers, at least 20 bytes.
  expectPayloadBytes(fileBytes - head.jobCount * 20);
  state.jobs.beginBulk(head.jobCount);
  state.cold.reserve(head.queues.reduce((sum, q) => sum + q.waitingCount, 0));
  const payloads = state.payloads;
  let count = 0;
  const restore = (row: StoredJobRow): void => {
    const idAt = row.id;
    placement.check(row, () => (typeof idAt === 'number' ? payloads.read(idAt) : idAt));
    const queue = queues[row.queue] as QueueState;
    const options = internOptions(queue, row.options);
    const name = row.name ?? jobNameDefault;
    try {
      // Most waiting jobs stay rows until first used (state/cold-jobs.ts).
      const cold =
        row.state === JobState.WAITING &&
        row.run === null &&
        row.pendingDeps.length === 0 &&
        typeof idAt === 'number' &&
        typeof row.data === 'number' &&
        addColdJob(state, queue, idAt, row.data, name, options, row);
      if (!cold) restoreJob(state, jobOfRow(state, row, queue, name, options));
    } catch (err) {
      throw new SnapshotCorruptError(err instanceof Error ? err.message : String(err), { cause: err });
    }
    count++;
  };
  try {
    for await (const block of parts) {
      signal?.throwIfAborted();
      decodeRowsInto(block, payloads, restore, header.schemaVersion);
    }
  } finally {
    // Chunks set aside for rows that turned out smaller (results, logs, names) go back.
    expectPayloadBytes(0);
  }
  const duplicate = state.jobs.endBulk();
  if (duplicate !== null) throw new SnapshotCorruptError(`restoreJob: duplicate job ${duplicate}`);
  if (!placement.complete) throw new SnapshotCorruptError(`file ends before the queues' ordered jobs do`);
  if (count !== head.jobCount) throw new SnapshotCorruptError(`file holds ${count} jobs, its head announces ${head.jobCount}`);
  return state;
}
