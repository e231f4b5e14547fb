import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import t, { type Test } from 'tap';
import { DataDirLockError, lockDataDir } from '../src/data-dir-lock.js';

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const quiet = (): void => undefined;

t.test('a-held-lock-refuses-a-second-holder-in-the-same-process-until-released', async (t) => {
  const dir = await tempDir(t);
  const lock = await lockDataDir(dir, quiet);
  await t.rejects(lockDataDir(dir, quiet), DataDirLockError);
  await lock.release();
  const again = await lockDataDir(dir, quiet);
  await again.release();
});

t.test('a-lock-whose-pid-now-names-another-process-is-stale', async (t) => {
  const dir = await tempDir(t);
  // The parent runs, but it started at another moment than the holder recorded: a reused pid.
  await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: process.ppid, startTicks: '1', host: hostname(), token: 'old' }));
  const lines: string[] = [];
  const lock = await lockDataDir(dir, (line) => lines.push(line));
  t.match(lines.join('\n'), `taking over the lock of process ${process.ppid}`);
  t.equal(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).pid, process.pid);
  await lock.release();
});

t.test('a-lock-of-a-running-process-is-never-taken', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: process.ppid, startTicks: null, host: hostname(), token: 'x' }));
  await t.rejects(lockDataDir(dir, quiet), { name: 'DataDirLockError', message: `in use by process ${process.ppid} on ${hostname()}` });
});

// Watched in short windows here; a server uses 2 s and 10 s.
const fast = { refreshMs: 40, staleMs: 400 };

t.test('a-lock-of-another-host-that-is-kept-touched-is-never-taken', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'LOCK');
  await writeFile(path, JSON.stringify({ pid: 1, startTicks: null, host: `not-${hostname()}`, token: 'x' }));
  // The other host's server, alive: it touches its lock as a holder does.
  const alive = setInterval(() => {
    const now = new Date();
    void utimes(path, now, now);
  }, fast.refreshMs);
  t.teardown(() => clearInterval(alive));
  await t.rejects(lockDataDir(dir, quiet, fast), { name: 'DataDirLockError', message: /in use by process 1 on not-/ });
});

t.test('a-lock-of-another-host-that-nobody-touches-is-taken-over-after-the-stale-window', async (t) => {
  // A container recreated over the same data directory has a new host name; its old self is gone.
  const dir = await tempDir(t);
  await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: 1, startTicks: null, host: `not-${hostname()}`, token: 'x' }));
  const lines: string[] = [];
  const started = performance.now();
  const lock = await lockDataDir(dir, (line) => lines.push(line), fast);
  t.ok(performance.now() - started >= fast.staleMs, 'after watching it for the stale window');
  t.match(lines.join('\n'), /waiting up to 400 ms to see whether it is still held[^]*taking over the lock of process 1/);
  await lock.release();
});

t.test('a-holder-touches-its-lock-so-servers-on-other-hosts-see-it-alive', async (t) => {
  const dir = await tempDir(t);
  const lock = await lockDataDir(dir, quiet, fast);
  t.teardown(() => lock.release());
  const before = (await stat(join(dir, 'LOCK'))).mtimeMs;
  await new Promise((resolve) => setTimeout(resolve, 5 * fast.refreshMs));
  t.ok((await stat(join(dir, 'LOCK'))).mtimeMs > before, 'its mtime moved');
});

t.test('a-release-leaves-a-lock-someone-else-took-since', async (t) => {
  const dir = await tempDir(t);
  const lock = await lockDataDir(dir, quiet);
  const other = JSON.stringify({ pid: process.ppid, startTicks: null, host: hostname(), token: 'other' });
  await writeFile(join(dir, 'LOCK'), other);
  await lock.release();
  t.equal(await readFile(join(dir, 'LOCK'), 'utf8'), other);
});

t.test('a-second-holder-in-the-same-process-is-refused-however-the-directory-is-spelt', async (t) => {
  // A relative and an absolute name of one directory are one lock: the second serve() of this
  // process must not take the first one's LOCK for an earlier process's with the same pid.
  const dir = await tempDir(t);
  const lock = await lockDataDir(dir, quiet);
  t.teardown(() => lock.release());
  await t.rejects(lockDataDir(relative(process.cwd(), dir), quiet), DataDirLockError);
  const link = `${dir}-link`;
  await symlink(dir, link);
  t.teardown(() => rm(link, { force: true }));
  await t.rejects(lockDataDir(link, quiet), DataDirLockError);
});

t.test('a-LOCK-that-cannot-be-read-is-an-error-not-a-busy-loop', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'LOCK'));
  const outcome = await Promise.race([
    lockDataDir(dir, quiet).then(
      () => 'locked',
      (error: Error) => `${error.name}: ${error.message}`,
    ),
    // Unreferenced: it must not hold the test's process open for 2 s once the answer came.
    new Promise((resolve) => setTimeout(resolve, 2_000, 'still trying after 2 s').unref()),
  ]);
  t.match(outcome, /^DataDirLockError: .*LOCK cannot be read \(EISDIR\)/);
});

t.test('a-file-system-without-hard-links-still-takes-and-refuses-the-lock', async (t) => {
  // SMB/CIFS volumes, FAT: link() fails with EPERM (or ENOTSUP); LOCK is created in place then.
  const fsp = await import('node:fs/promises');
  const noLinks = async (): Promise<void> => {
    throw Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' });
  };
  const mocked = await t.mockImport<typeof import('../src/data-dir-lock.js')>(new URL('../src/data-dir-lock.js', import.meta.url).href, {
    'node:fs/promises': { ...fsp, link: noLinks },
  });
  const dir = await tempDir(t);
  const lock = await mocked.lockDataDir(dir, quiet);
  t.equal(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).pid, process.pid);
  await t.rejects(mocked.lockDataDir(dir, quiet), { name: 'DataDirLockError' });
  await lock.release();
  t.same((await readdir(dir)).filter((name) => name.startsWith('LOCK')), [], 'released, no temp file left');
});

t.test('a-lock-of-another-pid-namespace-on-this-host-is-judged-by-its-touches-not-its-pid', async (t) => {
  // Containers sharing the host's name (host networking) and a volume: the holder's pid, 1 in its
  // own namespace, names nothing (or another process) here.
  const dir = await tempDir(t);
  const path = join(dir, 'LOCK');
  const holder = { pid: 999_999_999, startTicks: '1', pidNs: 'pid:[1]', host: hostname(), token: 'x' };
  await writeFile(path, JSON.stringify(holder));
  const alive = setInterval(() => {
    const now = new Date();
    void utimes(path, now, now);
  }, fast.refreshMs);
  await t.rejects(lockDataDir(dir, quiet, fast), { name: 'DataDirLockError', message: /in use by process 999999999/ }, 'a touched one is held');
  clearInterval(alive);

  // Gone since longer than the stale window: taken over at once.
  const old = new Date(Date.now() - 2 * fast.staleMs);
  await utimes(path, old, old);
  const started = performance.now();
  const lock = await lockDataDir(dir, quiet, fast);
  t.ok(performance.now() - started < fast.staleMs, 'without watching it');
  await lock.release();
});

t.test('a-data-dir-named-through-a-symlink-and-dot-dot-is-locked-where-its-log-is', async (t) => {
  // The server's log is join(DATA_DIR, 'log'): lexically, `link/../data/log` is `data/log`. The
  // lock was taken on the kernel's reading of the name, beside the symlink's target, so a second
  // server on `data` found no lock and wrote the same log.
  const root = await tempDir(t);
  await mkdir(join(root, 'elsewhere', 'target'), { recursive: true });
  await symlink(join(root, 'elsewhere', 'target'), join(root, 'link'));
  const lock = await lockDataDir(`${root}/link/../data`, quiet);
  t.teardown(() => lock.release());
  t.same(await readdir(join(root, 'data')), ['LOCK'], 'LOCK is in the directory that holds the log');
  t.same(await readdir(join(root, 'elsewhere')), ['target'], 'and nothing is made beside the target');
  await t.rejects(lockDataDir(join(root, 'data'), quiet), DataDirLockError, 'a second server on the same log is refused');
});
