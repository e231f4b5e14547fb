// Retention's file work: one sealed segment's files leave the log directory, deleted or moved to
// an archive directory. A segment's files are every `<base>.<suffix>` in the log directory: the
// `.log`, its `.index` and `.timeindex`, and the derived files other modules keep beside it (the
// job index `.jobindex`). Leftovers of unfinished writes (`.tmp`, `.tmp-…`) are deleted, never
// archived.
//
// The `.log` goes last: until it has gone the segment is whole on disk (derived files are rebuilt
// when missing), so a failure at any step leaves a segment the log may keep listing and reading,
// and a later pass finishes the job. A move into an archive on another filesystem (rename fails
// with EXDEV) is a copy instead:
//
//   copy to <archive>/<name>.tmp → fsync it → rename to <name> → fsync <archive> → unlink original
//
// so a crash leaves the original (perhaps beside a `.tmp` in the archive, overwritten by the next
// try), never neither. An archived `.log` of the same name is replaced only when it is this log's
// own (same log id: a pass cut short after its copy): every log's first segment is
// 00000000000000000000.log, and two logs archiving into one directory (two servers, a wiped data
// directory, a `tapeq recover` fork) would otherwise overwrite each other's history. Calls for one
// segment must not overlap.

import { constants as fsConstants } from 'node:fs';
import { copyFile, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoOf, LogError } from './errors.js';
import { syncDir } from './segment.js';
import { decodeSegmentHeader, segmentHeaderBytes, type SegmentHeader } from './segment-header.js';

/** The names in `names` (a listing of the log directory) that belong to `segmentFile`, `.log` last. */
export function filesOfSegment(names: readonly string[], segmentFile: string): string[] {
  const prefix = segmentFile.replace(/\.log$/, '.');
  return [...names.filter((n) => n.startsWith(prefix) && n !== segmentFile).sort(), segmentFile];
}

/** Deletes `names` from `dir`, or moves them to `archiveDir` (which must exist), in order. A file
 *  already gone counts as removed; any other failure is thrown with the files after it untouched. */
export async function retireFiles(dir: string, names: readonly string[], archiveDir: string | undefined): Promise<void> {
  const segmentFile = names.at(-1);
  if (archiveDir !== undefined && segmentFile?.endsWith('.log') === true) await checkArchiveSlot(dir, segmentFile, archiveDir);
  for (const name of names) {
    const path = join(dir, name);
    if (archiveDir === undefined || /\.tmp(-|$)/.test(name)) await rm(path, { force: true });
    else await moveFile(path, join(archiveDir, name));
  }
}

/** Throws when `archiveDir` is the log directory `dir` under another name (a symlink, a bind
 *  mount): every move would be a rename onto itself, the segment leaving the log's list while its
 *  files stay and free nothing. */
export async function checkArchiveDir(dir: string, archiveDir: string): Promise<void> {
  const [log, archive] = await Promise.all([stat(dir), stat(archiveDir)]);
  if (log.dev === archive.dev && log.ino === archive.ino) {
    const why = `archive directory ${archiveDir} is the log directory itself (${dir}); no segment is moved: set ARCHIVE_DIR elsewhere`;
    throw new LogError('LOG_WRITE', why, { file: archiveDir });
  }
}

/** Throws, before anything moves, when `archiveDir` holds a `segmentFile` that is not this
 *  log's: another log's segment of the same name, or a file that is no segment. */
async function checkArchiveSlot(dir: string, segmentFile: string, archiveDir: string): Promise<void> {
  const archived = await readSegmentHeader(join(archiveDir, segmentFile));
  if (archived === null) return;
  const own = await readSegmentHeader(join(dir, segmentFile));
  if (own === null || typeof own === 'string') return;
  if (typeof archived !== 'string' && archived.logId === own.logId) return;
  const what = typeof archived === 'string' ? `a file that is not a tapeq segment (${archived})` : `another log's segment (log id ${archived.logId})`;
  throw new LogError(
    'LOG_WRITE',
    `archive ${archiveDir} already holds ${segmentFile}, ${what}; this log (log id ${own.logId}) does not replace it and ` +
      'keeps the segment: give each log its own ARCHIVE_DIR, or move that file out of the archive',
    { file: join(archiveDir, segmentFile) },
  );
}

/** The segment header of `path`, what is wrong with it, or null when there is no such file. */
async function readSegmentHeader(path: string): Promise<SegmentHeader | string | null> {
  let fh;
  try {
    fh = await open(path, fsConstants.O_RDONLY);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw err;
  }
  try {
    const buf = Buffer.alloc(segmentHeaderBytes);
    const { bytesRead } = await fh.read(buf, 0, segmentHeaderBytes, 0);
    return decodeSegmentHeader(buf.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

async function moveFile(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' && !(await exists(from))) return;
    if (code !== 'EXDEV') throw err;
  }
  await copyDurably(from, to);
  await unlink(from);
}

async function copyDurably(from: string, to: string): Promise<void> {
  const tmp = `${to}.tmp`;
  try {
    await copyFile(from, tmp, 0);
    const fh = await open(tmp, fsConstants.O_RDONLY);
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, to);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dirname(to));
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw err;
  }
}
