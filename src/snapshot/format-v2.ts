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
//                  B  rows        Avro array<JobRow>, at most jobsPerBlock rows; the writer
//                                 also ends a block once B reaches snapshotBlockBytesMax
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
//
// Block sizes. Since snapshotBlockBytesMax a block is at most that plus one row; files written
// before it hold blocks of up to 4,096 rows of any size (u32 B: up to 4 GiB). Readers take any B
// the format allows: reads go in pieces of snapshotReadBytesMax (one read() stops near 2 GiB),
// the loader reads ahead only a block within twice the bound (an older, larger one is read once the
// previous block is decoded, so at most one such block is in memory), and verifyStateFile hashes
// each block piece by piece without holding it.

import type { FileHandle } from 'node:fs/promises';
import { checksum32, createChecksum32 } from '../log/checksum.js';
import { writeAll } from '../log/write-all.js';
import { expectPayloadBytes } from '../state/payloads.js';
import { jobNameDefault, snapshotBlockBytesMax, snapshotReadBytesMax } from '../constants.js';
import { JobState } from '../record/types.js';
import {
  addColdJob,
  internOptions,
  Job,
  jobCount,
  NO_IDS,
  queueNamesSorted,
  restoreJob,
  restoreQueue,
  restoreState,
  settleRestoredQueues,
  waitEntries,
  type JobOptions,
  type QueueState,
  type State,
} from '../state/index.js';
import {
  decodeHead,
  decodeRowsInto,
  encodeHead,
  JobBlockEncoder,
  rowsSchemaVersion,
  type JobRow,
  type QueueHead,
  type StoredJobRow,
} from './codec.js';
import { checkSchemaReadable, SnapshotCorruptError, snapshotFormatVersionBlocks, snapshotHeaderBytes, writeHeader, type SnapshotHeader } from './format.js';

/** Rows per block: big enough that per-block costs vanish, small enough to bound the buffers (in
 *  bytes, snapshotBlockBytesMax bounds them). */
const jobsPerBlock = 4_096;
const blockFrameBytes = 8;

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Queues in the canonical order of exportState (by name): a queue with containers, or the name
 *  of an idle one (written as a queue of no jobs, read back as idle). */
function queuesOf(state: State): Array<QueueState | string> {
  return queueNamesSorted(state).map((name) => {
    const q = state.queues.get(name);
    return q === undefined || (!q.paused && jobCount(q) === 0) ? name : q;
  });
}

function headOf(q: QueueState | string): QueueHead {
  if (typeof q === 'string') return { name: q, paused: false, waitingCount: 0, completedCount: 0, failedCount: 0 };
  return { name: q.name, paused: q.paused, waitingCount: q.waiting.size, completedCount: q.completed.size, failedCount: q.failed.size };
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
function* rowsInOrder(state: State, queues: ReadonlyArray<QueueState | string>): Generator<JobRow> {
  const indexOf = new Map(queues.map((q, i) => [typeof q === 'string' ? q : q.name, i]));
  for (const [i, q] of queues.entries()) {
    if (typeof q === 'string') continue;
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
    queues: queues.map(headOf),
    workers: [...state.workers.entries()].sort((a, b) => compareText(a[0], b[0])).map(([queue, config]) => ({ queue, config })),
    stats: { ...state.stats },
  });
  let position = snapshotHeaderBytes;
  const headLength = Buffer.alloc(4);
  headLength.writeUInt32LE(head.length, 0);
  await writeAll(handle, headLength, position);
  await writeAll(handle, head, position + 4);
  position += 4 + head.length;

  const block = new JobBlockEncoder();
  const frame = Buffer.alloc(blockFrameBytes);
  // The encoder reuses its buffer for the next block: each block is written before a row is added.
  const flush = async () => {
    const bytes = block.take();
    frame.writeUInt32LE(bytes.length, 0);
    frame.writeUInt32LE(checksum32(bytes, 0, bytes.length), 4);
    await writeAll(handle, frame, position);
    await writeAll(handle, bytes, position + blockFrameBytes);
    position += blockFrameBytes + bytes.length;
  };
  for (const row of rowsInOrder(state, queues)) {
    block.add(row);
    if (block.rowCount === jobsPerBlock || block.rowBytes >= snapshotBlockBytesMax) await flush();
  }
  if (block.rowCount > 0) await flush();

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

/** The one call of a FileHandle that readAtHandle makes. */
export interface ReadHandle {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

/** A ReadAt over an open file, in reads of at most snapshotReadBytesMax (one read() returns at
 *  most about 2 GiB, an older file's block may be longer); a read that ends before the file does
 *  is corruption (the size was checked against the header). */
export function readAtHandle(handle: ReadHandle): ReadAt {
  return async (position, length) => {
    const bytes = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const { bytesRead } = await handle.read(bytes, done, Math.min(length - done, snapshotReadBytesMax), position + done);
      if (bytesRead === 0) throw new SnapshotCorruptError(`short read at byte ${position + done}`);
      done += bytesRead;
    }
    return bytes;
  };
}

/** The head, verified (its checksum is the header's payloadChecksum), and the bytes read after it
 *  in the same read: the first block's frame, or what of it the file holds. */
async function readHead(readAt: ReadAt, fileBytes: number, headChecksum: number): Promise<{ head: Buffer; frame: Buffer; end: number }> {
  let at = snapshotHeaderBytes;
  if (fileBytes < at + 4) throw new SnapshotCorruptError(`format 2 file of ${fileBytes} bytes has no head`);
  const headBytes = (await readAt(at, 4)).readUInt32LE(0);
  at += 4;
  if (at + headBytes > fileBytes) throw new SnapshotCorruptError(`head of ${headBytes} bytes runs past the end of the file`);
  const withFrame = Math.min(headBytes + blockFrameBytes, fileBytes - at);
  const headRead = await readAt(at, withFrame);
  const head = headRead.subarray(0, headBytes);
  const actual = checksum32(head, 0, head.length);
  if (headChecksum !== actual) throw new SnapshotCorruptError(`head checksum mismatch (stored ${headChecksum}, computed ${actual})`);
  return { head, frame: headRead.subarray(headBytes), end: at + headBytes };
}

/**
 * The head, then each block's row bytes, each checked (lengths inside the file, checksums) before
 * it is yielded. Blocks are read one ahead: each read takes a block's rows and the next block's
 * frame, and the next block's read is in flight while the caller decodes the current one (two
 * blocks in memory at most). A block longer than readAheadBlockBytesMax (only older files have
 * one) is not read ahead but once the caller is done with the block before it, so that at most
 * one of them is in memory. The 48-byte header was decoded by the caller (`header`, checked
 * against `fileBytes`).
 */
/** The largest block read ahead: the bound plus the row that took the block past it (a block of
 *  large jobs always ends just over the bound), for rows of up to the bound themselves. */
const readAheadBlockBytesMax = 2 * snapshotBlockBytesMax;

async function* sections(readAt: ReadAt, fileBytes: number, headChecksum: number): AsyncGenerator<Buffer> {
  const { head, frame, end } = await readHead(readAt, fileBytes, headChecksum);
  let next = end < fileBytes ? readAhead(readBlock(readAt, fileBytes, end, frame)) : null;
  yield head;
  while (next !== null) {
    const block = await next;
    const { rows, end: at } = block;
    // Copied: a view would keep the whole buffer of the rows before it alive.
    const nextFrame = Buffer.from(block.nextFrame);
    const ahead = at < fileBytes && (nextFrame.length < blockFrameBytes || nextFrame.readUInt32LE(0) <= readAheadBlockBytesMax);
    next = ahead ? readAhead(readBlock(readAt, fileBytes, at, nextFrame)) : null;
    yield rows;
    if (!ahead && at < fileBytes) next = readBlock(readAt, fileBytes, at, nextFrame);
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
  const length = blockLength(header, fileBytes, at);
  const start = at + blockFrameBytes;
  const end = start + length;
  const bytes = await readAt(start, length + Math.min(blockFrameBytes, fileBytes - end));
  const rows = bytes.subarray(0, length);
  if (checksum32(rows, 0, length) !== header.readUInt32LE(4)) throw new SnapshotCorruptError(`block at byte ${at}: checksum mismatch`);
  return { rows, end, nextFrame: bytes.subarray(length) };
}

/** The length of the block whose frame starts at `at`, checked to end inside the file. */
function blockLength(frame: Buffer, fileBytes: number, at: number): number {
  const length = frame.readUInt32LE(0);
  if (at + blockFrameBytes + length > fileBytes) throw new SnapshotCorruptError(`block at byte ${at} runs past the end of the file`);
  return length;
}

/** Every check that needs no decoding (head and block checksums, lengths). Each block is read and
 *  hashed in pieces of at most snapshotBlockBytesMax, so verifying holds one such piece, whatever
 *  the size of the file's blocks, and pauses the event loop for one piece's checksum at most. */
export async function verifyStateFile(readAt: ReadAt, fileBytes: number, header: SnapshotHeader): Promise<void> {
  let at = (await readHead(readAt, fileBytes, header.payloadChecksum)).end;
  while (at < fileBytes) {
    if (at + blockFrameBytes > fileBytes) throw new SnapshotCorruptError(`block frame at byte ${at} is cut short`);
    const frame = await readAt(at, blockFrameBytes);
    const end = at + blockFrameBytes + blockLength(frame, fileBytes, at);
    const hash = createChecksum32();
    for (let piece = at + blockFrameBytes; piece < end; piece += snapshotBlockBytesMax) {
      const bytes = await readAt(piece, Math.min(snapshotBlockBytesMax, end - piece));
      hash.update(bytes, 0, bytes.length);
    }
    if (hash.digest() !== frame.readUInt32LE(4)) throw new SnapshotCorruptError(`block at byte ${at}: checksum mismatch`);
    at = end;
  }
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
  if (row.run !== null) job.adoptRun(row.run);
  return job;
}

/** Verifies and decodes a format-2 file straight into a State, one block at a time. */
export async function readStateFile(readAt: ReadAt, fileBytes: number, header: SnapshotHeader, signal?: AbortSignal): Promise<State> {
  checkSchemaReadable(header);
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
  settleRestoredQueues(state);
  return state;
}
