// The snapshots directory: atomic writes, pruning, and loading the newest snapshot that verifies.
//
// Write protocol (a crash at any step leaves either the old set or the old set plus the new file):
//   1. write <name>.tmp, fsync it    2. rename to <name>    3. fsync the directory
//   4. only then delete snapshots older than the newest `kept` valid ones, except those a spread
//      policy keeps for point-in-time recovery (keep.ts).
// A `.tmp` file was never renamed, so it is never a snapshot: the loader ignores it and removes it
// (unless told to leave the directory untouched, as read-only tools are), and so does the next
// write (the directory's one writer: any other `.tmp` is a dead write's).
//
// Loading never trusts a file: every candidate is fully verified (format.ts) and decoded; the first
// failure is logged as `snapshot <file> is unusable: <why>; trying older` and the next older is
// tried. Concurrency: one writer per directory (the Snapshotter guarantees it); readers may run
// beside the writer because a snapshot appears only by rename.

import { open, readdir, rename, rm, mkdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { createChecksum32, initChecksum } from '../log/checksum.js';
import { errnoOf, messageOf } from '../log/errors.js';
import { snapshotBlockBytesMax, snapshotsKept } from '../constants.js';
import type { StateImage } from '../state/image.js';
import { snapshotsToKeep, type KeepCandidate, type SpreadPolicy } from './keep.js';
import { exportState, importState, type State } from '../state/index.js';
import {
  checkSchemaReadable,
  decodeHeader,
  decodeSnapshot,
  encodeSnapshot,
  SnapshotCorruptError,
  snapshotFormatVersionBlocks,
  snapshotHeaderBytes,
  type SnapshotHeader,
} from './format.js';
import { readAtHandle, readStateFile, verifyStateFile, writeStateFile, type ReadAt } from './format-v2.js';

export type Logger = (line: string) => void;

const namePattern = /^snapshot-(\d{20})\.snap$/;
const tmpSuffix = '.tmp';

export function snapshotFileName(offset: number): string {
  return `snapshot-${String(offset).padStart(20, '0')}.snap`;
}

export interface SnapshotEntry {
  file: string;
  /** The offset the file name claims; the header must agree before the file is used. */
  offset: number;
}

/** Snapshot files by name, newest (highest offset) first. A missing directory has none. */
export async function listSnapshots(dir: string): Promise<SnapshotEntry[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const entries: SnapshotEntry[] = [];
  for (const name of names) {
    const match = namePattern.exec(name);
    if (match?.[1] !== undefined) entries.push({ file: join(dir, name), offset: Number(match[1]) });
  }
  return entries.sort((a, b) => b.offset - a.offset);
}

/** Moves snapshot files into a new `<dir>/<label>-<ms>/` directory (nothing is deleted; the
 *  listing ignores subdirectories), durably; returns that directory. */
export async function moveSnapshotsAside(dir: string, entries: SnapshotEntry[], label: string): Promise<string> {
  const aside = join(dir, `${label}-${Date.now()}`);
  await mkdir(aside, { recursive: true });
  for (const entry of entries) await rename(entry.file, join(aside, basename(entry.file)));
  await fsyncDir(aside);
  await fsyncDir(dir);
  return aside;
}

async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export interface WriteOptions {
  /** Valid snapshots to keep, the new one included (default constants.snapshotsKept). */
  kept?: number;
  /** Older snapshots also kept for point-in-time recovery (keep.ts); default none. */
  spread?: SpreadPolicy | null;
  /** The wall clock the spread policy's window ends at (default Date.now()). */
  now?: number;
}

/** Writes `image` (file format 1) atomically and durably, then prunes; resolves with the path. */
export async function writeSnapshot(dir: string, image: StateImage, options: WriteOptions = {}): Promise<string> {
  await initChecksum();
  const bytes = encodeSnapshot(image);
  return writeAtomically(dir, image.offset, options, (handle) => handle.writeFile(bytes));
}

/** Writes `state` (file format 2, block by block: no whole-file buffer) atomically and durably,
 *  then prunes; resolves with the path. `state` must not change until this resolves. */
export async function writeStateSnapshot(dir: string, state: State, options: WriteOptions = {}): Promise<string> {
  await initChecksum();
  return writeAtomically(dir, state.offset, options, (handle) => writeStateFile(handle, state));
}

async function writeAtomically(
  dir: string,
  offset: number,
  options: WriteOptions,
  write: (handle: FileHandle) => Promise<void>,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  // A write killed midway (an out-of-memory kill of the snapshot process) left its `.tmp`, which
  // the next write, at another offset, would not overwrite: while the server runs for weeks they
  // would pile up on the disk the log shares. The directory has one writer, so each is dead.
  await removeLeftovers(dir);
  const file = join(dir, snapshotFileName(offset));
  const tmp = file + tmpSuffix;
  const handle = await open(tmp, 'w', 0o644);
  try {
    try {
      await write(handle);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (error) {
    // A failed write is most often a full disk, the one the log shares: its bytes must not stay
    // there until the next start (the log would find no room to append).
    await rm(tmp, { force: true }).catch(() => undefined);
    throw error;
  }
  await fsyncDir(dir);
  await prune(dir, options, file);
  return file;
}

/**
 * Fully verifies (header, a schema this build reads, checksums; no decode) a snapshot file. Both
 * formats are read and hashed in pieces of at most snapshotBlockBytesMax with an await between
 * them, so a large snapshot (or an older one with huge blocks, or an older format-1 file, whose
 * one checksum covers its whole payload) costs neither its size in memory nor a long event-loop
 * pause: retention runs this on the server's main thread.
 */
export async function verifySnapshotFile(file: string): Promise<SnapshotHeader> {
  return withSnapshotFile(file, async (handle, header, fileBytes) => {
    checkSchemaReadable(header);
    if (header.formatVersion === snapshotFormatVersionBlocks) await verifyStateFile(readAtHandle(handle), fileBytes, header);
    else await verifyImagePayload(readAtHandle(handle), fileBytes, header);
    return header;
  });
}

/** Format 1's payload checksum, hashed piece by piece. */
async function verifyImagePayload(readAt: ReadAt, fileBytes: number, header: SnapshotHeader): Promise<void> {
  const hash = createChecksum32();
  for (let at = snapshotHeaderBytes; at < fileBytes; at += snapshotBlockBytesMax) {
    const bytes = await readAt(at, Math.min(snapshotBlockBytesMax, fileBytes - at));
    hash.update(bytes, 0, bytes.length);
  }
  const actual = hash.digest();
  if (actual !== header.payloadChecksum) {
    throw new SnapshotCorruptError(`payload checksum mismatch (stored ${header.payloadChecksum}, computed ${actual})`);
  }
}

/** Opens a snapshot file and checks its header (against the file's size) before `use`. */
async function withSnapshotFile<T>(
  file: string,
  use: (handle: FileHandle, header: SnapshotHeader, fileBytes: number) => Promise<T>,
): Promise<T> {
  await initChecksum();
  const handle = await open(file, 'r');
  try {
    const fileBytes = (await handle.stat()).size;
    const first = Buffer.alloc(Math.min(fileBytes, snapshotHeaderBytes));
    await handle.read(first, 0, first.length, 0);
    return await use(handle, decodeHeader(first, fileBytes), fileBytes);
  } finally {
    await handle.close();
  }
}

/** The header of a snapshot that verifies in full under its name's offset, else null. */
async function validHeader(entry: SnapshotEntry): Promise<SnapshotHeader | null> {
  try {
    const header = await verifySnapshotFile(entry.file);
    return header.offset === entry.offset ? header : null;
  } catch {
    return null;
  }
}

const verdicts = new Map<string, { key: string; header: SnapshotHeader | null }>();

/** validHeader, remembered per (path, size, mtime): periodic callers (retention, pruning of the
 *  older snapshots) do not re-read unchanged files. */
export async function verifiedHeader(entry: SnapshotEntry): Promise<SnapshotHeader | null> {
  let key: string;
  try {
    const info = await stat(entry.file);
    key = `${info.size}:${info.mtimeMs}`;
  } catch {
    return null;
  }
  const cached = verdicts.get(entry.file);
  if (cached?.key === key) return cached.header;
  const header = await validHeader(entry);
  verdicts.set(entry.file, { key, header });
  return header;
}

/** Forgets the verdict on one file (a scrub found it damaged: scrub.ts). */
export function forgetVerdict(file: string): void {
  verdicts.delete(file);
}

/** Drops the remembered verdicts of the files of `dir` no longer listed in `entries` (its
 *  listing); those of other directories stay. */
export function forgetVerdictsExcept(dir: string, entries: readonly SnapshotEntry[]): void {
  const listed = new Set(entries.map((e) => e.file));
  const home = resolve(dir);
  for (const file of verdicts.keys()) if (dirname(resolve(file)) === home && !listed.has(file)) verdicts.delete(file);
}

/** The header of a snapshot file, checked against the file's size; the payload is not read. */
async function readSnapshotHeader(file: string): Promise<SnapshotHeader> {
  return withSnapshotFile(file, (_handle, header) => Promise.resolve(header));
}

/** Deletes every snapshot older than the oldest of the newest `kept` valid ones, except those the
 *  spread policy keeps. `written` was just written from memory and synced, so it counts as valid
 *  without being read back. Nothing is deleted while fewer than `kept` are valid. */
async function prune(dir: string, options: WriteOptions, written: string): Promise<void> {
  const kept = options.kept ?? snapshotsKept;
  if (kept < 1) throw new Error(`snapshotsKept must be ≥ 1, got ${kept}`);
  const spread = options.spread ?? null;
  const entries = await listSnapshots(dir);
  forgetVerdictsExcept(dir, entries);
  const valid: KeepCandidate[] = [];
  let cut = entries.length;
  for (let i = 0; i < entries.length && (valid.length < kept || spread !== null); i++) {
    const entry = entries[i] as SnapshotEntry;
    // The newest `kept` are read in full each time (they are what a start falls back on); older
    // ones, which only a spread policy keeps, once per file version (verifiedHeader).
    const header =
      entry.file === written ? await readSnapshotHeader(written) : valid.length < kept ? await validHeader(entry) : await verifiedHeader(entry);
    if (header === null) continue;
    valid.push({ file: entry.file, timestamp: header.timestamp });
    if (valid.length === kept) cut = i + 1;
  }
  if (valid.length < kept) return;
  const keep = snapshotsToKeep(valid, kept, spread, options.now ?? Date.now());
  const doomed = entries.slice(cut).filter((entry) => !keep.has(entry.file));
  for (const entry of doomed) await rm(entry.file, { force: true });
  if (doomed.length > 0) await fsyncDir(dir);
}

/** Removes never-renamed `.tmp` leftovers of interrupted writes; resolves with their paths. One
 *  that cannot be removed (a directory no longer writable) goes to `failed`: a leftover is never
 *  loaded, so it must not stop a load (or the write after it, which fails by itself if it must). */
async function removeLeftovers(dir: string, failed: (file: string, error: unknown) => void = () => undefined): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const name of names) {
    if (!name.endsWith(tmpSuffix) || !namePattern.test(name.slice(0, -tmpSuffix.length))) continue;
    const file = join(dir, name);
    try {
      await rm(file, { force: true });
      removed.push(file);
    } catch (error) {
      failed(file, error);
    }
  }
  return removed;
}

export interface LoadOptions {
  /** Only snapshots covering at most this offset are candidates (point-in-time recovery). */
  maxOffset?: number;
  /** Snapshots below this offset are skipped without reading (the log cannot extend them). */
  minOffset?: number;
  /** Leave the directory untouched (no `.tmp` cleanup): read-only tools on a live data dir. */
  readOnly?: boolean;
  /** Abandons the load between blocks once aborted (nobody wants the state any more); the load
   *  then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Files an earlier search of the same load refused: skipped, neither read nor reported again.
   *  Each file this search refuses is added. */
  refused?: Set<string>;
}

/** Reads, verifies and decodes one snapshot file as an image; throws SnapshotCorruptError. */
export async function readSnapshot(entry: SnapshotEntry): Promise<StateImage> {
  return withSnapshotFile(entry.file, async (handle, header) => {
    checkName(entry, header);
    if (header.formatVersion === snapshotFormatVersionBlocks) return exportState(await readSnapshotState(entry));
    return decodeSnapshot(await handle.readFile()).image;
  });
}

/** Reads, verifies and decodes one snapshot file into a State (format 2 block by block, format 1
 *  whole and through importState); throws SnapshotCorruptError with the reason. */
export async function readSnapshotState(entry: SnapshotEntry, signal?: AbortSignal): Promise<State> {
  return withSnapshotFile(entry.file, async (handle, header, fileBytes) => {
    checkName(entry, header);
    if (header.formatVersion === snapshotFormatVersionBlocks) return readStateFile(readAtHandle(handle), fileBytes, header, signal);
    const { image } = decodeSnapshot(await handle.readFile());
    try {
      return importState(image);
    } catch (err) {
      throw new SnapshotCorruptError(err instanceof Error ? err.message : String(err), { cause: err });
    }
  });
}

function checkName(entry: SnapshotEntry, header: SnapshotHeader): void {
  if (header.offset !== entry.offset) {
    throw new SnapshotCorruptError(`file name says offset ${entry.offset} but the header says ${header.offset}`);
  }
}

/** The first snapshot, newest first, that `read` accepts; each refusal is logged. */
async function loadNewest<T>(
  dir: string,
  logger: Logger,
  options: LoadOptions,
  read: (entry: SnapshotEntry) => Promise<T>,
): Promise<{ value: T; file: string } | null> {
  if (options.readOnly !== true) {
    const failed = (file: string, error: unknown) =>
      logger(`tapeq: could not remove unfinished snapshot ${file} (never completed, never used): ${messageOf(error)}`);
    for (const file of await removeLeftovers(dir, failed)) logger(`tapeq: removed unfinished snapshot ${file} (never completed, never used)`);
  }
  const maxOffset = options.maxOffset ?? Number.POSITIVE_INFINITY;
  for (const entry of await listSnapshots(dir)) {
    if (entry.offset > maxOffset) continue;
    if (entry.offset < (options.minOffset ?? 0)) break;
    if (options.refused?.has(entry.file) === true) continue;
    options.signal?.throwIfAborted();
    try {
      return { value: await read(entry), file: entry.file };
    } catch (err) {
      if (options.signal?.aborted === true) throw err;
      // Gone since the listing: moved aside (a snapshot beyond the log's end, recover-state.ts)
      // or pruned, by code that reports it; not a damaged file.
      if (isVanished(err)) continue;
      logger(`snapshot ${entry.file} is unusable: ${messageOf(err)}; trying older`);
      options.refused?.add(entry.file);
    }
  }
  return null;
}

function isVanished(err: unknown): boolean {
  return errnoOf(err) === 'ENOENT' || errnoOf((err as { cause?: unknown } | null)?.cause) === 'ENOENT';
}

/** The newest snapshot that verifies and decodes, as an image, or null. */
export async function loadNewestSnapshot(
  dir: string,
  logger: Logger,
  options: LoadOptions = {},
): Promise<{ image: StateImage; file: string } | null> {
  const found = await loadNewest(dir, logger, options, readSnapshot);
  return found === null ? null : { image: found.value, file: found.file };
}

/** The newest snapshot that verifies and decodes, as a State, or null (replay from offset 0). */
export async function loadNewestState(
  dir: string,
  logger: Logger,
  options: LoadOptions = {},
): Promise<{ state: State; file: string } | null> {
  const found = await loadNewest(dir, logger, options, (entry) => readSnapshotState(entry, options.signal));
  return found === null ? null : { state: found.value, file: found.file };
}
