// Processes under test for the HTTP/WS benchmarks: the real `tapeq serve`, the reference servers
// in tools/bench-ref-server.ts, bunqueue; and the forked load generator (tools/bench-loadgen.ts).
//
// Every process binds 127.0.0.1 on a free port, is tracked in one set and is SIGKILLed when this
// process exits, so an error or ^C mid-run leaves nothing behind. Peak RSS (VmHWM) and CPU time
// (utime + stime) of a server are read from /proc (Linux), because the servers are separate
// processes and the 2-core machine is shared: CPU seconds show who used the cores. Both cover the
// server's process tree (`tapeq serve` forks its snapshot process at start), see `processTree`.

import { execFile, fork, spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ENV_VARIABLES } from '../src/config.js';
import { freePort, procStatFields } from '../test/fixtures/process.js';
import type { LoadResult, LoadSpec } from './bench-loadgen.js';

export { freePort };

export const tapeqCliPath = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
export const refServerPath = fileURLToPath(new URL('./bench-ref-server.js', import.meta.url));
const loadgenPath = fileURLToPath(new URL('./bench-loadgen.js', import.meta.url));

const children = new Set<ChildProcess>();
/** Temp directories not yet removed: removed at exit, ^C included. */
const tempDirs = new Set<string>();
let exitHooked = false;

/** At exit, and on SIGINT (exit 130) or SIGTERM (143), which otherwise end the process without
 *  running its `finally` blocks: SIGKILL every process still tracked (tapeq's snapshot process
 *  exits when its parent's IPC channel closes), then remove every temp directory still there. */
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const c of children) c.kill('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => process.exit(code));
  }
}

function track(child: ChildProcess): void {
  hookExit();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** A fresh directory under the system temp dir; removed by `remove()` or, failing that, at exit. */
export async function tempDir(prefix: string): Promise<{ dir: string; remove: () => Promise<void> }> {
  hookExit();
  const dir = await mkdtemp(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return {
    dir,
    remove: async () => {
      await rm(dir, { recursive: true, force: true });
      tempDirs.delete(dir);
    },
  };
}

export interface ServerProcess {
  name: string;
  pid: number;
  url: string;
  /** Milliseconds from spawn until the ready path answered 200. */
  readyMs: number;
  stderr(): string;
  /** Peak resident set size of the process tree so far, MiB: the sum of each process's VmHWM, an
   *  upper bound of the tree's peak (the processes need not have peaked at the same time). */
  peakRssMb(): number;
  /** Current resident set size (VmRSS) of the server process alone, MiB. */
  rssMb(): number;
  /** Current resident set size of the process tree (the sum of each process's VmRSS), MiB. */
  treeRssMb(): number;
  /** CPU seconds (user + system) used so far by the process tree. */
  cpuSeconds(): number;
  /** Minor page faults so far, every thread of the process (first touches of fresh memory, mostly). */
  minorFaults(): number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface StartOptions {
  name: string;
  command: string;
  /** Arguments; the string `{port}` is replaced by the chosen port. */
  args: string[];
  env?: Record<string, string>;
  /** Env variable that receives the port (besides `{port}` in args). */
  portEnv?: string;
  readyPath?: string;
  readyTimeoutMs?: number;
  cwd?: string;
  /** Inherited env variables to remove (e.g. a DATA_PATH that would switch bunqueue to SQLite);
   *  `env` and the port still set theirs. */
  envDrop?: string[];
}

export async function startServer(opts: StartOptions): Promise<ServerProcess> {
  const port = await freePort();
  const args = opts.args.map((a) => a.replaceAll('{port}', String(port)));
  const inherited: Record<string, string | undefined> = { ...process.env };
  for (const name of opts.envDrop ?? []) delete inherited[name];
  const env = { ...inherited, HOST: '127.0.0.1', ...(opts.portEnv ? { [opts.portEnv]: String(port) } : {}), ...opts.env };
  const started = performance.now();
  const child = spawn(opts.command, args, { env, cwd: opts.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  track(child);
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    if (stderr.length < 200_000) stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid ?? -1;
  const stop = async (graceMs = 3_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  try {
    await waitReady(child, `${url}${opts.readyPath ?? '/ready'}`, opts.readyTimeoutMs ?? 30_000, () => stderr);
  } catch (err) {
    await stop(0);
    throw err;
  }
  const readyMs = performance.now() - started;
  return {
    name: opts.name,
    pid,
    url,
    readyMs,
    stderr: () => stderr,
    peakRssMb: () => sum(processTree(pid).map((p) => procStatusMb(p, 'VmHWM'))),
    rssMb: () => procStatusMb(pid, 'VmRSS'),
    treeRssMb: () => sum(processTree(pid).map((p) => procStatusMb(p, 'VmRSS'))),
    cpuSeconds: () => sum(processTree(pid).map(procCpuSeconds)),
    minorFaults: () => minorFaultsOf(pid),
    stop,
  };
}

async function waitReady(child: ChildProcess, readyUrl: string, timeoutMs: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`server exited (${child.exitCode ?? child.signalCode}) before ready:\n${stderr().slice(-2_000)}`);
    }
    const ok = await fetch(readyUrl, { signal: AbortSignal.timeout(1_000) }).then(
      async (r) => {
        await r.arrayBuffer();
        return r.status === 200;
      },
      () => false,
    );
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`server not ready after ${timeoutMs} ms:\n${stderr().slice(-2_000)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Every variable tapeq reads (src/config.ts): none is inherited by a tapeq under test, since a
 *  caller's AUTH_TOKENS, LOG_SYNC_INTERVAL_MS or SNAPSHOT_* would silently change its numbers. */
export const tapeqEnvNames: readonly string[] = ENV_VARIABLES.map((v) => v.name);

/** `tapeq serve` from this build on a fresh or given data dir, with tapeq's defaults except `env`. */
export async function startTapeq(
  dataDir: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  readyTimeoutMs = 30_000,
): Promise<ServerProcess> {
  return startServer({
    name: 'tapeq',
    command: process.execPath,
    args: [...nodeArgs, tapeqCliPath, 'serve'],
    env: { DATA_DIR: dataDir, ...env },
    envDrop: [...tapeqEnvNames],
    portEnv: 'HTTP_PORT',
    readyTimeoutMs,
  });
}

/** One of the reference servers of tools/bench-ref-server.ts (`fastify` or `memory-queue`). */
export async function startRef(kind: 'fastify' | 'memory-queue'): Promise<ServerProcess> {
  return startServer({
    name: kind === 'fastify' ? 'bare fastify' : 'in-memory fastify queue',
    command: process.execPath,
    args: [refServerPath, kind, '{port}'],
  });
}

/**
 * `pid` and its descendants now, parents first, from /proc/<pid>/task/<tid>/children (every
 * thread's children; Linux ≥ 3.5). Read at each sample, so a process forked since the last one
 * is counted. A known limit: a descendant that exits between two samples drops out of the sums,
 * so its CPU seconds and peak RSS are lost (the kernel moves its CPU time to the parent's cutime
 * only once the parent reaps it, and we do not read that).
 */
export function processTree(pid: number): number[] {
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    const parent = tree[i] as number;
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      continue;
    }
    for (const tid of tasks) {
      let children = '';
      try {
        children = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of children.split(' ')) if (child.trim() !== '') tree.push(Number(child));
    }
  }
  return tree;
}

/** The sum of `values`, NaN values (a process gone since it was listed) left out. */
function sum(values: number[]): number {
  const known = values.filter((v) => Number.isFinite(v));
  return known.length === 0 ? Number.NaN : known.reduce((a, b) => a + b, 0);
}

/** `field` of /proc/<pid>/status (in KiB there) in MiB. */
function procStatusMb(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    return match?.[1] === undefined ? Number.NaN : Number(match[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Clock ticks per second for /proc/<pid>/stat; 100 on every Linux this runs on (USER_HZ). */
const userHz = 100;

/** Fields of /proc/<pid>/stat as proc(5) numbers them (1-based): minflt, utime, stime. */
const minorFaultsField = 10;
const utimeField = 14;
const stimeField = 15;

/** Field `n` of /proc/<pid>/stat as a number; NaN once the process is gone. */
function procStatField(pid: number, n: number): number {
  try {
    return Number(procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'))[n - 3]);
  } catch {
    return Number.NaN;
  }
}

/** Minor page faults of process `pid` so far, every thread (NaN once it is gone). */
export function minorFaultsOf(pid: number): number {
  return procStatField(pid, minorFaultsField);
}

function procCpuSeconds(pid: number): number {
  return (procStatField(pid, utimeField) + procStatField(pid, stimeField)) / userHz;
}

/** Writes one byte into each 4 KiB page of `mib` MiB never touched before, three times in a fresh
 *  process (each time a new buffer): the median wall time per minor page fault this took (per
 *  fault, not per page: with huge pages one fault covers 2 MiB). A process that builds a large
 *  state pays this for every page of heap, arena and buffers it fills; on a VM whose host backs
 *  guest memory lazily it is far above bare metal's fraction of a microsecond. */
const firstTouchScript = `
const bytes = Number(process.argv[1]) * 1048576;
const us = [];
for (let round = 0; round < 3; round++) {
  const b = Buffer.allocUnsafeSlow(bytes);
  const faults = process.resourceUsage().minorPageFault;
  const t = process.hrtime.bigint();
  for (let i = 0; i < bytes; i += 4096) b[i] = 1;
  const ns = Number(process.hrtime.bigint() - t);
  us.push(ns / 1000 / Math.max(1, process.resourceUsage().minorPageFault - faults));
}
console.log(JSON.stringify(us.sort((a, b) => a - b)[1]));`;

export async function firstTouchUsPerFault(mib = 64): Promise<number> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', firstTouchScript, String(mib)], { timeout: 120_000 });
  return Number(JSON.parse(stdout));
}

/**
 * Runs one load spec in a forked tools/bench-loadgen.js and returns its result. `onMeasure` runs
 * when the child ends its warm-up and starts the measured part. The child is killed if it has
 * not answered within the spec's duration plus `slackMs`, and always once it has answered.
 */
export async function runLoad(spec: LoadSpec, onMeasure: () => void = () => {}, slackMs = 120_000): Promise<LoadResult> {
  const child = fork(loadgenPath, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
  track(child);
  const budgetMs = (spec.seconds + spec.warmupSeconds) * 1_000 + slackMs;
  type Message = { phase: 'measure' } | { ok: true; result: LoadResult } | { ok: false; error: string };
  try {
    return await new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator (${spec.workload}) timed out`)), budgetMs);
      child.on('message', (msg: Message) => {
        if ('phase' in msg) return onMeasure();
        clearTimeout(timer);
        if (msg.ok) resolve(msg.result);
        else reject(new Error(`load generator (${spec.workload}): ${msg.error}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`load generator (${spec.workload}) exited with ${code}`));
      });
      child.send(spec);
    });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
