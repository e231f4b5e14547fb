// Group commit: the only writer of the active segment.
//
// append() encodes each record once into the pending batch (one growing buffer for all appends
// since the last write) and returns a promise shared by every append of that batch that waits for
// the same thing (the batch's write, or its sync). A single loop, never overlapping
// itself, drains the batch: one write() of everything pending (split only at a segment roll or
// at groupCommitBytesMax), then one fdatasync covering it (policy 'always'). Appends that arrive
// while a write or sync is in flight simply accumulate for the next round.
//
//   'always'   durable = after the fdatasync that covers the record
//   'interval' durable = after write() reached the OS; fdatasync every syncIntervalMs when
//              something was written; appends with durable:true wait for that sync
//
// A write of up to groupCommitSyncWriteBytesMax is a synchronous write() to the page cache on the
// main thread: a round trip through the libuv pool costs an event-loop turn, which under load is
// milliseconds, while copying that much costs tens of microseconds. A larger batch goes through
// the pool, so that encoding the next batch overlaps it. The fdatasync always goes to the pool.
// Only one sync is ever in flight: Linux reports a write-back error to one fdatasync per open
// file, so two overlapping syncs on one handle could let the one that missed the error
// acknowledge records whose pages were lost.
//
// The active segment is zero-filled ahead of its writes (segmentPreallocBytes at a time, with a
// synchronous write to the page cache): a record then lands in blocks the file already has, so
// the fdatasync that covers it flushes data alone, without the journal commit that a growing
// file's new size and extents cost on ext4 and XFS. The zeros are cut before the segment is sealed
// (a roll truncates it to its records) and at close; after a crash the active segment keeps them,
// and the next open trims them (recovery.ts: a tail of zeros is not a torn tail, no copy is kept).
//
// syncedEnd() names the active segment and where its records covered by a completed sync end:
// bytes that are whole frames and are never written again (writes, zeros and trims all happen at
// or after that end; a roll seals the segment at or after it). Set when a sync returns, to the
// end of what was written when it started; after a roll, to the new segment's header (synced by
// createSegment); at open, to the end the open's scan verified (recovery.ts trims or cuts anything
// after it, with a sync). The scrub reads the active segment up to it (src/snapshot/scrub.ts).
//
// A failed write or sync is final (an fsync is never retried: the kernel may have dropped the
// dirty pages): every pending and later append rejects with the LogError. Invariants: offsets are
// assigned synchronously and consecutively; a batch never straddles two segments; the directory
// of a new segment is fsynced before any record in it is acknowledged.
//
// A roll is not all record I/O. Its records' part (cut the zeros, sync, close) fails the log as
// above. The sealed segment's index files are derived data: a failure to write them (EMFILE
// while clients hold every descriptor, a full disk) is logged and the roll goes on; reads use
// the index in memory, and the next open rebuilds the files (recovery.ts). Opening the next
// segment touches no record, and when it fails for want of descriptors or kernel memory (EMFILE,
// ENFILE, EAGAIN) it is retried, with doubling pauses, for up to segmentOpenRetryMsMax; only then,
// or on any other error, does the log fail. The round's records wait meanwhile, unwritten and
// unacknowledged, and later appends queue behind them. Retrying, rather than refusing the batch
// with a 503 and keeping the log open, is forced by the layers above: the broker has already
// applied these records to its state and handed their offsets out, and later appends hold the
// offsets after them, so a refused batch would leave a state, and offsets, that the log never
// holds. A retry only delays acknowledgements; the records of the batch are still acknowledged
// only once written and synced. createSegment removes a file it made when a later step of it
// fails, so each try starts clean; an open of the write handle that fails leaves the created
// (synced, empty) segment in place and only that open is tried again.

import { constants as fsConstants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  groupCommitBytesMax,
  groupCommitSyncWriteBytesMax,
  recordBytesMax,
  segmentOpenRetryPauseMsFirst,
  segmentOpenRetryPauseMsMax,
  segmentPreallocBytes,
} from '../constants.js';
import { encodeRecordInto, RecordWriter } from '../record/codec.js';
import type { LogRecord, RecordDraft } from '../record/types.js';
import { errnoOf, ioError, LogError, messageOf } from './errors.js';
import { frameHeaderBytes, sealFrames } from './framing.js';
import { createSegment } from './recovery.js';
import { segmentFileName } from './segment-header.js';
import { syncDir, type Segment } from './segment.js';
import { writeAll, writeAllSync } from './write-all.js';

export type SyncPolicy = 'always' | 'interval';

/** Test-only seams around every write and sync of records; each hook gets the real operation to
 *  call. A small write is synchronous (see above): its `real` returns nothing and must be called
 *  before the hook returns; a large one returns a promise, which the log awaits whatever the hook
 *  does. The zeros of preallocation, and the sync after trimming them at close, are not hooked. */
export interface FsHooks {
  write?: (file: string, bytes: number, real: () => void | Promise<void>) => void | Promise<void>;
  datasync?: (file: string, real: () => Promise<void>) => Promise<void>;
  syncDir?: (dir: string, real: () => Promise<void>) => Promise<void>;
}

export interface GroupCommitOptions {
  dir: string;
  logId: string;
  segments: Segment[];
  segmentBytes: number;
  sync: SyncPolicy;
  syncIntervalMs: number;
  hooks: FsHooks;
  /** How long a roll retries opening the next segment while descriptors are short (see above). */
  segmentOpenRetryMs: number;
  /** Lines for the operator: what went wrong without failing the log. */
  logger: (line: string) => void;
  /** Called once per round with the records that just became durable, in order, and the size of
   *  each one's frame in the segment. */
  onDurable: (records: LogRecord[], frameBytes: number[], durableOffset: number) => void;
  /** Called once when the log enters the failed state. */
  onFailed: (err: LogError) => void;
  /** Called after each successful fdatasync of records with the ms from its call to its
   *  continuation (the wait the acknowledgements it covers saw, the event loop's included). */
  observeSyncMs?: (ms: number) => void;
}

/** What append() hands back: the records as they will be in the log, and when they are durable. */
export interface Appended {
  firstOffset: number;
  records: LogRecord[];
  durable: Promise<void>;
}

/** The appends of one pending batch that wait for the same event (its write, or its sync) share
 *  one waiter and one promise: `until` grows as they arrive, until the batch is taken. */
interface Waiter {
  until: number;
  needsSync: boolean;
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: LogError) => void;
}

/** Smallest initial size of a group commit's buffer; a new round starts at the size the last
 *  one reached (capped at groupCommitBytesMax), so steady batches do not grow by doubling. */
const batchBytesInitial = 16 * 1024;
const spareBatchBytesMax = 1024 * 1024;
/** What preallocation writes, a piece at a time. */
const zeroBlock = Buffer.alloc(64 * 1024);

export class GroupCommit {
  nextOffset: number;
  writtenOffset: number;
  syncedOffset: number;
  /** syncedEnd(): the segment (base offset) and its bytes covered by a completed sync. */
  private syncedBase: number;
  private syncedBytes: number;
  failed: LogError | null = null;
  /** Why acknowledgements are held, while a roll retries opening the next segment; else null. */
  held: string | null = null;
  private closed = false;
  private writer = new RecordWriter(batchBytesInitial);
  /** The buffer of the last round written, reused by the next round (two buffers alternate instead
   *  of a new one per round); a buffer a burst grew past spareBatchBytesMax is let go. */
  private spare: RecordWriter | null = null;
  /** The active segment's file size: its records, then zeros written ahead of them. */
  private allocatedTo: number;
  private frameEnds: number[] = [];
  private records: LogRecord[] = [];
  private waiters: Waiter[] = [];
  /** The pending batch's waiters, by what they wait for; cleared when a round takes the batch. */
  private openSync: Waiter | null = null;
  private openWrite: Waiter | null = null;
  private running: Promise<void> | null = null;
  private syncDue = false;
  private timer: NodeJS.Timeout | null = null;
  /** Records written but not yet durable ('always' keeps them until the sync), and their frames' sizes. */
  private unsynced: LogRecord[] = [];
  private unsyncedBytes: number[] = [];

  constructor(private readonly o: GroupCommitOptions) {
    const active = this.active;
    this.nextOffset = active.nextOffset;
    this.writtenOffset = active.nextOffset;
    this.syncedOffset = active.nextOffset;
    this.syncedBase = active.baseOffset;
    this.syncedBytes = active.bytes;
    this.allocatedTo = active.bytes;
  }

  /** The active segment's base offset and the end of its bytes that a completed sync covers
   *  (see the top of this file): whole frames that nothing writes again. */
  syncedEnd(): { baseOffset: number; bytes: number } {
    return { baseOffset: this.syncedBase, bytes: this.syncedBytes };
  }

  /** 'interval': the first write after a sync arms one timer; the sync runs when it fires. */
  private scheduleSync(): void {
    if (this.timer !== null || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.syncDue = true;
      this.kick();
    }, this.o.syncIntervalMs);
  }

  get durableOffset(): number {
    return this.o.sync === 'always' ? this.syncedOffset : this.writtenOffset;
  }

  private get active(): Segment {
    const s = this.o.segments[this.o.segments.length - 1];
    if (s === undefined) throw new Error('log has no segment');
    return s;
  }

  async openActive(): Promise<void> {
    const fh = await open(this.active.path, fsConstants.O_RDWR);
    this.active.writer = fh;
    this.allocatedTo = (await fh.stat()).size;
  }

  /** Zero-fills the active segment up to at least `end` (see the top of this file). Past `end`
   *  it fills segmentPreallocBytes ahead, never beyond segmentBytes. */
  private preallocate(active: Segment, end: number): void {
    if (end <= this.allocatedTo) return;
    const target = Math.max(end, Math.min(this.allocatedTo + segmentPreallocBytes, this.o.segmentBytes));
    const fd = (active.writer as FileHandle).fd;
    // The record bytes about to be written fill [allocatedTo, end) themselves. Zeros that do not
    // fit (a full disk) are not an error: the records' own write decides. allocatedTo covers
    // whatever part was written, so that sealing still cuts it.
    this.allocatedTo = target;
    try {
      for (let at = end; at < target; ) {
        const n = Math.min(zeroBlock.length, target - at);
        writeAllSync(fd, zeroBlock.subarray(0, n), at);
        at += n;
      }
    } catch {
      // the write of the records that follows reports a full disk, if it is one
    }
  }

  /** Cuts the zeros after the active segment's records: before it is sealed (the roll's sync
   *  makes the new size durable) and at close. */
  private async trimPreallocation(): Promise<void> {
    const active = this.active;
    if (this.allocatedTo <= active.bytes) return;
    await (active.writer as FileHandle).truncate(active.bytes);
    this.allocatedTo = active.bytes;
  }

  append(drafts: RecordDraft[], durable: boolean): Appended {
    if (this.failed !== null) throw new LogError('LOG_FAILED', `log failed earlier: ${this.failed.message}`, { cause: this.failed });
    if (this.closed) throw new LogError('LOG_CLOSED', 'log is closed');
    const firstOffset = this.nextOffset;
    if (drafts.length === 0) return { firstOffset, records: [], durable: Promise.resolve() };
    const records = this.encode(drafts, firstOffset);
    this.nextOffset = firstOffset + drafts.length;
    const waiter = this.waiterFor(durable || this.o.sync === 'always');
    waiter.until = this.nextOffset;
    this.kick();
    return { firstOffset, records, durable: waiter.promise };
  }

  /** The open waiter of the pending batch for this kind, made on the batch's first such append. */
  private waiterFor(needsSync: boolean): Waiter {
    const open = needsSync ? this.openSync : this.openWrite;
    if (open !== null) return open;
    let resolve!: () => void;
    let reject!: (err: LogError) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const waiter: Waiter = { until: 0, needsSync, promise, resolve, reject };
    this.waiters.push(waiter);
    if (needsSync) this.openSync = waiter;
    else this.openWrite = waiter;
    return waiter;
  }

  /** Encodes all drafts into the pending batch, or nothing of the call if one fails (too large,
   *  or a draft the encoder throws on); returns the records with their offsets. */
  private encode(drafts: RecordDraft[], firstOffset: number): LogRecord[] {
    const w = this.writer;
    const startPos = w.pos;
    const startFrames = this.frameEnds.length;
    try {
      return this.encodeAll(drafts, firstOffset);
    } catch (err) {
      // Whatever the cause, the call is all or nothing: frames of its earlier drafts left in the
      // batch would be written under offsets handed out again to the next append, and the bytes
      // of a half-encoded draft would become part of the next frame.
      w.pos = startPos;
      this.frameEnds.length = startFrames;
      this.records.length = startFrames;
      throw err;
    }
  }

  private encodeAll(drafts: RecordDraft[], firstOffset: number): LogRecord[] {
    const out: LogRecord[] = new Array<LogRecord>(drafts.length);
    const w = this.writer;
    for (let i = 0; i < drafts.length; i++) {
      const d = drafts[i] as RecordDraft;
      const record: LogRecord = { offset: firstOffset + i, timestamp: d.timestamp, actor: d.actor, body: d.body };
      const frameStart = w.pos;
      w.skip(frameHeaderBytes);
      encodeRecordInto(record, w);
      const length = w.pos - frameStart - frameHeaderBytes;
      if (length > recordBytesMax) {
        throw new LogError('LOG_RECORD_TOO_LARGE', `record of ${length} bytes exceeds recordBytesMax (${recordBytesMax})`, {
          offset: record.offset,
        });
      }
      this.frameEnds.push(w.pos);
      this.records.push(record);
      out[i] = record;
    }
    return out;
  }

  private kick(): void {
    if (this.running !== null) return;
    this.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.loop());
  }

  private async loop(): Promise<void> {
    try {
      for (;;) {
        if (this.failed !== null) return;
        const writing = this.frameEnds.length > 0;
        if (writing) await this.writeRound();
        // A due sync follows at most one write round: appends that arrive during every write
        // would otherwise keep a round pending whenever the loop looks, and 'interval' would
        // never sync (nor acknowledge a durable: true append) for as long as the load lasted.
        if (this.syncDue && this.writtenOffset > this.syncedOffset) await this.syncRound();
        else if (!writing) return;
      }
    } catch (err) {
      this.fail(err instanceof LogError ? err : ioError('write', this.active.file, err));
    } finally {
      this.running = null;
    }
  }

  /** One write of the pending batch (up to a segment roll), then its sync under 'always'. */
  private async writeRound(): Promise<void> {
    const taken = this.writer;
    const bytes = taken.buf;
    const frameEnds = this.frameEnds;
    const records = this.records;
    this.writer = this.spare ?? new RecordWriter(Math.min(Math.max(batchBytesInitial, taken.pos), groupCommitBytesMax));
    this.spare = null;
    this.frameEnds = [];
    this.records = [];
    this.openSync = null;
    this.openWrite = null;
    let first = 0;
    let start = 0;
    while (first < frameEnds.length) {
      let active = this.active;
      if (active.recordCount > 0 && active.bytes + ((frameEnds[first] as number) - start) > this.o.segmentBytes) {
        await this.roll();
        active = this.active;
      }
      let count = 0;
      const room = Math.min(this.o.segmentBytes - active.bytes, groupCommitBytesMax);
      while (first + count < frameEnds.length && ((frameEnds[first + count] as number) - start <= room || count === 0)) count++;
      const end = frameEnds[first + count - 1] as number;
      const pending = this.writeChunk(active, bytes, start, end, frameEnds, records, first, count);
      if (pending !== undefined) await pending;
      if (this.o.sync === 'always') await this.syncActive();
      first += count;
      start = end;
    }
    // Written and no longer read (nothing keeps views of it): the next round encodes into it.
    if (bytes.length <= spareBatchBytesMax) {
      taken.pos = 0;
      this.spare = taken;
    }
  }

  /** Writes frames [first, first + count) of the batch; synchronously when the chunk is small
   *  (undefined comes back), through the pool when it is large (a promise comes back). */
  private writeChunk(
    active: Segment,
    bytes: Uint8Array,
    start: number,
    end: number,
    frameEnds: number[],
    records: LogRecord[],
    first: number,
    count: number,
  ): Promise<void> | undefined {
    sealFrames(bytes, start, frameEnds, first, count);
    const fh = active.writer as FileHandle;
    const chunk = bytes.subarray(start, end);
    const position = active.bytes;
    const real =
      chunk.length <= groupCommitSyncWriteBytesMax
        ? (): void => writeAllSync(fh.fd, chunk, position)
        : (): Promise<void> => writeAll(fh, chunk, position);
    const done = (): void => this.written(active, start, position, frameEnds, records, first, count);
    // What the real write returned, whatever a test hook around it returns; a hook that returns
    // a promise (it may write later) is awaited too.
    let writing: void | Promise<void> = undefined;
    const run = (): void | Promise<void> => (writing = real());
    let pending: void | Promise<void>;
    try {
      this.preallocate(active, position + chunk.length);
      const hooked = this.o.hooks.write ? this.o.hooks.write(active.file, chunk.length, run) : run();
      pending = hooked === undefined ? writing : hooked.then(() => writing);
    } catch (err) {
      throw ioError('write', active.file, err);
    }
    if (pending === undefined) {
      done();
      return undefined;
    }
    return pending.then(done, (err: unknown) => {
      throw ioError('write', active.file, err);
    });
  }

  /** Bookkeeping once a chunk is in the file: index entries, written offset, acks ('interval'). */
  private written(active: Segment, start: number, position: number, frameEnds: number[], records: LogRecord[], first: number, count: number): void {
    const frameBytes = new Array<number>(count);
    let frameStart = start;
    for (let i = first; i < first + count; i++) {
      const record = records[i] as LogRecord;
      const frameEnd = frameEnds[i] as number;
      const bytes = frameEnd - frameStart;
      frameBytes[i - first] = bytes;
      active.noteRecord(record.offset, record.timestamp, position + frameStart - start, bytes);
      frameStart = frameEnd;
    }
    this.writtenOffset = active.nextOffset;
    const written = first === 0 && count === records.length ? records : records.slice(first, first + count);
    if (this.o.sync === 'always') {
      this.unsynced = written;
      this.unsyncedBytes = frameBytes;
      return;
    }
    this.release();
    this.scheduleSync();
    this.o.onDurable(written, frameBytes, this.writtenOffset);
  }

  private async syncRound(): Promise<void> {
    this.syncDue = false;
    await this.syncActive();
  }

  /** fdatasync of the active segment; everything written before it started is then durable. */
  private async syncActive(): Promise<void> {
    const active = this.active;
    const covered = this.writtenOffset;
    const coveredBytes = active.bytes;
    const fh = active.writer as FileHandle;
    const real = (): Promise<void> => fh.datasync();
    const startedMs = performance.now();
    try {
      await (this.o.hooks.datasync ? this.o.hooks.datasync(active.file, real) : real());
    } catch (err) {
      throw ioError('sync', active.file, err);
    }
    this.o.observeSyncMs?.(performance.now() - startedMs);
    this.syncedOffset = covered;
    this.syncedBase = active.baseOffset;
    this.syncedBytes = coveredBytes;
    this.release();
    if (this.o.sync === 'always') {
      const records = this.unsynced;
      const frameBytes = this.unsyncedBytes;
      this.unsynced = [];
      this.unsyncedBytes = [];
      this.o.onDurable(records, frameBytes, this.syncedOffset);
    }
  }

  /** Resolves the waiters whose records are now durable (every one is checked: under 'interval'
   *  the two kinds interleave). */
  private release(): void {
    const ws = this.waiters;
    let kept = 0;
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i] as Waiter;
      const done = w.needsSync ? w.until <= this.syncedOffset : w.until <= this.writtenOffset;
      if (done) w.resolve();
      else ws[kept++] = w;
    }
    ws.length = kept;
  }

  /** Seals the active segment (synced, index files written if they can be) and starts the next
   *  one. The write handle is closed first: one descriptor more for the files that follow. */
  private async roll(): Promise<void> {
    const sealed = this.active;
    const trimmed = this.allocatedTo > sealed.bytes;
    await this.trimPreallocation();
    if (trimmed || this.writtenOffset > this.syncedOffset) await this.syncActive();
    await (sealed.writer as FileHandle).close();
    sealed.writer = null;
    await sealed.writeIndexFiles().catch((err: unknown) => {
      this.o.logger(`tapeq: log: could not write the index files of ${sealed.file} (${messageOf(err)}); reads use its index in memory and the next start rebuilds them`);
    });
    const segment = await this.openNext(sealed.nextOffset);
    this.o.segments.push(segment);
    this.allocatedTo = segment.bytes;
    this.syncedBase = segment.baseOffset;
    this.syncedBytes = segment.bytes;
  }

  /** Creates the segment starting at baseOffset and opens its write handle, retrying while
   *  descriptors are short (see the top of this file). */
  private async openNext(baseOffset: number): Promise<Segment> {
    const giveUpAt = performance.now() + this.o.segmentOpenRetryMs;
    let segment: Segment | null = null;
    let retries = 0;
    for (let pauseMs = segmentOpenRetryPauseMsFirst; ; pauseMs = Math.min(2 * pauseMs, segmentOpenRetryPauseMsMax)) {
      try {
        segment ??= await createSegmentHooked(this.o, baseOffset);
        segment.writer = await open(segment.path, fsConstants.O_RDWR);
        if (retries > 0) this.o.logger(`tapeq: log: opened ${segment.file} after ${retries} retries; acknowledgements go on`);
        this.held = null;
        return segment;
      } catch (err) {
        const file = segment?.file ?? segmentFileName(baseOffset);
        const leftMs = giveUpAt - performance.now();
        if (!isShortOfResources(err) || leftMs <= 0) {
          this.held = null;
          throw ioError('write', file, err);
        }
        if (retries === 0) {
          this.held = `could not open the next segment ${file} (${messageOf(err)})`;
          this.o.logger(`tapeq: log: ${this.held}; acknowledgements wait while it is retried for up to ${this.o.segmentOpenRetryMs} ms`);
        }
        retries++;
        await sleep(Math.min(pauseMs, leftMs));
      }
    }
  }

  private fail(err: LogError): void {
    if (this.failed !== null) return;
    this.failed = err;
    const waiters = this.waiters;
    this.waiters = [];
    this.openSync = null;
    this.openWrite = null;
    this.frameEnds = [];
    this.records = [];
    for (const w of waiters) w.reject(err);
    this.o.onFailed(err);
  }

  /** Flushes and syncs everything pending, then closes the active segment's write handle. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    while (this.running !== null) await this.running;
    if (this.failed === null && this.writtenOffset > this.syncedOffset) {
      this.syncDue = true;
      this.running = this.loop();
      await this.running;
    }
    const active = this.active;
    if (this.failed === null && active.writer !== null && this.allocatedTo > active.bytes) {
      // Every record is already synced: the zeros go so that a closed log ends at its last
      // record. Nothing is lost if this fails (the next open trims them), so it is not a log
      // failure, and it is not one of the syncs the test hooks see.
      await this.trimPreallocation()
        .then(() => (active.writer as FileHandle).datasync())
        .catch(() => undefined);
    }
    if (active.writer !== null) {
      await active.writer.close();
      active.writer = null;
    }
    if (this.failed === null && this.waiters.length > 0) this.fail(new LogError('LOG_CLOSED', 'log closed'));
  }
}

/** Errors of a kernel short of descriptors or memory for a moment: worth another try. */
function isShortOfResources(err: unknown): boolean {
  const code = errnoOf(err);
  return code === 'EMFILE' || code === 'ENFILE' || code === 'EAGAIN';
}

async function createSegmentHooked(o: GroupCommitOptions, baseOffset: number): Promise<Segment> {
  const hook = o.hooks.syncDir;
  const dirSync = hook === undefined ? syncDir : (dir: string) => hook(dir, () => syncDir(dir));
  return createSegment(o.dir, o.logId, baseOffset, dirSync);
}
