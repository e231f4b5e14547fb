// Point-in-time recovery into a new data directory: the log up to the cut, plus a snapshot of the
// state at the cut. The source is only ever read.
//
//   source log   [seg 0 ........][seg 1 ........][seg 2 ....|.....][seg 3 ...]
//                                                            ^ cut (= until, exclusive)
//   new log      [seg 0 ........][seg 1 ........][seg 2 ....]        every byte of each frame
//                                                                    copied; seg 2 ends at the
//                                                                    frame boundary of the cut
//
// The recovered log is a fork: same offsets and records below the cut, but a NEW log id written
// into every segment header (header checksum recomputed), so segments of the two logs can never
// be mixed in one directory and nothing mistakes the fork for the original. Sparse indexes and
// `.jobindex` files are not copied: `serve` rebuilds them when it opens the new directory.
// A segment whose base offset is the cut is left out, unless no earlier segment is kept (cut at
// the first retained offset): then its header alone is kept so the new log starts at the cut.
//
// The new directory is assembled beside the target as `<out>.recovering-<pid>`, every file and
// directory fsynced, then renamed into place: `<out>` is either absent/empty or complete.
// A fork of a compacted log (its first record above offset 0) cannot fall back to a full replay,
// so it also gets a copy of the source's newest valid snapshot below the cut that the fork's log
// can be replayed from (snapshots name no log id: it is the same history's state). A snapshot at
// the cut that proves bad later then has a fallback, and retention, which waits for two valid
// snapshots, never leaves the fork with none.

import { recoverCopyChunkBytes } from '../constants.js';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, realpath, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Log, SegmentInfo } from '../log/log.js';
import { LogError } from '../log/errors.js';
import { readFully } from '../log/frame-cursor.js';
import { frameHeaderBytes, readU32 } from '../log/framing.js';
import { syncDir } from '../log/segment.js';
import { writeAll } from '../log/write-all.js';
import { encodeSegmentHeader, newLogId, segmentHeaderBytes } from '../log/segment-header.js';
import { listSnapshots, snapshotFileName, verifySnapshotFile, writeStateSnapshot } from '../snapshot/store.js';
import type { State } from '../state/index.js';
import { dataPathsOf } from './state-at.js';


export class ForkError extends Error {
  override readonly name = 'ForkError';
}

export interface SegmentPlan {
  file: string;
  baseOffset: number;
  /** Records kept: [baseOffset, nextOffset). */
  nextOffset: number;
  /** Whole segment, cut at a frame boundary, or header only. */
  kind: 'whole' | 'cut' | 'header-only';
}

/** Which segments (and how much of each) hold exactly the records [firstOffset, until). The
 *  segment whose damage ended the log (`damagedFile`) is cut before it, even at its last record. */
function planSegments(segments: readonly SegmentInfo[], until: number, damagedFile: string | null): SegmentPlan[] {
  const plan: SegmentPlan[] = [];
  for (const s of segments) {
    if (s.baseOffset >= until) break;
    const nextOffset = Math.min(s.nextOffset, until);
    const whole = nextOffset === s.nextOffset && s.file !== damagedFile;
    plan.push({ file: s.file, baseOffset: s.baseOffset, nextOffset, kind: whole ? 'whole' : 'cut' });
  }
  const first = segments[0];
  if (plan.length === 0 && first !== undefined && first.baseOffset === until) {
    plan.push({ file: first.file, baseOffset: first.baseOffset, nextOffset: until, kind: 'header-only' });
  }
  return plan;
}

/** Byte position just after the first `records` frames of a segment file (already verified by open). */
async function frameBoundary(fh: FileHandle, records: number): Promise<number> {
  const header = Buffer.alloc(frameHeaderBytes);
  let position = segmentHeaderBytes;
  for (let i = 0; i < records; i++) {
    if ((await readFully(fh, header, frameHeaderBytes, position)) !== frameHeaderBytes) {
      throw new ForkError(`segment ends inside frame ${i} at byte ${position}`);
    }
    position += frameHeaderBytes + readU32(header, 0);
  }
  return position;
}

/** Copies the source's bytes [from, end) to the same positions of target, in chunks; `end` null
 *  copies to the source's end. A source shorter than `end` is an error naming `what`. */
async function copyRange(source: FileHandle, target: FileHandle, from: number, end: number | null, what: string): Promise<void> {
  const chunk = Buffer.alloc(recoverCopyChunkBytes);
  for (let position = from; end === null || position < end; ) {
    const n = await readFully(source, chunk, end === null ? recoverCopyChunkBytes : Math.min(recoverCopyChunkBytes, end - position), position);
    if (n === 0) {
      if (end === null) return;
      throw new ForkError(`${what} is shorter than expected (${position} of ${end} bytes)`);
    }
    await writeAll(target, chunk.subarray(0, n), position);
    position += n;
  }
}

async function copySegment(sourceDir: string, targetDir: string, plan: SegmentPlan, logId: string): Promise<void> {
  const source = await open(join(sourceDir, plan.file), fsConstants.O_RDONLY);
  try {
    const end = await frameBoundary(source, plan.nextOffset - plan.baseOffset);
    const target = await open(join(targetDir, plan.file), 'wx', 0o644);
    try {
      await writeAll(target, encodeSegmentHeader(logId, plan.baseOffset), 0);
      await copyRange(source, target, segmentHeaderBytes, end, plan.file);
      await target.sync();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** `<out>` must not exist or be an empty directory, and not be the working directory: the new
 *  directory is renamed into place, and the old one (`.` cannot even be removed) would leave the
 *  shell that ran the command in a deleted directory. */
export async function checkTarget(out: string): Promise<void> {
  if (resolve(out) === process.cwd()) {
    throw new ForkError(`--out ${out} is the working directory: recovery renames the new data directory into place; run it from elsewhere or name a new directory`);
  }
  const info = await stat(out).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (info === null) return;
  if (!info.isDirectory()) throw new ForkError(`--out ${out} exists and is not a directory`);
  if ((await readdir(out)).length > 0) throw new ForkError(`--out ${out} is not empty; recovery only writes a new data directory`);
}

/** `<out>` must not lie inside the source data directory: recovery never writes into the source.
 *  Both are compared as real paths (symlinks resolved; for `<out>`, its deepest existing part). */
export async function checkOutsideSource(out: string, sourceDataDir: string): Promise<void> {
  if (await isInside(out, sourceDataDir)) {
    throw new ForkError(`--out ${out} is inside the data directory being recovered (${sourceDataDir}); recovery never writes into its source`);
  }
}

/** Whether `path` is `dir` or lies inside it, compared as real paths (symlinks resolved; for
 *  `path`, its deepest existing part). For the read-only tools, which must not write there. */
export async function isInside(path: string, dir: string): Promise<boolean> {
  const base = await realpath(dir).catch(() => resolve(dir));
  const target = await realTarget(resolve(path));
  const within = relative(base, target);
  return within === '' || (within !== '..' && !within.startsWith(`..${sep}`) && !isAbsolute(within));
}

/** The real path of `path`, whose last parts may not exist yet. */
async function realTarget(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch (err) {
    const parent = dirname(path);
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === path) return path;
    return join(await realTarget(parent), basename(path));
  }
}

export interface ForkResult {
  logId: string;
  segments: SegmentPlan[];
  snapshot: string;
  /** The source snapshot copied as a fallback (a compacted log's fork), else null. */
  fallbackSnapshot: string | null;
}

/** The source's newest valid snapshot that the fork's records [firstOffset, until) can be
 *  replayed from, when the fork has no offset 0 to replay from; null otherwise. */
async function fallbackSnapshotOf(sourceDir: string, firstOffset: number, until: number): Promise<string | null> {
  if (firstOffset === 0) return null;
  for (const entry of await listSnapshots(sourceDir)) {
    if (entry.offset >= until || entry.offset < firstOffset) continue;
    const usable = await verifySnapshotFile(entry.file).then(
      () => true,
      () => false,
    );
    if (usable) return entry.file;
  }
  return null;
}

/** What a fork at `until` is made of, decided without writing anything: `recover --dry-run`
 *  prints it and writeFork carries it out, so the two cannot disagree. */
export interface ForkPlan {
  segments: SegmentPlan[];
  /** The source snapshot the fork gets a copy of (a compacted log's fork), else null. */
  fallbackSource: string | null;
}

export async function planFork(log: Log, until: number, sourceSnapshotsDir: string): Promise<ForkPlan> {
  if (until < log.firstOffset) {
    throw new ForkError(`offset ${until} is before the first retained record (${log.firstOffset}): the log cannot be cut there`);
  }
  const damaged = log.openReport.damage?.file;
  const segments = planSegments(log.segments(), until, damaged === undefined ? null : basename(damaged));
  const firstOffset = segments[0]?.baseOffset ?? until;
  return { segments, fallbackSource: await fallbackSnapshotOf(sourceSnapshotsDir, firstOffset, until) };
}

/** The snapshots a fork at `until` holds, as paths in `out`. */
export function forkSnapshotPaths(out: string, until: number, plan: ForkPlan): { snapshot: string; fallbackSnapshot: string | null } {
  const { snapshotsDir } = dataPathsOf(out);
  return {
    snapshot: join(snapshotsDir, snapshotFileName(until)),
    fallbackSnapshot: plan.fallbackSource === null ? null : join(snapshotsDir, basename(plan.fallbackSource)),
  };
}

/** Copies a file's bytes into a new file and syncs it. */
async function copyFile(from: string, to: string): Promise<void> {
  const source = await open(from, fsConstants.O_RDONLY);
  try {
    const target = await open(to, 'wx', 0o644);
    try {
      await copyRange(source, target, 0, null, basename(from));
      await target.sync();
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

/** Writes the recovered data directory `out` from `log` (the source, read-only) and `state` at
 *  `until`; `sourceSnapshotsDir` is where a fallback snapshot is taken from (see the top). */
export async function writeFork(log: Log, state: State, until: number, out: string, sourceSnapshotsDir: string): Promise<ForkResult> {
  if (state.offset !== until) throw new Error(`fork: state covers ${state.offset}, not ${until}`);
  const plan = await planFork(log, until, sourceSnapshotsDir);
  await checkTarget(out);
  const building = `${out.replace(/\/+$/, '')}.recovering-${process.pid}`;
  const paths = dataPathsOf(building);
  try {
    await mkdir(paths.logDir, { recursive: true });
    const logId = newLogId();
    for (const segment of plan.segments) await copySegment(log.dir, paths.logDir, segment, logId);
    await syncDir(paths.logDir);
    await writeStateSnapshot(paths.snapshotsDir, state);
    if (plan.fallbackSource !== null) {
      await copyFile(plan.fallbackSource, join(paths.snapshotsDir, basename(plan.fallbackSource)));
      await syncDir(paths.snapshotsDir);
    }
    await syncDir(building);
    if ((await stat(out).catch(() => null)) !== null) await rmdir(out);
    await rename(building, out);
    await syncDir(join(out, '..'));
    return { logId, segments: plan.segments, ...forkSnapshotPaths(out, until, plan) };
  } catch (error) {
    // `out` is absent/empty or complete, and nothing half-built is left beside it.
    await rm(building, { recursive: true, force: true });
    const { code, path } = error as NodeJS.ErrnoException;
    if (code === 'ENOENT' && path?.startsWith(log.dir) === true) {
      throw new LogError('LOG_NOT_FOUND', `segment ${basename(path)} is gone (retention removed it while the recovery read it?); run it again`, { file: path, cause: error });
    }
    throw error;
  }
}
