// JobHistory: every record that mentions a job, oldest first, found through per-segment job
// indexes (job-index.ts) instead of a scan of the log.
//
//   segments   [ sealed ][ sealed ] ... [ sealed ][ active ...........)
//   index      .jobindex files, loaded into an LRU   ActiveJobIndex, fed from the durable tail
//              cache bounded by cacheBytesMax         (log.onDurable → read the new records)
//
// Sealed segments: the `.jobindex` file is read and verified; when it is missing, damaged or
// stale the segment is scanned and the index rebuilt (and, with writeFiles, rewritten
// atomically). When the active segment rolls, its in-memory index is sealed and written. Only
// the server writes files; read-only tools and `serve --until` build indexes in memory only.
// Memory: one active index (bounded by the segment size) plus the cache; never a map of all ids.
//
// Lookups first bring the active index up to the durable offset they saw, then read each
// candidate record with readOne and keep it only if jobIdsOf(body) holds the id (hash
// collisions are filtered here). Async methods may overlap: catch-up runs one at a time, index
// builds are shared per segment, and lookups only read.

import { jobIndexCacheBytesMax } from '../constants.js';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SegmentInfo } from '../log/log.js';
import { jobIdsOf, releasesDependent, type LogRecord } from '../record/types.js';
import {
  ActiveJobIndex,
  decodeJobIndex,
  encodeJobIndex,
  jobIndexPath,
  sealedCandidates,
  type SealedJobIndex,
  type SegmentIdentity,
} from './job-index.js';


/** What the history needs from the Log (src/log/log.ts satisfies it). */
export interface HistoryLog {
  readonly dir: string;
  readonly firstOffset: number;
  readonly durableOffset: number;
  segments(): SegmentInfo[];
  /** Durable records [from, to) in batches, oldest first. */
  readBatches(from: number, to?: number): AsyncGenerator<LogRecord[]>;
  readOne(offset: number): Promise<LogRecord | null>;
  onDurable(listener: (durableOffset: number) => void): () => void;
}

export interface JobHistoryOptions {
  log: HistoryLog;
  /** Write `.jobindex` files beside sealed segments (the server only). */
  writeFiles: boolean;
  /** Point-in-time: only records with offset < until exist. */
  until?: number;
  cacheBytesMax?: number;
  logger?: (line: string) => void;
}

function identityOf(segment: SegmentInfo): SegmentIdentity {
  return { baseOffset: segment.baseOffset, recordCount: segment.nextOffset - segment.baseOffset, segmentBytes: segment.bytes };
}

function segmentPath(dir: string, segment: SegmentInfo): string {
  return join(dir, segment.file);
}

export class JobHistory {
  private readonly log: HistoryLog;
  private readonly writeFiles: boolean;
  private readonly until: number;
  private readonly cacheBytesMax: number;
  private readonly logger: (line: string) => void;
  private readonly cache = new Map<number, SealedJobIndex>();
  private readonly builds = new Map<number, Promise<SealedJobIndex>>();
  private cacheBytes = 0;
  private active: ActiveJobIndex;
  private indexedTo: number;
  private catching: Promise<void> | null = null;
  private warming: Promise<void> = Promise.resolve();
  /** The start-up sweep of leftover files; every write of a `.jobindex` waits for it. */
  private swept: Promise<void> = Promise.resolve();
  private unsubscribe: (() => void) | null = null;
  private firstOffsetSeen: number;

  constructor(opts: JobHistoryOptions) {
    this.log = opts.log;
    this.writeFiles = opts.writeFiles;
    this.until = opts.until ?? Number.POSITIVE_INFINITY;
    this.cacheBytesMax = opts.cacheBytesMax ?? jobIndexCacheBytesMax;
    this.logger = opts.logger ?? (() => undefined);
    const last = opts.log.segments().at(-1);
    if (last === undefined) throw new Error('JobHistory: the log has no segment');
    this.active = new ActiveJobIndex(last.baseOffset);
    this.indexedTo = last.baseOffset;
    this.firstOffsetSeen = opts.log.firstOffset;
  }

  /** Follows the durable tail; with writeFiles, removes leftover files and then checks every
   *  sealed segment's file in the background. */
  start(): void {
    if (this.unsubscribe !== null) return;
    this.unsubscribe = this.log.onDurable(() => void this.catchUp().catch((e: unknown) => this.logger(`tapeq: job index: ${String(e)}`)));
    void this.catchUp().catch((e: unknown) => this.logger(`tapeq: job index: ${String(e)}`));
    if (!this.writeFiles) return;
    this.swept = this.sweepLeftovers().catch((e: unknown) => this.logger(`tapeq: job index sweep failed: ${String(e)}`));
    this.warming = this.swept.then(() => this.checkFiles()).catch((e: unknown) => this.logger(`tapeq: job index check failed: ${String(e)}`));
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    await this.warming;
    await this.catching?.catch(() => undefined);
    await Promise.allSettled([...this.builds.values()]);
  }

  private limit(): number {
    return Math.min(this.until, this.log.durableOffset);
  }

  /**
   * Every record that touched `jobId`, oldest first (empty when none did): the records that name
   * it, and the completions and removals of the jobs it waited for (a push's pendingDeps) that
   * released it (releasesDependent: not a failed job's removal, nor an expiry). The fold moves a
   * dependent out of waiting-children when its last dependency completes or goes,
   * with no record naming the dependent, so without these its history would not say when or why
   * it became runnable. A custom id pushed again after its removal is a new job with its own
   * dependencies: each push's are listed from that push up to the next one (as logcat --job).
   */
  async *records(jobId: string): AsyncGenerator<LogRecord> {
    const own: LogRecord[] = [];
    for await (const record of this.mentions(jobId)) own.push(record);
    const pushes = own.filter((r) => r.body.type === 'pushed');
    const waits = new Map<string, Array<{ from: number; to: number }>>();
    pushes.forEach((push, i) => {
      if (push.body.type !== 'pushed') return;
      const to = pushes[i + 1]?.offset ?? Number.POSITIVE_INFINITY;
      for (const dep of push.body.pendingDeps) waits.set(dep, [...(waits.get(dep) ?? []), { from: push.offset, to }]);
    });
    if (waits.size === 0) return yield* own;
    const released: LogRecord[] = [];
    for (const [dep, windows] of waits) {
      for await (const record of this.mentions(dep)) {
        const waited = windows.some((w) => record.offset > w.from && record.offset < w.to);
        if (waited && releasesDependent(record.body, dep)) released.push(record);
      }
    }
    const byOffset = new Map<number, LogRecord>();
    for (const record of [...own, ...released]) byOffset.set(record.offset, record);
    yield* [...byOffset.values()].sort((a, b) => a.offset - b.offset);
  }

  /** Every record that names `jobId`, oldest first (empty when none does). */
  private async *mentions(jobId: string): AsyncGenerator<LogRecord> {
    const limit = this.limit();
    while (this.indexedTo < limit) await this.catchUp();
    await this.pruneDropped();
    for (const segment of this.log.segments()) {
      if (segment.baseOffset >= limit) break;
      const sealed = segment.baseOffset < this.active.baseOffset ? await this.sealedOrNull(segment) : null;
      const candidates =
        segment.baseOffset === this.active.baseOffset ? this.active.candidates(jobId) : sealed === null ? [] : sealedCandidates(sealed, jobId);
      for (const offset of candidates) {
        if (offset >= limit) break;
        const record = await this.readOrNull(offset);
        if (record !== null && jobIdsOf(record.body).includes(jobId)) yield record;
      }
    }
  }

  /** A segment retention removed since the log listed it has no records left to find: a read-only
   *  server (`serve --until`) keeps the listing it opened with while the writer's retention goes on. */
  private async sealedOrNull(segment: SegmentInfo): Promise<SealedJobIndex | null> {
    try {
      return await this.sealed(segment);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'LOG_NOT_FOUND') return null;
      throw err;
    }
  }

  /** A record retention removed between the index lookup and the read is simply gone. */
  private async readOrNull(offset: number): Promise<LogRecord | null> {
    try {
      return await this.log.readOne(offset);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'LOG_NOT_FOUND') return null;
      throw err;
    }
  }

  private catchUp(): Promise<void> {
    this.catching ??= this.runCatchUp().finally(() => {
      this.catching = null;
    });
    return this.catching;
  }

  /** Indexes durable records [indexedTo, limit), sealing the active index at each roll. */
  private async runCatchUp(): Promise<void> {
    const end = this.limit();
    if (this.indexedTo >= end) return;
    const segments = this.log.segments();
    let nextBase = segments.find((s) => s.baseOffset > this.active.baseOffset)?.baseOffset ?? Number.POSITIVE_INFINITY;
    // Whole batches: the live catch-up runs once per group commit, and one async step per
    // record would cost more than indexing it.
    for await (const batch of this.log.readBatches(this.indexedTo, end)) {
      for (const record of batch) {
        while (record.offset >= nextBase) {
          const sealedSegment = segments.find((s) => s.baseOffset === this.active.baseOffset);
          if (sealedSegment !== undefined) await this.sealActive(sealedSegment);
          this.active = new ActiveJobIndex(nextBase);
          nextBase = segments.find((s) => s.baseOffset > nextBase)?.baseOffset ?? Number.POSITIVE_INFINITY;
        }
        this.active.add(record);
        this.indexedTo = record.offset + 1;
      }
    }
  }

  private async sealActive(segment: SegmentInfo): Promise<void> {
    const index = this.active.seal(identityOf(segment));
    this.remember(index);
    if (this.writeFiles) await this.writeFile(segment, index);
  }

  /** The sealed index of `segment`: from the cache, the verified file, or a rebuild. */
  private sealed(segment: SegmentInfo): Promise<SealedJobIndex> {
    const cached = this.cache.get(segment.baseOffset);
    if (cached !== undefined) {
      this.cache.delete(segment.baseOffset);
      this.cache.set(segment.baseOffset, cached);
      return Promise.resolve(cached);
    }
    let build = this.builds.get(segment.baseOffset);
    if (build === undefined) {
      build = this.loadOrRebuild(segment).finally(() => this.builds.delete(segment.baseOffset));
      this.builds.set(segment.baseOffset, build);
    }
    return build;
  }

  private async loadOrRebuild(segment: SegmentInfo): Promise<SealedJobIndex> {
    const path = jobIndexPath(segmentPath(this.log.dir, segment));
    const problem = await readIndexFile(path, identityOf(segment));
    if (typeof problem !== 'string') {
      this.remember(problem);
      return problem;
    }
    const index = await this.scan(segment);
    if (this.writeFiles && (await this.writeFile(segment, index))) this.logger(`tapeq: rebuilt job index of ${segment.file} (${problem})`);
    this.remember(index);
    return index;
  }

  private async scan(segment: SegmentInfo): Promise<SealedJobIndex> {
    const building = new ActiveJobIndex(segment.baseOffset);
    for await (const batch of this.log.readBatches(segment.baseOffset, segment.nextOffset)) for (const record of batch) building.add(record);
    return building.seal(identityOf(segment));
  }

  /** The file is a cache of the index in hand: when it cannot be written (a full disk, or
   *  retention retiring the segment meanwhile) the query goes on and a later one tries again. */
  private async writeFile(segment: SegmentInfo, index: SealedJobIndex): Promise<boolean> {
    await this.swept;
    try {
      await writeIndexFile(segmentPath(this.log.dir, segment), index);
      return true;
    } catch (err) {
      this.logger(`tapeq: could not write the job index of ${segment.file}: ${(err as Error).message}; it is kept in memory and written again when next rebuilt`);
      return false;
    }
  }

  /** Server start: removes the temp files of writes that never finished (a crash mid-write) and
   *  the `.jobindex` files of segments that are gone (left by retention before the job index went
   *  with its segment, or written by a rebuild that raced retention). Runs before this process
   *  writes any (writeFile waits for it), so none of its own temp files is taken. */
  private async sweepLeftovers(): Promise<void> {
    const bases = new Set(this.log.segments().map((s) => s.baseOffset));
    let count = 0;
    for (const name of await readdir(this.log.dir)) {
      const base = jobIndexFilePattern.exec(name)?.[1];
      const leftover = base === undefined ? jobIndexTmpPattern.test(name) : !bases.has(Number(base));
      if (!leftover) continue;
      await rm(join(this.log.dir, name), { force: true });
      count += 1;
    }
    if (count > 0) this.logger(`tapeq: removed ${count} leftover job index file(s) (temp files, or of segments that are gone)`);
  }

  /** Server start: every sealed segment gets a verified `.jobindex` file (rebuilt if needed).
   *  Goes through sealed() so a lookup of the same segment shares the work (one writer per file). */
  private async checkFiles(): Promise<void> {
    for (const segment of this.log.segments()) {
      if (segment.baseOffset >= this.active.baseOffset || this.unsubscribe === null) break;
      await this.sealed(segment);
    }
  }

  private remember(index: SealedJobIndex): void {
    const bytes = index.entries.byteLength;
    if (bytes > this.cacheBytesMax) return;
    const old = this.cache.get(index.baseOffset);
    if (old !== undefined) this.cacheBytes -= old.entries.byteLength;
    this.cache.delete(index.baseOffset);
    this.cache.set(index.baseOffset, index);
    this.cacheBytes += bytes;
    for (const [base, entry] of this.cache) {
      if (this.cacheBytes <= this.cacheBytesMax) break;
      this.cache.delete(base);
      this.cacheBytes -= entry.entries.byteLength;
    }
  }

  /** After retention: forget dropped segments. Retention takes their `.jobindex` files with them;
   *  this removes one a rebuild wrote after that. */
  private async pruneDropped(): Promise<void> {
    const first = this.log.firstOffset;
    if (first === this.firstOffsetSeen) return;
    this.firstOffsetSeen = first;
    for (const [base, entry] of this.cache) {
      if (base >= first) continue;
      this.cache.delete(base);
      this.cacheBytes -= entry.entries.byteLength;
    }
    if (!this.writeFiles) return;
    for (const name of await readdir(this.log.dir)) {
      const match = jobIndexFilePattern.exec(name);
      if (match?.[1] !== undefined && Number(match[1]) < first) await rm(join(this.log.dir, name), { force: true });
    }
  }
}

async function readIndexFile(path: string, identity: SegmentIdentity): Promise<SealedJobIndex | string> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return 'missing';
    throw err;
  }
  return decodeJobIndex(bytes, identity);
}

/** `<base>.jobindex`, the file of the segment `<base>.log`. */
const jobIndexFilePattern = /^(\d{20})\.jobindex$/;
/** A temp file of writeIndexFile: `<base>.jobindex.tmp-<pid>-<n>`. */
const jobIndexTmpPattern = /^\d{20}\.jobindex\.tmp-\d+-\d+$/;

let tmpCounter = 0;

/** Temp file, flushed, renamed: a crash leaves the old file, the new one, or none (rebuilt later),
 *  perhaps beside the temp file (swept at the next start). A failed write removes its temp file. */
async function writeIndexFile(segmentFile: string, index: SealedJobIndex): Promise<void> {
  const path = jobIndexPath(segmentFile);
  const tmp = `${path}.tmp-${process.pid}-${++tmpCounter}`;
  try {
    await writeFile(tmp, encodeJobIndex(index), { flush: true });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
