// bunqueue as a competitor for `tapeq bench --vs bunqueue`: installed on demand with npm into a
// cache directory outside the repo (default ~/.cache/tapeq-bench/bunqueue, TAPEQ_BENCH_CACHE
// overrides the parent), run with the `bun` runtime from the `bun` npm package (its prebuilt
// binary comes inside the registry package). Its HTTP API is seed 004, the API tapeq implements,
// so the same load scripts drive both.
//
// Modes: SQLite on a temp file (`--data-path`; bunqueue's SQLite runs WAL with synchronous=NORMAL
// and buffers pushes unless a job has `"durable": true`) and in memory (no data path).

import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { freePort, startServer, tempDir, type ServerProcess } from './bench-proc.js';

export interface Bunqueue {
  bun: string;
  cli: string;
  versions: string;
}

export function bunqueueCacheDir(): string {
  return join(process.env.TAPEQ_BENCH_CACHE ?? join(homedir(), '.cache', 'tapeq-bench'), 'bunqueue');
}

function installed(dir: string): Bunqueue | null {
  const bun = join(dir, 'node_modules', 'bun', 'bin', 'bun.exe');
  const cli = join(dir, 'node_modules', 'bunqueue', 'dist', 'cli', 'index.js');
  if (!existsSync(bun) || !existsSync(cli)) return null;
  const version = (pkg: string): string =>
    (JSON.parse(readFileSync(join(dir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string }).version;
  return { bun, cli, versions: `bunqueue ${version('bunqueue')} on bun ${version('bun')}` };
}

/** The installed bunqueue, installing it first if needed; an Error says why it is unavailable. */
export async function ensureBunqueue(log: (line: string) => void): Promise<Bunqueue> {
  const dir = bunqueueCacheDir();
  const found = installed(dir);
  if (found !== null) return found;
  await mkdir(dir, { recursive: true });
  log(`bench: installing bunqueue and bun into ${dir} (npm install --prefix)…`);
  await new Promise<void>((resolve, reject) => {
    execFile('npm', ['install', '--prefix', dir, '--no-audit', '--no-fund', 'bunqueue', 'bun'], { timeout: 600_000 }, (err, _out, stderr) =>
      err ? reject(new Error(`npm install bunqueue bun failed: ${err.message}\n${stderr}`)) : resolve(),
    );
  });
  const after = installed(dir);
  if (after === null) throw new Error(`bunqueue or the bun binary is missing under ${dir} after npm install`);
  return after;
}

export type BunqueueMode = 'sqlite' | 'memory';

/** Starts bunqueue's server on loopback; `remove` deletes its temp SQLite directory. */
export async function startBunqueue(bq: Bunqueue, mode: BunqueueMode): Promise<{ server: ServerProcess; remove: () => Promise<void> }> {
  const tmp = await tempDir('tapeq-bench-bunqueue-');
  const tcpPort = await freePort();
  const args = [bq.cli, 'start', '--http-port', '{port}', '--tcp-port', String(tcpPort), '--host', '127.0.0.1'];
  if (mode === 'sqlite') args.push('--data-path', join(tmp.dir, 'bunqueue.db'));
  try {
    const server = await startServer({
      name: mode === 'sqlite' ? 'bunqueue (SQLite)' : 'bunqueue (memory)',
      command: bq.bun,
      args,
      envDrop: ['DATA_PATH', 'BUNQUEUE_DATA_PATH', 'BQ_DATA_PATH', 'SQLITE_PATH', 'AUTH_TOKENS', 'TCP_PORT'],
      // bunqueue 2.9 limits each IP to 10,000 requests a minute unless told otherwise (its
      // rateLimiter.js); tapeq has no limit by default, so lift it to compare the queues, not the
      // rate limiters.
      env: { RATE_LIMIT_MAX_REQUESTS: '1000000000' },
      portEnv: 'HTTP_PORT',
    });
    return { server, remove: tmp.remove };
  } catch (err) {
    await tmp.remove();
    throw err;
  }
}
