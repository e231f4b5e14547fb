// The log: a directory of segments with group-commit appends, verified reads, a tail ring for
// live readers, time lookups and retention. This module composes the pieces:
//
//   recovery.ts     open: scan, cut torn tail, refuse (or quarantine) corruption and gaps
//   group-commit.ts append → one write + one fdatasync per round; a failed record write or
//                   sync is final
//   reader.ts       indexed, verified reads from disk, in batches
//   ring.ts         the latest durable records in memory (tailRingRecords, tailRingBytes)
//   tail.ts         follow the log from an offset
//
// Invariants: offsets are gap-free from firstOffset to nextOffset; durableOffset <= nextOffset;
// only records below durableOffset are ever read, tailed or reported to onDurable listeners.
// Async methods may overlap freely (appends are queued, reads use their own file handles),
// except dropSegmentsBefore() with itself, and close(), after which nothing else may be called.

import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { logSyncIntervalMsDefault, segmentBytesDefault, segmentBytesMin, segmentOpenRetryMsMax, tailRingBytes, tailRingRecords } from '../constants.js';
import type { LogRecord, RecordDraft } from '../record/types.js';
import { initChecksum } from './checksum.js';
import { LogError } from './errors.js';
import { GroupCommit, type Appended, type FsHooks, type SyncPolicy } from './group-commit.js';
import { offsetAtTimeIn, readBatches } from './reader.js';
import { loadSegments, type OpenReport, type ReadBound } from './recovery.js';
import type { SealedScanResult } from './sealed-scan.js';
import { checkArchiveDir, filesOfSegment, retireFiles } from './retire.js';
import { RecordRing } from './ring.js';
import { segmentFilePattern } from './segment-header.js';
import { syncDir, type Segment } from './segment.js';
import { tailLog, type TailIterator, type TailSource } from './tail.js';

export { LogError } from './errors.js';
export type { LogErrorCode } from './errors.js';
export type { Appended, FsHooks, SyncPolicy } from './group-commit.js';
export type { OpenReport, Quarantine, ReadBound, TailCut } from './recovery.js';
export type { TailIterator } from './tail.js';

export interface LogOptions {
  dir: string;
  segmentBytes?: number;
  sync?: SyncPolicy;
  syncIntervalMs?: number;
  repair?: boolean;
  readOnly?: boolean;
  logger?: (line: string) => void;
  fsHooks?: FsHooks;
  /** How long a roll retries opening the next segment while descriptors are short (default
   *  segmentOpenRetryMsMax; group-commit.ts). */
  segmentOpenRetryMs?: number;
  /** Records kept decoded in memory for tail readers: at most ringRecords (default tailRingRecords)… */
  ringRecords?: number;
  /** …and at most ringBytes of them encoded (default tailRingBytes). */
  ringBytes?: number;
  /** Verify sealed segments in a worker thread, so the caller can work while open() runs. */
  sealedInWorker?: boolean;
  /** What an earlier open of this log found (sealedScanResults()): those segments are not read. */
  knownSealed?: ReadonlyMap<number, SealedScanResult>;
  /** Read-only: read the segments up to the one that reaches this point, and no later one
   *  (recovery.ts); the log ends where that segment ends, openReport.notRead names the rest. */
  until?: ReadBound;
  /** Read-only: the first damage ends the log instead of failing the open; openReport.damage
   *  names it (recovery.ts). */
  endAtDamage?: boolean;
  /** With repair: whether the state can be rebuilt once the log is cut (recovery.ts). */
  repairCheck?: (cutAt: number, firstOffset: number) => Promise<string | null>;
  /** Sees the latency of each fdatasync of records (group-commit.ts). */
  observeSyncMs?: (ms: number) => void;
}

export interface SegmentInfo {
  file: string;
  baseOffset: number;
  nextOffset: number;
  bytes: number;
  firstTimestamp: number | null;
  lastTimestamp: number | null;
}

export class Log {
  readonly dir: string;
  readonly logId: string;
  readonly openReport: OpenReport;
  private readonly segmentList: Segment[];
  private readonly commit: GroupCommit | null;
  private readonly ring: RecordRing<LogRecord>;
  private readonly listeners = new Set<(durableOffset: number) => void>();
  private readonly wakers = new Set<() => void>();
  private closed = false;

  private constructor(dir: string, logId: string, report: OpenReport, segments: Segment[], commit: GroupCommit | null, ring: { records: number; bytes: number }) {
    this.dir = dir;
    this.logId = logId;
    this.openReport = report;
    this.segmentList = segments;
    this.commit = commit;
    this.ring = new RecordRing<LogRecord>(ring.records, ring.bytes, this.nextOffset);
  }

  static async open(opts: LogOptions): Promise<Log> {
    const segmentBytes = opts.segmentBytes ?? segmentBytesDefault;
    if (segmentBytes < segmentBytesMin || segmentBytes >= 2 ** 32) {
      throw new RangeError(`segmentBytes must be in [${segmentBytesMin}, 2^32): ${segmentBytes}`);
    }
    await initChecksum();
    const readOnly = opts.readOnly === true;
    const logger = opts.logger ?? ((line: string) => console.error(line));
    const loaded = await loadSegments({
      dir: opts.dir,
      readOnly,
      repair: opts.repair === true,
      logger,
      sealedInWorker: opts.sealedInWorker === true,
      ...(opts.knownSealed === undefined ? {} : { knownSealed: opts.knownSealed }),
      ...(opts.until === undefined ? {} : { until: opts.until }),
      ...(opts.endAtDamage === undefined ? {} : { endAtDamage: opts.endAtDamage }),
      ...(opts.repairCheck === undefined ? {} : { repairCheck: opts.repairCheck }),
    });
    let log: Log | null = null;
    const commit = readOnly
      ? null
      : new GroupCommit({
          dir: opts.dir,
          logId: loaded.logId,
          segments: loaded.segments,
          segmentBytes,
          sync: opts.sync ?? 'always',
          syncIntervalMs: opts.syncIntervalMs ?? logSyncIntervalMsDefault,
          hooks: opts.fsHooks ?? {},
          segmentOpenRetryMs: opts.segmentOpenRetryMs ?? segmentOpenRetryMsMax,
          logger,
          onDurable: (records, frameBytes, durableOffset) => log?.committed(records, frameBytes, durableOffset),
          onFailed: () => log?.wakeTails(),
          observeSyncMs: opts.observeSyncMs,
        });
    await commit?.openActive();
    log = new Log(opts.dir, loaded.logId, loaded.report, loaded.segments, commit, {
      records: opts.ringRecords ?? tailRingRecords,
      bytes: opts.ringBytes ?? tailRingBytes,
    });
    return log;
  }

  get firstOffset(): number {
    return (this.segmentList[0] as Segment).baseOffset;
  }

  get nextOffset(): number {
    return this.commit?.nextOffset ?? this.activeSegment.nextOffset;
  }

  get durableOffset(): number {
    return this.commit?.durableOffset ?? this.activeSegment.nextOffset;
  }

  /** What the tail ring holds: records [fromOffset, durableOffset) and their encoded bytes. */
  get tailRing(): { fromOffset: number; records: number; bytes: number } {
    return { fromOffset: this.ring.startOffset, records: this.ring.count, bytes: this.ring.bytes };
  }

  get failed(): LogError | null {
    return this.commit?.failed ?? null;
  }

  /** Why acknowledgements are held for now (a roll retrying the next segment's open while
   *  descriptors are short), or null: appends still queue, and are acknowledged once it opens. */
  get held(): string | null {
    return this.commit?.held ?? null;
  }

  private get activeSegment(): Segment {
    return this.segmentList[this.segmentList.length - 1] as Segment;
  }

  append(drafts: RecordDraft[], opts?: { durable?: boolean }): Appended {
    if (this.commit === null) throw new LogError('LOG_CLOSED', 'log was opened read-only');
    if (this.closed) throw new LogError('LOG_CLOSED', 'log is closed');
    return this.commit.append(drafts, opts?.durable === true);
  }

  private committed(records: LogRecord[], frameBytes: number[], durableOffset: number): void {
    this.ring.push(records, frameBytes);
    this.wakeTails();
    for (const listener of this.listeners) listener(durableOffset);
  }

  /** Durable records [from, to) in batches: from the ring when it holds them, else from disk. */
  async *readBatches(from: number, to = this.durableOffset): AsyncGenerator<LogRecord[]> {
    const end = Math.min(to, this.durableOffset);
    if (from < this.firstOffset) throw new LogError('LOG_NOT_FOUND', `offset ${from} is before the first retained offset ${this.firstOffset}`, { offset: from });
    if (from >= end) return;
    const fromRing = this.ring.slice(from, end);
    if (fromRing !== null) {
      yield fromRing;
      return;
    }
    yield* readBatches(() => this.segmentList, from, end);
  }

  async *read(from: number, to?: number): AsyncGenerator<LogRecord> {
    for await (const batch of this.readBatches(from, to)) yield* batch;
  }

  async readOne(offset: number): Promise<LogRecord | null> {
    if (offset < this.firstOffset || offset >= this.durableOffset) return null;
    for await (const batch of this.readBatches(offset, offset + 1)) return batch[0] ?? null;
    return null;
  }

  /** First offset whose timestamp >= ts (nextOffset if none). Timestamps are expected to be
   *  non-decreasing (the broker's clock); with steps back the answer is the first record at or
   *  after the point where the running maximum reached ts. */
  async offsetAtTime(ts: number): Promise<number> {
    const limit = this.durableOffset;
    for (const segment of this.segmentList.slice()) {
      const found = await offsetAtTimeIn(segment, ts, Math.min(limit, segment.nextOffset));
      if (found !== null) return found;
    }
    return this.nextOffset;
  }

  /** Last offset whose timestamp <= ts, or firstOffset - 1 if none (same clock caveat). */
  async lastOffsetAtOrBefore(ts: number): Promise<number> {
    return Math.min(await this.offsetAtTime(ts + 1), this.durableOffset) - 1;
  }

  tail(from: number): TailIterator {
    const log = this;
    const source: TailSource = {
      get durableOffset() {
        return log.durableOffset;
      },
      get isOpen() {
        return !log.closed && log.failed === null;
      },
      async readBatch(batchFrom, batchTo) {
        const out: LogRecord[] = [];
        for await (const batch of log.readBatches(batchFrom, batchTo)) out.push(...batch);
        return out;
      },
      waitForDurable(wake) {
        log.wakers.add(wake);
        return () => log.wakers.delete(wake);
      },
    };
    return tailLog(source, from);
  }

  onDurable(listener: (durableOffset: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Retention: removes (or moves to archiveDir) the oldest sealed segments whose records are all
   *  < offset and whose last timestamp < olderThanTs, each with every file named after it (its
   *  indexes, its `.jobindex`: retire.ts). Only a prefix: offsets stay gap-free. A segment leaves
   *  the list only once its files have left the directory, so a failure (thrown) leaves it
   *  listed, readable and retried by the next call. Calls must not overlap each other. */
  async dropSegmentsBefore(offset: number, olderThanTs: number, archiveDir?: string): Promise<string[]> {
    if (this.commit === null) throw new LogError('LOG_CLOSED', 'log was opened read-only');
    const removed: string[] = [];
    if (archiveDir !== undefined) await mkdir(archiveDir, { recursive: true });
    try {
      let names: string[] | null = null;
      while (this.segmentList.length > 1) {
        const s = this.segmentList[0] as Segment;
        if (s.nextOffset > offset || (s.maxTimestamp ?? Number.NEGATIVE_INFINITY) >= olderThanTs) break;
        if (names === null && archiveDir !== undefined) await checkArchiveDir(this.dir, archiveDir);
        names ??= await readdir(this.dir);
        await retireFiles(this.dir, filesOfSegment(names, s.file), archiveDir);
        if (this.segmentList[0] !== s) throw new Error('dropSegmentsBefore: overlapping calls');
        this.segmentList.shift();
        removed.push(s.file);
      }
    } finally {
      if (removed.length > 0) {
        await syncDir(this.dir);
        if (archiveDir !== undefined) await syncDir(archiveDir);
      }
    }
    return removed;
  }

  /** The active segment's base offset and the end of its bytes that a completed sync covers:
   *  whole frames that nothing writes again (group-commit.ts). Null for a read-only log. Taken
   *  together with segments() in one synchronous step, the two describe the same segments. */
  syncedEnd(): { baseOffset: number; bytes: number } | null {
    return this.commit?.syncedEnd() ?? null;
  }

  /** The verified state of every sealed segment, for a later open of this log (knownSealed). */
  sealedScanResults(): Map<number, SealedScanResult> {
    const out = new Map<number, SealedScanResult>();
    for (const segment of this.segmentList.slice(0, -1)) {
      out.set(segment.baseOffset, { base: segment.baseOffset, logId: this.logId, clean: true, scan: segment.scanState() });
    }
    return out;
  }

  segments(): SegmentInfo[] {
    return this.segmentList.map((s) => ({
      file: s.file,
      baseOffset: s.baseOffset,
      nextOffset: s.nextOffset,
      bytes: s.bytes,
      firstTimestamp: s.firstTimestamp,
      lastTimestamp: s.lastTimestamp,
    }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.commit?.close();
    this.wakeTails();
  }

  private wakeTails(): void {
    const wakers = [...this.wakers];
    this.wakers.clear();
    for (const wake of wakers) wake();
  }
}

/** Opens a log for tools: scans and verifies, never writes, truncates or rebuilds anything.
 *  With `until`, only the segments a point needs are read (LogOptions.until); with `endAtDamage`,
 *  the log ends before the first damage (LogOptions.endAtDamage); with `knownSealed`, sealed
 *  segments an earlier open verified are not read again. */
export function openReadOnly(
  dir: string,
  logger: (line: string) => void = () => {},
  opts: Pick<LogOptions, 'until' | 'endAtDamage' | 'knownSealed'> = {},
): Promise<Log> {
  return Log.open({ ...opts, dir, readOnly: true, logger });
}

/** Tools accept the data directory or the log directory itself: `<dir>` when it holds segment
 *  files, else `<dir>/log` (where the broker keeps its log). A `<dir>` that is there but cannot
 *  be listed (a file, no permission) is named as given, not as the `<dir>/log` looked for next. */
export async function findLogDir(dir: string): Promise<string> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    const why = err.code === 'ENOTDIR' ? 'is not a directory' : `cannot be read (${err.code ?? err.message})`;
    throw new LogError('LOG_NOT_FOUND', `${dir} ${why}: --dir (or DATA_DIR) names the data directory or its log directory`, { file: dir, cause: err });
  });
  return names.some((n) => segmentFilePattern.test(n)) ? dir : join(dir, 'log');
}
