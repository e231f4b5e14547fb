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
// try), never neither. Calls for one segment must not overlap.

import { constants as fsConstants } from 'node:fs';
import { copyFile, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoOf } from './errors.js';
import { syncDir } from './segment.js';

/** The names in `names` (a listing of the log directory) that belong to `segmentFile`, `.log` last. */
export function filesOfSegment(names: readonly string[], segmentFile: string): string[] {
  const prefix = segmentFile.replace(/\.log$/, '.');
  return [...names.filter((n) => n.startsWith(prefix) && n !== segmentFile).sort(), segmentFile];
}

/** Deletes `names` from `dir`, or moves them to `archiveDir` (which must exist), in order. A file
 *  already gone counts as removed; any other failure is thrown with the files after it untouched. */
export async function retireFiles(dir: string, names: readonly string[], archiveDir: string | undefined): Promise<void> {
  for (const name of names) {
    const path = join(dir, name);
    if (archiveDir === undefined || /\.tmp(-|$)/.test(name)) await rm(path, { force: true });
    else await moveFile(path, join(archiveDir, name));
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
