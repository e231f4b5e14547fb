// The data directory's lock: one writing server per DATA_DIR. Two servers appending to one log
// would both acknowledge records written at the same offsets, each overwriting the other's.
//
// DATA_DIR/LOCK holds {pid, startTicks, host, token} of the server that writes there. It is
// written whole to a temp file and hard-linked into place (link fails when LOCK exists), so no
// reader ever sees half of it (on a file system without hard links it is created with O_EXCL
// and written in place instead: see place()). A LOCK whose process is gone (SIGKILL, a crash, a
// power cut) is stale and is taken over, with a line saying so. A process is "gone" when no process has its
// pid, or (Linux) the one that has it started at another moment than the holder did: a reused
// pid, as after a container restart where every server is pid 1. A holder in another pid
// namespace of this host (containers given the host's name) has no pid that means anything here:
// it is judged by its touches as a foreign one is, and stale at once when its LOCK has not been
// touched for dataDirLockStaleMs (one host, one clock). A holder on another host (a
// shared volume; or this host under a new name, as a container recreated over the same data
// directory gets) cannot be asked: the holder touches LOCK every dataDirLockRefreshMs, and a
// foreign LOCK that is not touched for dataDirLockStaleMs is stale. So a start over a dead foreign
// lock waits that long, and clocks are never compared: only whether the file's mtime moves.
// Read-only commands (`serve --until`, the tools) take no lock: they never write.
//
// Not a kernel lock (Node has no flock): two servers starting within microseconds of each other
// over the same stale LOCK could both take it over; a running holder is always seen.

import { randomUUID } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { link, mkdir, readFile, realpath, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { dataDirLockRefreshMs, dataDirLockStaleMs } from './constants.js';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

interface Holder {
  pid: number;
  /** When the process started, in clock ticks since boot (/proc/<pid>/stat field 22); null where
   *  /proc is absent. */
  startTicks: string | null;
  /** Its pid namespace (Linux: /proc/self/ns/pid, as `pid:[4026531836]`); null where unknown. */
  pidNs: string | null;
  host: string;
  token: string;
}

export class DataDirLockError extends Error {
  override readonly name = 'DataDirLockError';
}

export interface DataDirLock {
  /** Removes LOCK if it is still this holder's. */
  release(): Promise<void>;
}

/** Lock paths this process holds: a second serve() in one process must not pass for the stale
 *  lock of an earlier process with the same pid. */
const heldHere = new Set<string>();

function startTicksOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the parenthesised command name (which may hold spaces) field 3 comes first.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

/** This process's pid namespace: containers with the host's name (host networking gives each
 *  the host's) share a host name but not their pids, so a pid names the holder only within one. */
function pidNamespace(): string | null {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
}

export interface LockTiming {
  refreshMs: number;
  staleMs: number;
}

const timingDefault: LockTiming = { refreshMs: dataDirLockRefreshMs, staleMs: dataDirLockStaleMs };

/** LOCK's mtime, or null once it is gone. */
async function mtimeOf(path: string): Promise<number | null> {
  return stat(path).then((s) => s.mtimeMs, () => null);
}

/** A holder on another host is alive while it keeps touching LOCK: watched for up to staleMs, or
 *  until `signal` aborts the wait (it rejects then). */
async function foreignHolderAlive(path: string, timing: LockTiming, logger: (line: string) => void, holder: Holder, signal?: AbortSignal): Promise<boolean> {
  const first = await mtimeOf(path);
  if (first === null) return false;
  logger(`tapeq: the lock of process ${holder.pid} on ${holder.host} (${path}): waiting up to ${timing.staleMs} ms to see whether it is still held`);
  for (const deadline = performance.now() + timing.staleMs; performance.now() < deadline; ) {
    await sleep(Math.min(timing.refreshMs / 2, timing.staleMs), undefined, { signal });
    const now = await mtimeOf(path);
    if (now === null) return false;
    if (now !== first) return true;
  }
  return false;
}

async function isRunning(holder: Holder, path: string, timing: LockTiming, logger: (line: string) => void, signal?: AbortSignal): Promise<boolean> {
  if (holder.host !== hostname()) return foreignHolderAlive(path, timing, logger, holder, signal);
  const ns = pidNamespace();
  if (holder.pidNs !== null && ns !== null && holder.pidNs !== ns) {
    // Another pid namespace on this host: its pid means nothing here. A LOCK nobody touched for
    // the stale window is stale at once (one host, one clock); a fresh one is watched as a
    // foreign one is.
    const mtime = await mtimeOf(path);
    return mtime !== null && Date.now() - mtime < timing.staleMs && foreignHolderAlive(path, timing, logger, holder, signal);
  }
  if (holder.pid === process.pid) return heldHere.has(path);
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    // EPERM: the process exists under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const ticks = startTicksOf(holder.pid);
  return holder.startTicks === null || ticks === null || ticks === holder.startTicks;
}

function parseHolder(text: string): Holder | null {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    return typeof value.pid === 'number' && typeof value.host === 'string' && typeof value.token === 'string'
      ? {
          pid: value.pid,
          startTicks: typeof value.startTicks === 'string' ? value.startTicks : null,
          pidNs: typeof value.pidNs === 'string' ? value.pidNs : null,
          host: value.host,
          token: value.token,
        }
      : null;
  } catch {
    return null;
  }
}

/** How long a LOCK that does not parse is given to be written whole before it is read again. */
const lockRereadMs = 100;

/** Link errors of a file system without hard links (SMB/CIFS mounts, FAT, some FUSE ones). */
const linkUnsupported = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Puts `me`, written whole in `tmp`, in place as LOCK; EEXIST when LOCK exists. Where the file
 *  system has no hard links, LOCK is created exclusively (O_EXCL) and written in place instead,
 *  so that a data directory on such a volume still serves: a reader may then catch it empty, for
 *  the moment between its creation and its write (lockDataDir reads it again). */
async function place(tmp: string, path: string, me: Holder): Promise<void> {
  try {
    await link(tmp, path);
  } catch (error) {
    if (!linkUnsupported.has((error as NodeJS.ErrnoException).code ?? '')) throw error;
    await writeFile(path, `${JSON.stringify(me)}\n`, { flag: 'wx', flush: true });
  }
}

/** Takes DATA_DIR/LOCK (creating the directory), or throws DataDirLockError naming the server
 *  that holds it. Aborting `signal` ends a wait on a foreign holder at once: the call then rejects
 *  with the signal's reason, having taken nothing and left nothing behind. */
export async function lockDataDir(
  dataDir: string,
  logger: (line: string) => void,
  timing: LockTiming = timingDefault,
  signal?: AbortSignal,
): Promise<DataDirLock> {
  // Resolved as the server names the log and snapshots in it (join, lexically): given
  // `link/../data`, the kernel would look beside the symlink's target, another directory than the
  // `data/log` this lock must guard.
  const dir = resolve(dataDir);
  await mkdir(dir, { recursive: true });
  // The real path: heldHere must know this process's lock by any name of its directory (relative,
  // through a symlink).
  const path = join(await realpath(dir), 'LOCK');
  const me: Holder = { pid: process.pid, startTicks: startTicksOf(process.pid), pidNs: pidNamespace(), host: hostname(), token: randomUUID() };
  const tmp = `${path}.tmp-${me.token}`;
  let unreadableSeen = false;
  try {
    // Inside the try: a write that fails (a full disk) must not leave the temp file behind.
    await writeFile(tmp, `${JSON.stringify(me)}\n`, { flag: 'wx' }).catch((error: NodeJS.ErrnoException) => {
      throw new DataDirLockError(`data directory ${dataDir}: its lock ${path} cannot be written (${error.code ?? error.message})`, { cause: error });
    });
    for (;;) {
      try {
        await place(tmp, path, me);
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      // Released meanwhile (ENOENT): try again. Any other failure (a LOCK this user cannot read,
      // a directory) would fail the same way at every turn: said, not retried for ever.
      const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return null;
        throw new DataDirLockError(`data directory ${dataDir}: its lock ${path} cannot be read (${error.code ?? error.message}); remove it if no server holds it`);
      });
      if (text === null) continue;
      const holder = parseHolder(text);
      // Without hard links LOCK is written in place (place()): one caught between its creation and
      // its write is read again once before it counts as nobody's.
      if (holder === null && !unreadableSeen) {
        unreadableSeen = true;
        await sleep(lockRereadMs);
        continue;
      }
      if (holder !== null && (await isRunning(holder, path, timing, logger, signal))) {
        throw new DataDirLockError(
          `data directory ${dataDir} is in use by process ${holder.pid} on ${holder.host} (${path}); ` +
            'two servers writing one log would overwrite each other\'s records. Stop it, or remove the file if that process is not a tapeq server',
        );
      }
      logger(`tapeq: taking over the lock of process ${holder?.pid ?? '?'}, which is no longer running (${path})`);
      // Only the stale content goes: a server that took the lock since then keeps it.
      if ((await readFile(path, 'utf8').catch(() => null)) === text) await rm(path, { force: true });
    }
  } finally {
    await rm(tmp, { force: true });
  }
  heldHere.add(path);
  // The mark of a live holder for servers on other hosts (see the top); a failed touch is retried
  // by the next one.
  const touch = setInterval(() => {
    const now = new Date();
    utimes(path, now, now).catch(() => undefined);
  }, timing.refreshMs);
  touch.unref();
  return {
    release: async () => {
      clearInterval(touch);
      heldHere.delete(path);
      const text = await readFile(path, 'utf8').catch(() => null);
      if (text !== null && parseHolder(text)?.token === me.token) await rm(path, { force: true });
    },
  };
}
