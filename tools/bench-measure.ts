// One measurement = one fresh server process + one forked load generator, both on loopback, both
// bounded in time and both gone afterwards (even on error). References that several scenarios
// compare against (bare fastify push, the raw disk) are measured once per run and shared, so
// every ratio printed is between numbers of the same run.

import { join } from 'node:path';
import { rawFs } from './bench-log.js';
import { ensureBunqueue, startBunqueue, type Bunqueue, type BunqueueMode } from './bench-bunqueue.js';
import type { LoadResult, LoadSpec, Workload } from './bench-loadgen.js';
import { firstTouchUsPerFault, runLoad, startRef, startTapeq, tempDir, type ServerProcess } from './bench-proc.js';
import type { Row } from './bench-report.js';

export interface BenchOptions {
  /** Measured seconds per run (`--seconds`). */
  seconds: number;
  /** Warm-up seconds before each measured run, not counted. */
  warmupSeconds: number;
  /** Jobs for recovery and memory (`--jobs`). */
  jobs: number;
  /** HTTP connections for push (`--connections`); the 50 by default. */
  connections: number;
  /** Competitors (`--vs bunqueue`). */
  vs: string[];
  /** Progress lines (stderr), never the report. */
  log: (line: string) => void;
}

export const defaultBenchOptions: BenchOptions = {
  seconds: 5,
  warmupSeconds: 1,
  jobs: 1_000_000,
  connections: 50,
  vs: [],
  log: (line) => process.stderr.write(`${line}\n`),
};

export interface Target {
  subject: string;
  /** The tapeq variables this target sets (tapeq targets only; the rest are tapeq's defaults). */
  tapeqEnv?: Record<string, string>;
  start(): Promise<{ server: ServerProcess; remove: () => Promise<void> }>;
}

export function tapeqTarget(env: Record<string, string> = {}, subject = 'tapeq'): Target {
  return {
    subject,
    tapeqEnv: env,
    async start() {
      const data = await tempDir('tapeq-bench-data-');
      try {
        return { server: await startTapeq(data.dir, env), remove: data.remove };
      } catch (err) {
        await data.remove();
        throw err;
      }
    },
  };
}

export function refTarget(kind: 'fastify' | 'memory-queue'): Target {
  return {
    subject: kind === 'fastify' ? 'bare fastify' : 'in-memory fastify queue',
    start: async () => ({ server: await startRef(kind), remove: async () => {} }),
  };
}

export function bunqueueTarget(bq: Bunqueue, mode: BunqueueMode, subject: string): Target {
  return { subject, start: () => startBunqueue(bq, mode) };
}

export class BenchRun {
  private readonly cache = new Map<string, Promise<unknown>>();
  /** The tapeq environments started since `takeTapeqEnvs`, each as `NAME=value ...`. */
  private readonly tapeqEnvs = new Set<string>();
  /** `installs`: what several runs share (a competitor installed once, not once per round). */
  constructor(
    readonly opts: BenchOptions,
    private readonly installs = new Map<string, Promise<unknown>>(),
  ) {}

  /** `make()` once per run under `key`; later calls share the first result. */
  once<T>(key: string, make: () => Promise<T>): Promise<T> {
    return memo(this.cache, key, make);
  }

  /** Records the tapeq variables a server under test was started with (for the report). */
  noteTapeqEnv(env: Record<string, string>): void {
    const text = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(' ');
    this.tapeqEnvs.add(text === '' ? 'no variable' : text);
  }

  /** The tapeq environments noted since the last call, and forgets them. */
  takeTapeqEnvs(): string[] {
    const envs = [...this.tapeqEnvs];
    this.tapeqEnvs.clear();
    return envs;
  }

  spec(workload: Workload, over: Partial<LoadSpec> = {}): LoadSpec {
    return {
      workload,
      url: '',
      queue: 'bench',
      connections: this.opts.connections,
      seconds: this.opts.seconds,
      warmupSeconds: this.opts.warmupSeconds,
      bulkSize: 100,
      amount: 0,
      pipeline: 64,
      ssePushPerSec: 200,
      durable: false,
      ...over,
    };
  }

  /** Starts `target`, runs `spec` against it, stops it; the server's CPU counts the measured part
   *  only (from the load generator's start of it until its result arrives) and is divided by that
   *  window's wall time, the load generator's by its own. `measure` is the row's text, or a
   *  function of the result for a text that carries a measured number; then the row's `key` is
   *  `measure(null)`. */
  async measure(target: Target, measure: string | ((result: LoadResult | null) => string), spec: LoadSpec, unit: string): Promise<Row> {
    const text = typeof measure === 'string' ? measure : measure(null);
    this.opts.log(`bench: ${target.subject} — ${text}`);
    if (target.tapeqEnv !== undefined) this.noteTapeqEnv(target.tapeqEnv);
    const { server, remove } = await target.start();
    try {
      let cpuStart = Number.NaN;
      let wallStart = Number.NaN;
      const result = await runLoad({ ...spec, url: server.url }, () => {
        cpuStart = server.cpuSeconds();
        wallStart = performance.now();
      });
      const serverCpu = server.cpuSeconds() - cpuStart;
      const serverWallSeconds = (performance.now() - wallStart) / 1_000;
      return {
        subject: target.subject,
        measure: typeof measure === 'string' ? measure : measure(result),
        ...(typeof measure === 'string' ? {} : { key: text }),
        value: result.opsPerSec,
        unit,
        p50Ms: result.p50Ms,
        p99Ms: result.p99Ms,
        peakRssMb: server.peakRssMb(),
        serverCores: serverCpu / serverWallSeconds,
        loadgenCores: result.cpuSeconds / result.cpuWindowSeconds,
        errors: result.errors,
        ...(result.errors > 0 ? { errorDetail: result.errorDetail } : {}),
      };
    } finally {
      await server.stop();
      await remove();
    }
  }

  /** The bare fastify push ceiling (one JSON job per request), shared by the push scenarios. Its
   *  unit is jobs/s (one job per 2xx answer) like tapeq's, so the chart draws both on one scale. */
  bareFastifyPush(): Promise<Row> {
    return this.once('bare-fastify-push', () =>
      this.measure(refTarget('fastify'), `push, 1 job/request, ${this.opts.connections} connections`, this.spec('push'), 'jobs/s'),
    );
  }

  /** The disk ceiling: raw fs write + fdatasync per write, small and large writes, same run. */
  disk(): Promise<Row[]> {
    return this.once('disk', async () => {
      this.opts.log('bench: raw fs write + fdatasync');
      const dir = await tempDir('tapeq-bench-disk-');
      try {
        const small = await rawFs(join(dir.dir, 'small.bin'), 4_096 * 500, 500);
        const large = await rawFs(join(dir.dir, 'large.bin'), 1_048_576 * 64, 64);
        return [
          { subject: 'raw fs', measure: 'sequential 4 KiB write + fdatasync each', value: 500 / small.write.seconds, unit: 'fdatasyncs/s' },
          { subject: 'raw fs', measure: 'sequential 1 MiB write + fdatasync each', value: 64 / large.write.seconds, unit: 'MiB/s' },
        ];
      } finally {
        await dir.remove();
      }
    });
  }

  /** The memory ceiling for building a large state: the first write to a fresh 4 KiB page. */
  freshMemory(): Promise<Row> {
    return this.once('fresh-memory', async () => {
      this.opts.log('bench: raw memory, first write to fresh pages');
      return {
        subject: 'raw memory',
        measure: 'first write to fresh memory, one byte per 4 KiB page (64 MiB in a fresh process, median of 3): wall time per minor page fault',
        value: await firstTouchUsPerFault(),
        unit: 'µs/fault',
      };
    });
  }

  /** bunqueue, or the reason it cannot run here (installed once for all the runs sharing `installs`). */
  bunqueue(): Promise<Bunqueue | Error> {
    return memo(this.installs, 'bunqueue', () =>
      ensureBunqueue(this.opts.log).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
    );
  }
}

/** The promise `cache` holds under `key`, made by `make()` the first time. */
function memo<T>(cache: Map<string, Promise<unknown>>, key: string, make: () => Promise<T>): Promise<T> {
  let hit = cache.get(key) as Promise<T> | undefined;
  if (hit === undefined) {
    hit = make();
    cache.set(key, hit);
  }
  return hit;
}
