// DATA_DIR as the writing server finds it or makes it. A start that fails after making the
// directory (a port taken in the instant between the startup probe and the server, a log that
// cannot be created, a lock that cannot be taken) must not leave the operator a directory they
// never had: removeIfEmpty() takes back what this process made, and nothing else.
//
// Invariants: only directories that this process's mkdir created are candidates (a DATA_DIR or
// parent that existed before is never touched); they go only empty, through rmdir, which the kernel
// refuses on a directory that holds anything. So a file written meanwhile, by this process (a
// segment, LOCK) or by another one, is never removed, and the directories above it stay. Empty
// directories the start made inside DATA_DIR (log/, snapshots/) go first, deepest first.

import { mkdir, readdir, rmdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';

export interface DataDir {
  /** Removes the directories createDataDir made, if they are still empty; a no-op for one that existed. */
  removeIfEmpty(): Promise<void>;
}

export async function createDataDir(dataDir: string): Promise<DataDir> {
  // Made as the server names what is inside it (join, lexically: `a/../b` is b), so that the walk
  // up below meets the directory mkdir reports: given `a/../b/data`, mkdir would make `a` first.
  const path = resolve(dataDir);
  // The first directory the recursive mkdir created (DATA_DIR itself or a missing parent), or
  // undefined when DATA_DIR existed.
  const first = await mkdir(path, { recursive: true });
  if (first === undefined) return { removeIfEmpty: async () => undefined };
  const top = resolve(first);
  const made: string[] = [];
  for (let dir = path; ; dir = dirname(dir)) {
    made.push(dir);
    if (dir === top || dirname(dir) === dir) break;
  }
  if (made.at(-1) !== top) throw new Error(`assertion: mkdir ${dataDir} reported ${first}, which is not it nor a parent`);
  return {
    removeIfEmpty: async () => {
      const [inner, ...parents] = made;
      if (inner === undefined || !(await removeEmptyTree(inner))) return;
      for (const dir of parents) if (!(await removeEmptyDir(dir))) return;
    },
  };
}

/** Removes `dir` and the directories under it, deepest first, while they hold no file; true when
 *  `dir` itself is gone. */
async function removeEmptyTree(dir: string): Promise<boolean> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => null);
  if (entries === null) return false;
  for (const entry of entries) if (entry.isDirectory()) await removeEmptyTree(join(dir, entry.name));
  return removeEmptyDir(dir);
}

/** rmdir: refused (ENOTEMPTY, EEXIST) when anything is in `dir`; any refusal keeps it. */
async function removeEmptyDir(dir: string): Promise<boolean> {
  return rmdir(dir).then(
    () => true,
    () => false,
  );
}
