// Opening a log directory (Kafka's LogLoader): list the segments, check every header, scan
// every frame of every segment, and decide what a problem means.
//
//   problem in the last segment, only zeros after it     → preallocated space: truncate, fsync
//   problem in the last segment, nothing valid after it  → torn tail: save the cut bytes as
//                                                          <segment>.torn-<pos>, truncate, fsync
//   problem in the last segment, valid frames after it,  → the last write reached the disk in part
//   all within one group commit of the end, with a whole    (a power loss during its sync): cut as
//   aligned zero sector among them                          a torn tail (segment-scan.ts)
//   any other problem with valid frames after it, or a    → LOG_CORRUPT (file, byte, offset)
//   problem in a sealed segment
//   offsets not continuing across segments               → LOG_GAP
//   the only segment shorter than a header               → a first start that crashed: keep its
//                                                          bytes as <segment>.torn-0, start a
//                                                          fresh log (read-only: an empty log)
//   with repair: true, the last two are quarantined instead: the bytes from the bad point and
//   every later segment move to <dir>/quarantine-<ms>/ and the log opens at the last good offset
//   (a fresh log when nothing is left); unless the caller's repairCheck says the state could not
//   be rebuilt from what would be left, and then nothing moves (LOG_CORRUPT, with its reason).
//
// readOnly never changes anything on disk: a torn tail is only reported (the log ends before
// it) and indexes are not rewritten. A read-only open may run beside a broker: a last segment
// that moves or shrinks while it is scanned is scanned again, and a listing that caught a roll
// half done (an offset gap, a last segment shorter than a header) is listed again, before either
// is reported (loadSegments, checkSegment). Runs once per open; nothing else touches the directory
// while it runs. With sealedInWorker the sealed segments are scanned in a worker thread
// (sealed-scan.ts) and clean results adopted; with knownSealed, what an earlier open of the same
// log found for a sealed segment is adopted while the file keeps its size (sealed segments are
// never written again). Anything else is checked here as without them.
//
// A read-only open for a point in the log (`until`: recover, replay and export with --until)
// verifies, exactly as above, every segment up to the one that reaches the point (an offset: the
// segment holding the record before it; a time: the first segment holding a record stamped after
// it, where the time resolves), and stops there: the segments after it are not read, so damage in
// them, or a gap before them, does not stop the tool (OpenReport.notRead names them). The log
// then ends, for this reader, where the last segment read ends.
//
// A read-only open with endAtDamage (logcat, and the tools with --until) does not fail at the
// first damage (a corrupt record, a gap): the log ends, for this reader, just before it, with the
// sound records before it, and OpenReport.damage names it. The caller decides whether its range
// needed anything past it. Damage in the first segment's header leaves no log to read: it fails.

import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tornCopiesPerPositionMax } from '../constants.js';
import { isShrank, LogError, messageOf } from './errors.js';
import { readFully } from './frame-cursor.js';
import { Segment, syncDir } from './segment.js';
import {
  decodeSegmentHeader,
  encodeSegmentHeader,
  newLogId,
  segmentFilePattern,
  segmentHeaderBytes,
} from './segment-header.js';
import { scanSealedInWorker, type SealedScanResult } from './sealed-scan.js';
import { scanSegment, tornLastWrite, validFrameAfter, zerosFrom, type ScanProblem } from './segment-scan.js';
import { writeAll } from './write-all.js';

export interface TailCut {
  segment: string;
  position: number;
  bytes: number;
  /** Where the cut bytes were saved (null in readOnly mode: nothing was cut). */
  savedAs: string | null;
}

export interface Quarantine {
  dir: string;
  segment: string;
  position: number;
  offset: number;
  reason: string;
  files: string[];
}

export interface OpenReport {
  segments: number;
  records: number;
  tailCut: TailCut | null;
  quarantined: Quarantine | null;
  indexesRebuilt: string[];
  /** Sealed segments whose verification a worker thread did (LoadOptions.sealedInWorker). */
  verifiedInWorker: number;
  /** Sealed segments taken from an earlier open's results (LoadOptions.knownSealed), or from an
   *  earlier listing of this open (a read-only open that listed again), not read again. */
  knownSealed: number;
  /** Segments after LoadOptions.until or after the damage, neither read nor checked (files, in
   *  offset order). */
  notRead: string[];
  /** The damage that ended an open with LoadOptions.endAtDamage (the log ends before it). */
  damage: LogError | null;
}

/** How far a read-only open reads: up to an offset (exclusive) or a time (a point, point.ts). */
export type ReadBound = { kind: 'offset'; offset: number } | { kind: 'time'; ms: number };

export interface LoadOptions {
  dir: string;
  readOnly: boolean;
  repair: boolean;
  logger: (line: string) => void;
  /** Verify the sealed segments in a worker thread (sealed-scan.ts) while the caller goes on. */
  sealedInWorker?: boolean;
  /** Sealed segments an earlier open of this log verified (Log.sealedScanResults()), by base. */
  knownSealed?: ReadonlyMap<number, SealedScanResult>;
  /** Read-only only: read no segment after the one that reaches this point (see the top). */
  until?: ReadBound;
  /** Read-only only: the first damage ends the log instead of failing the open (see the top). */
  endAtDamage?: boolean;
  /** With repair: asked before anything moves whether the state can be rebuilt once the log is
   *  cut at `cutAt` (the first record set aside) and starts at `firstOffset`; a reason not to
   *  repair, or null. Without it the cut goes ahead (the caller has no state to rebuild). */
  repairCheck?: (cutAt: number, firstOffset: number) => Promise<string | null>;
}

export interface Loaded {
  logId: string;
  segments: Segment[];
  report: OpenReport;
}

interface Bad {
  index: number;
  problem: ScanProblem;
  code: 'LOG_CORRUPT' | 'LOG_GAP';
}

export async function loadSegments(opts: LoadOptions): Promise<Loaded> {
  const { dir } = opts;
  if (opts.until !== undefined && !opts.readOnly) throw new Error('assertion: loadSegments: until is for read-only opens');
  if (opts.endAtDamage === true && !opts.readOnly) throw new Error('assertion: loadSegments: endAtDamage is for read-only opens');
  if (opts.readOnly) {
    if (!(await exists(dir))) throw new LogError('LOG_NOT_FOUND', `no log directory at ${dir}`, { file: dir });
  } else {
    await mkdir(dir, { recursive: true });
  }
  // A read-only open beside a running broker lists the directory while the broker may be rolling
  // segments. One listing can hold a segment created while it was taken but miss the one created
  // just before (readdir walks ext4's hash order, not creation order): an offset gap. It can also
  // hold a segment between its O_EXCL create and its header write: a last segment shorter than a
  // header. A writer moves past both within a roll, so the directory is listed again (segments
  // already verified are not read again) until a listing holds together; only a problem that
  // outlasts liveTailRescans listings is reported, exactly as for a stopped log. So is a listed
  // segment gone before it was read: the broker's retention removed the log's oldest segments
  // meanwhile, and the next listing starts after them (a snapshot process or a tool used to fail,
  // and had to be run again).
  let knownSealed = opts.knownSealed;
  for (let relists = 0; ; relists++) {
    const listed = await loadListed({ ...opts, knownSealed }, await listSegmentBases(dir), opts.readOnly && relists < liveTailRescans);
    if (!('relist' in listed)) return listed;
    knownSealed = listed.relist;
    await sleep(liveTailRescanMs);
  }
}

/** Opens the segments of one listing. With mayRelist, a listing that caught a roll half done
 *  returns `relist`: what it verified, for the next listing to adopt. */
async function loadListed(opts: LoadOptions, bases: number[], mayRelist: boolean): Promise<Loaded | { relist: Map<number, SealedScanResult> }> {
  const { dir } = opts;
  const report: OpenReport = emptyReport();
  if (bases.length === 0) {
    if (opts.readOnly) throw new LogError('LOG_NOT_FOUND', `no segments in ${dir}`, { file: dir });
    const logId = newLogId();
    const segment = await createSegment(dir, logId, 0);
    report.segments = 1;
    return { logId, segments: [segment], report };
  }
  const segments = bases.map((base) => new Segment(dir, base));
  if (mayRelist && (await shorterThanHeader(segments[segments.length - 1] as Segment))) return { relist: verifiedBefore(opts, segments, 0, null) };
  const sealedScans =
    opts.sealedInWorker === true && bases.length > 1 ? scanSealedInWorker({ dir, bases: bases.slice(0, -1) }, opts.logger) : null;
  let logId: string | null = null;
  let reached = false;
  for (let i = 0; i < segments.length; i++) {
    if (reached) {
      report.notRead = segments.slice(i).map((s) => s.file);
      segments.length = i;
      break;
    }
    const segment = segments[i] as Segment;
    const isLast = i === segments.length - 1;
    const prev = segments[i - 1];
    const expected = prev === undefined ? segment.baseOffset : prev.nextOffset;
    let bad: Bad | null = null;
    if (segment.baseOffset !== expected) {
      if (mayRelist) return { relist: verifiedBefore(opts, segments, i, logId) };
      const what = `segment starts at offset ${segment.baseOffset}, expected ${expected}`;
      bad = { index: i, code: 'LOG_GAP', problem: { kind: 'offset-mismatch', position: 0, expectedOffset: expected, what } };
    } else {
      try {
        const verified: SealedScanResult | null = isLast
          ? null
          : await verifiedElsewhere(segment, logId, opts.knownSealed, sealedScans, report);
        if (verified !== null) {
          segment.adoptScan(verified.scan);
          logId = verified.logId;
        } else {
          const result = await checkSegment(segment, logId, isLast, opts, report);
          logId = result.logId ?? logId;
          if (result.problem !== null) bad = { index: i, code: result.code, problem: result.problem };
        }
      } catch (error) {
        // Gone since the listing: the broker's retention removed the log's oldest segments.
        if (mayRelist && error instanceof LogError && error.code === 'LOG_NOT_FOUND') return { relist: verifiedBefore(opts, segments, i, logId) };
        throw error;
      }
    }
    if (bad !== null && opts.endAtDamage === true && logId !== null) {
      endBefore(segments, i, expected, corruptionError(segment, bad), report);
      break;
    }
    if (bad !== null) {
      if (!opts.repair || opts.readOnly) throw corruptionError(segment, bad);
      const refused = (await opts.repairCheck?.(bad.problem.expectedOffset, (segments[0] as Segment).baseOffset)) ?? null;
      if (refused !== null) {
        const { message } = corruptionError(segment, bad);
        throw new LogError(bad.code, `${message}; --repair refused, nothing was moved: ${refused}`, { file: segment.path, offset: bad.problem.expectedOffset });
      }
      report.quarantined = await quarantine(dir, segments, bad, opts.logger);
      segments.length = bad.problem.position <= segmentHeaderBytes ? i : i + 1;
      break;
    }
    reached = opts.until !== undefined && reaches(segment, opts.until);
  }
  if (segments.length === 0) {
    const fresh = await startFreshAfterRepair(dir, bases[0] as number, opts.logger);
    segments.push(fresh.segment);
    logId = fresh.logId;
  }
  if (logId === null) throw new Error(`assertion: segments of ${dir} were kept without a log id`);
  const last = segments[segments.length - 1] as Segment;
  if (report.quarantined !== null && !opts.readOnly) await last.removeIndexFiles();
  if (!opts.readOnly) await checkIndexFiles(segments.slice(0, -1), report, opts.logger);
  report.segments = segments.length;
  report.records = last.nextOffset - (segments[0] as Segment).baseOffset;
  return { logId, segments, report };
}

/** Ends the log just before the damage in segments[index] (endAtDamage): a segment that continues
 *  the one before was scanned up to the damage and keeps the records before it; one that does not
 *  (a gap) was not scanned and holds none. What is left out is notRead. */
function endBefore(segments: Segment[], index: number, expected: number, damage: LogError, report: OpenReport): void {
  const kept = (segments[index] as Segment).baseOffset === expected ? index + 1 : index;
  report.damage = damage;
  report.notRead = segments.slice(kept).map((s) => s.file);
  segments.length = kept;
}

/** Whether `segment` (scanned) reaches the point: no later segment is needed to read the records
 *  before it, or to resolve it (offsetAtTime stops at the first segment stamped past the time). */
function reaches(segment: Segment, until: ReadBound): boolean {
  if (until.kind === 'offset') return segment.nextOffset >= until.offset;
  return segment.maxTimestamp !== null && segment.maxTimestamp > until.ms;
}

/** The caller's knownSealed plus segments[0, end), verified clean by this listing. */
function verifiedBefore(opts: LoadOptions, segments: Segment[], end: number, logId: string | null): Map<number, SealedScanResult> {
  const out = new Map(opts.knownSealed ?? []);
  for (const s of segments.slice(0, end)) out.set(s.baseOffset, { base: s.baseOffset, logId, clean: true, scan: s.scanState() });
  return out;
}

/** True when the segment file is shorter than a header (a file already gone is checkSegment's). */
async function shorterThanHeader(segment: Segment): Promise<boolean> {
  const size = await stat(segment.path).then(
    (s) => s.size,
    () => segmentHeaderBytes,
  );
  return size < segmentHeaderBytes;
}

export function emptyReport(): OpenReport {
  return { segments: 0, records: 0, tailCut: null, quarantined: null, indexesRebuilt: [], verifiedInWorker: 0, knownSealed: 0, notRead: [], damage: null };
}

function corruptionError(segment: Segment, bad: Bad): LogError {
  const { position, expectedOffset, what } = bad.problem;
  const message = `${bad.code === 'LOG_GAP' ? 'offset gap' : 'corrupt record'} in ${segment.path} at byte ${position} (record offset ${expectedOffset}): ${what}`;
  return new LogError(bad.code, message, { file: segment.path, position, offset: expectedOffset });
}

/** How often, and how far apart, a read-only open scans a last segment again before it calls a
 *  problem with valid frames after it damage (see checkSegment). */
const liveTailRescans = 5;
const liveTailRescanMs = 20;

/** Header + frame scan of one segment; cuts a torn tail of the last one. With `syncedEnd` (the
 *  scrub's check of a segment a writer is still appending to: isLast false, read-only), only the
 *  bytes before it are read, as a sealed segment's are: they are whole synced frames, so any
 *  problem among them is damage, and so is a file that ends before it; what lies after it (the
 *  writer's later records and preallocated zeros) is never read. */
export async function checkSegment(
  segment: Segment,
  logId: string | null,
  isLast: boolean,
  opts: LoadOptions,
  report: OpenReport,
  syncedEnd?: number,
): Promise<{ logId: string | null; problem: ScanProblem | null; code: 'LOG_CORRUPT' | 'LOG_GAP' }> {
  if (syncedEnd !== undefined && (isLast || !opts.readOnly)) throw new Error('assertion: checkSegment: syncedEnd is for a read-only check of a segment as sealed');
  const fh = await openListed(segment);
  try {
    const fileSize = (await fh.stat()).size;
    const headerBuf = Buffer.alloc(segmentHeaderBytes);
    const got = await readFully(fh, headerBuf, segmentHeaderBytes, 0);
    const header = decodeSegmentHeader(headerBuf.subarray(0, got));
    const at = { position: 0, expectedOffset: segment.baseOffset };
    if (typeof header === 'string') {
      if (isLast && fileSize < segmentHeaderBytes && logId === null) {
        return { logId: await startFresh(segment, fh, fileSize, opts, report), problem: null, code: 'LOG_CORRUPT' };
      }
      if (isLast && fileSize < segmentHeaderBytes && logId !== null) {
        // A roll that crashed before its header was synced: nothing was acknowledged in it.
        await restoreRolledHeader(segment, fh, fileSize, logId, opts, report);
        return { logId, problem: null, code: 'LOG_CORRUPT' };
      }
      return { logId, problem: { kind: 'bad-checksum', ...at, what: `bad segment header: ${header}` }, code: 'LOG_CORRUPT' };
    }
    if (header.baseOffset !== segment.baseOffset) {
      const what = `header says base offset ${header.baseOffset}, file name says ${segment.baseOffset}`;
      return { logId, problem: { kind: 'offset-mismatch', ...at, what }, code: 'LOG_CORRUPT' };
    }
    if (logId !== null && header.logId !== logId) {
      const what = `segment belongs to log ${header.logId}, not ${logId}`;
      return { logId, problem: { kind: 'bad-checksum', ...at, what }, code: 'LOG_CORRUPT' };
    }
    const live = opts.readOnly && isLast;
    let { size, problem } = await scanLive(segment, fh, syncedEnd === undefined ? fileSize : Math.min(fileSize, syncedEnd), live);
    if (problem === null && syncedEnd !== undefined && fileSize < syncedEnd) {
      const what = `the file ends at byte ${fileSize}, before the end of its synced records at byte ${syncedEnd}`;
      problem = { kind: 'partial-header', position: segment.bytes, expectedOffset: segment.nextOffset, what };
    }
    // A read-only open beside a running broker can catch the last segment mid-write: a frame
    // still zeros when scanned is half written, or written with more after it, when looked at
    // again, which reads as a torn tail or as damage in the middle. Damage stays where it is; a
    // writer moves on. So the segment is scanned again until two scans find the problem at the
    // same place; if it keeps moving, a writer is at work and the log ends, for this reader,
    // where the last scan stopped.
    let previous = -1;
    for (let rescans = 0; ; rescans++) {
      if (problem === null) return { logId: header.logId, problem: null, code: 'LOG_CORRUPT' };
      const code = problem.kind === 'offset-mismatch' ? 'LOG_GAP' : 'LOG_CORRUPT';
      if (!isLast || problem.kind === 'offset-mismatch') return { logId: header.logId, problem, code };
      if (await zerosFrom(fh, problem.position, size)) {
        await trimZeros(segment, problem.position, opts);
        return { logId: header.logId, problem: null, code };
      }
      if (opts.readOnly && problem.position !== previous) {
        if (rescans === liveTailRescans) return { logId: header.logId, problem: null, code };
        previous = problem.position;
        await sleep(liveTailRescanMs);
        ({ size, problem } = await scanLive(segment, fh, (await fh.stat()).size, live));
        continue;
      }
      if (!(await validFrameAfter(fh, problem.position, size))) {
        await cutTail(segment, fh, problem.position, size, opts, report);
        return { logId: header.logId, problem: null, code };
      }
      if (await tornLastWrite(fh, problem.position, size)) {
        await cutTail(segment, fh, problem.position, size, opts, report, 'valid frames after it belong to a last write that reached the disk in part');
        return { logId: header.logId, problem: null, code };
      }
      return { logId: header.logId, problem, code };
    }
  } finally {
    await fh.close();
  }
}

/** scanSegment up to `size`; when `live` (a read-only open of the last segment, beside a broker
 *  that may be running), a file that ends before `size` is scanned on to its new size: a roll or
 *  a close trimmed the preallocated zeros after the size was taken. The frames scanned stay. */
async function scanLive(segment: Segment, fh: FileHandle, size: number, live: boolean): Promise<{ size: number; problem: ScanProblem | null }> {
  for (let rescans = 0; ; rescans++) {
    try {
      return { size, problem: await scanSegment(segment, fh, size) };
    } catch (err) {
      if (!live || !isShrank(err) || rescans === liveTailRescans) throw err;
    }
    size = (await fh.stat()).size;
  }
}

/** The only segment is shorter than a header: a first start crashed between createSegment's
 *  O_EXCL create and its header write, so nothing was ever acknowledged in this log. Its bytes
 *  are kept aside (as a torn tail's are) and the log starts afresh: a new header with a new log
 *  id. Read-only, the log is empty (LOG_NOT_FOUND, as for a directory without segments). */
async function startFresh(segment: Segment, fh: FileHandle, fileSize: number, opts: LoadOptions, report: OpenReport): Promise<string> {
  const what = `its only segment ${segment.file} is ${fileSize} bytes, shorter than the ${segmentHeaderBytes}-byte header (a first start that stopped before writing it)`;
  if (opts.readOnly) {
    throw new LogError('LOG_NOT_FOUND', `the log in ${segment.dir} is empty: ${what}; the next start begins a fresh log`);
  }
  let savedAs: string | null = null;
  if (fileSize > 0) {
    const cut = Buffer.alloc(fileSize);
    await readFully(fh, cut, fileSize, 0);
    savedAs = await saveCutBytes(`${segment.path}.torn-0`, cut);
    report.tailCut = { segment: segment.file, position: 0, bytes: fileSize, savedAs };
  }
  const logId = newLogId();
  await writeFile(segment.path, encodeSegmentHeader(logId, segment.baseOffset), { flush: true });
  await syncDir(segment.dir);
  opts.logger(`started a fresh log ${logId}: ${what}, so nothing was acknowledged in it${savedAs === null ? '' : `; its bytes are kept as ${savedAs}`}`);
  return logId;
}

/** The last segment, after sealed ones, is shorter than a header: a roll stopped between its
 *  O_EXCL create and its header write. Its bytes, if any, are cut as a torn tail (a copy kept),
 *  and the header of this log is written. An empty file has nothing to keep, so no copy and no
 *  tail cut, as for a first start (startFresh): one line says the header was written. */
async function restoreRolledHeader(segment: Segment, fh: FileHandle, fileSize: number, logId: string, opts: LoadOptions, report: OpenReport): Promise<void> {
  if (fileSize > 0 || opts.readOnly) await cutTail(segment, fh, 0, fileSize, opts, report);
  if (opts.readOnly) return;
  await writeFile(segment.path, encodeSegmentHeader(logId, segment.baseOffset), { flush: true });
  if (fileSize === 0) opts.logger(`wrote the missing header of ${segment.file} (a roll stopped between creating it and writing its header; nothing was in it)`);
}

/** Repair moved every segment aside: the log starts afresh, with a new log id, where the first
 *  moved segment began. The moved records' offsets are handed out again to new records (nothing
 *  could extend the state past them); the line logged says so, the moved segments stay in the
 *  quarantine directory, and a stream resuming past the new end is refused (400), not misled. */
async function startFreshAfterRepair(dir: string, baseOffset: number, logger: (line: string) => void): Promise<{ logId: string; segment: Segment }> {
  const logId = newLogId();
  const segment = await createSegment(dir, logId, baseOffset);
  logger(`repair: no usable segment was left in ${dir}; started a fresh log ${logId} at offset ${baseOffset}: offsets from ${baseOffset} on now name new records`);
  return { logId, segment };
}

/** Cuts the preallocated zeros after the last record: nothing was lost, so no copy is kept and
 *  no tail cut is reported. readOnly leaves them (the log ends at the last record either way). */
async function trimZeros(segment: Segment, position: number, opts: LoadOptions): Promise<void> {
  if (!opts.readOnly) await truncateSynced(segment, position);
}

async function truncateSynced(segment: Segment, position: number): Promise<void> {
  const writer = await open(segment.path, fsConstants.O_RDWR);
  try {
    await writer.truncate(position);
    await writer.sync();
  } finally {
    await writer.close();
  }
}

async function cutTail(segment: Segment, fh: FileHandle, position: number, fileSize: number, opts: LoadOptions, report: OpenReport, why?: string): Promise<void> {
  const bytes = fileSize - position;
  const because = why === undefined ? '' : `; ${why}`;
  if (opts.readOnly) {
    report.tailCut = { segment: segment.file, position, bytes, savedAs: null };
    opts.logger(`torn tail of ${segment.file} at byte ${position}: ${bytes} bytes (read-only: left in place${because})`);
    return;
  }
  const cut = Buffer.alloc(bytes);
  await readFully(fh, cut, bytes, position);
  const savedAs = await saveCutBytes(`${segment.path}.torn-${position}`, cut);
  // The copy's directory entry is durable before the truncation that makes it the only copy.
  await syncDir(segment.dir);
  await truncateSynced(segment, position);
  await syncDir(segment.dir);
  report.tailCut = { segment: segment.file, position, bytes, savedAs };
  opts.logger(`cut torn tail of ${segment.file} at byte ${position}: ${bytes} bytes (saved as ${savedAs}${because})`);
}

/** Saves cut bytes under `base`, or `base.1`, `base.2`… when an earlier cut at the same byte
 *  already left a copy there (appends after a repair reuse the position, so a later tear can land
 *  on it again): every cut keeps its own copy. A copy holding these bytes, or a prefix of them
 *  (a crash while writing it), is reused, so a crashed repair and its repeat keep one copy. */
async function saveCutBytes(base: string, cut: Buffer): Promise<string> {
  for (let n = 0; n < tornCopiesPerPositionMax; n++) {
    const name = n === 0 ? base : `${base}.${n}`;
    const existing = await readFile(name).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return null;
      throw error;
    });
    if (existing === null) {
      await writeFile(name, cut, { flush: true, flag: 'wx' });
      return name;
    }
    if (existing.equals(cut)) return name;
    if (existing.length < cut.length && existing.equals(cut.subarray(0, existing.length))) {
      // A crash while an earlier repair wrote this copy left a prefix of the same bytes: finish it.
      await writeFile(name, cut, { flush: true });
      return name;
    }
  }
  throw new LogError('LOG_WRITE', `more than ${tornCopiesPerPositionMax} torn-tail copies at ${base}: inspect the disk`);
}

/** Moves segment[bad.index] from the bad point, and every later segment, into a quarantine dir. */
async function quarantine(dir: string, segments: Segment[], bad: Bad, logger: (line: string) => void): Promise<Quarantine> {
  const qdir = join(dir, `quarantine-${Date.now()}`);
  await mkdir(qdir, { recursive: true });
  const segment = segments[bad.index] as Segment;
  const { position } = bad.problem;
  const files: string[] = [];
  let from = bad.index;
  if (position > segmentHeaderBytes) {
    const kept = join(qdir, `${segment.file}.from-${position}`);
    const fh = await open(segment.path, fsConstants.O_RDWR);
    try {
      const size = (await fh.stat()).size;
      const tail = Buffer.alloc(size - position);
      await readFully(fh, tail, tail.length, position);
      await writeFile(kept, tail, { flush: true });
      await fh.truncate(position);
      await fh.sync();
    } finally {
      await fh.close();
    }
    files.push(kept);
    from = bad.index + 1;
  }
  for (const s of segments.slice(from)) {
    for (const path of [s.path, s.indexPath, s.timeIndexPath]) {
      if (!(await exists(path))) continue;
      const target = join(qdir, path.slice(dir.length + 1));
      await rename(path, target);
      files.push(target);
    }
  }
  await syncDir(qdir);
  await syncDir(dir);
  const q = { dir: qdir, segment: segment.file, position, offset: bad.problem.expectedOffset, reason: bad.problem.what, files };
  logger(`repair: quarantined ${segment.file} from byte ${position} (record offset ${q.offset}: ${q.reason}) and ${segments.length - 1 - bad.index} later segment(s) into ${qdir}`);
  return q;
}

/** Index files of sealed segments: rewritten when missing or different from the rebuild. They
 *  are derived data that nothing reads back (reads use the index in memory), so a rewrite that
 *  fails (EMFILE, ENOSPC) is one line and the open goes on, as a roll's does (group-commit.ts);
 *  the next open tries again. */
async function checkIndexFiles(sealed: Segment[], report: OpenReport, logger: (line: string) => void): Promise<void> {
  let rewrote = false;
  for (const s of sealed) {
    const same =
      (await readOrNull(s.indexPath))?.equals(s.index.offsetIndexBytes()) === true &&
      (await readOrNull(s.timeIndexPath))?.equals(s.index.timeIndexBytes()) === true;
    if (same) continue;
    const failure = await s.writeIndexFiles().then(
      () => null,
      (err: unknown) => err,
    );
    if (failure !== null) {
      logger(`could not rewrite the index files of ${s.file} (${messageOf(failure)}); reads use its index in memory and the next start tries again`);
      continue;
    }
    report.indexesRebuilt.push(s.file);
    logger(`rebuilt index files of ${s.file}`);
    rewrote = true;
  }
  if (rewrote && sealed[0] !== undefined) await syncDir(sealed[0].dir);
}

/** Creates a segment file with its header, synced, and fsyncs the directory. When a step after
 *  the create fails, the file is removed again (nothing was ever in it), so that a caller may
 *  try again: a roll does when descriptors are short (group-commit.ts). */
export async function createSegment(
  dir: string,
  logId: string,
  baseOffset: number,
  dirSync: (dir: string) => Promise<void> = syncDir,
): Promise<Segment> {
  const segment = new Segment(dir, baseOffset);
  const fh = await open(segment.path, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_EXCL, 0o644);
  try {
    try {
      await writeAll(fh, encodeSegmentHeader(logId, baseOffset), 0);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await dirSync(dir);
  } catch (err) {
    await rm(segment.path, { force: true }).catch(() => undefined);
    throw err;
  }
  return segment;
}

export async function listSegmentBases(dir: string): Promise<number[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  // Read as a segment, a directory so named fails with a bare EISDIR deep in a read.
  const notFile = entries.find((e) => e.isDirectory() && segmentFilePattern.test(e.name));
  if (notFile !== undefined) {
    const file = join(dir, notFile.name);
    throw new LogError('LOG_CORRUPT', `${file} is a directory, not a segment file`, { file });
  }
  return entries
    .map((e) => segmentFilePattern.exec(e.name)?.[1])
    .filter((digits): digits is string => digits !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

async function readOrNull(path: string): Promise<Buffer | null> {
  try {
    return await readFile(path);
  } catch {
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A verified result for the sealed `segment` that spares scanning it here: an earlier open's,
 *  while the file is unchanged, or the worker's. Counted in `report`; null when there is none. */
async function verifiedElsewhere(
  segment: Segment,
  logId: string | null,
  known: ReadonlyMap<number, SealedScanResult> | undefined,
  fromWorker: Promise<Map<number, SealedScanResult>> | null,
  report: OpenReport,
): Promise<SealedScanResult | null> {
  const fits = (r: SealedScanResult | undefined): r is SealedScanResult =>
    r !== undefined && r.clean && (logId === null || r.logId === logId);
  const earlier = known?.get(segment.baseOffset);
  if (fits(earlier) && (await unchanged(segment, earlier))) {
    report.knownSealed += 1;
    return earlier;
  }
  const worker = fromWorker === null ? undefined : (await fromWorker).get(segment.baseOffset);
  if (fits(worker)) {
    report.verifiedInWorker += 1;
    return worker;
  }
  return null;
}

/** The segment file is still the one `known` describes: same size and the same header. */
/** Opens a segment the listing named; one gone since is LOG_NOT_FOUND (a read-only tool beside a
 *  running broker, whose retention removed it after the listing), not a raw ENOENT. */
async function openListed(segment: Segment): Promise<FileHandle> {
  try {
    return await segment.openRead();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    throw new LogError('LOG_NOT_FOUND', `segment ${segment.file} is gone (retention removed it while the log was read?); run it again`, { file: segment.path, cause: err });
  }
}

async function unchanged(segment: Segment, known: SealedScanResult): Promise<boolean> {
  const fh = await openListed(segment);
  try {
    if ((await fh.stat()).size !== known.scan.bytes) return false;
    const headerBuf = Buffer.alloc(segmentHeaderBytes);
    const header = decodeSegmentHeader(headerBuf.subarray(0, await readFully(fh, headerBuf, segmentHeaderBytes, 0)));
    return typeof header !== 'string' && header.logId === known.logId && header.baseOffset === segment.baseOffset;
  } finally {
    await fh.close();
  }
}
