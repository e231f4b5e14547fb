// Push-worker benchmark: jobs/s through a push worker (concurrency 50) to a local endpoint that
// answers at once, against calling the same endpoint directly through the same undici pools with
// the same concurrency, in one run. The difference per job is what the broker adds: pull + lock
// record, the JSON body, the ack record and their group commits.
//
//   node build/tools/bench-workers.js [jobs] [sync: always|interval]
//
// Jobs are pushed before the worker is registered, so only dispatch is timed. Both sides first
// warm up (a worker on another queue, then direct calls, through the same pools), then the worker
// run is timed, then the direct calls: a fixed number of jobs each, so `--seconds` does not apply.

import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Broker } from '../src/broker/broker.js';
import { workerResponseBytesMax } from '../src/constants.js';
import { Log } from '../src/log/log.js';
import { createState } from '../src/state/index.js';
import { WorkerDispatcher } from '../src/workers/dispatcher.js';
import { tempDir } from './bench-proc.js';

export interface WorkerBenchResult {
  jobs: number;
  concurrency: number;
  sync: 'always' | 'interval';
  workerMs: number;
  directMs: number;
  workerJobsPerSec: number;
  directCallsPerSec: number;
  /** Extra wall time per job through the worker, at this concurrency (µs). */
  overheadUsPerJob: number;
  /** Jobs through a warm-up worker, then calls made directly, before either side is timed. */
  warmupJobs: number;
}

const concurrency = 50;
const pushChunk = 1_000;

export async function benchWorkers(jobs = 20_000, sync: 'always' | 'interval' = 'always'): Promise<WorkerBenchResult> {
  const temp = await tempDir('tapeq-bench-workers-');
  const dir = temp.dir;
  const endpoint = await listen();
  const log = await Log.open({ dir: join(dir, 'log'), sync, syncIntervalMs: 5, logger: () => undefined });
  const broker = new Broker({ log, state: createState(), logger: () => undefined });
  broker.start();
  const dispatcher = new WorkerDispatcher({ broker, logger: () => undefined });
  dispatcher.start();
  const warmupJobs = Math.max(1, Math.min(1_000, Math.floor(jobs / 10)));
  try {
    await pushJobs(broker, 'bench-warmup', warmupJobs);
    await runWorker(broker, 'bench-warmup', endpoint.url, warmupJobs);
    await direct(dispatcher, endpoint.url, warmupJobs);
    await pushJobs(broker, 'bench', jobs);
    const workerMs = await runWorker(broker, 'bench', endpoint.url, jobs);
    const directMs = await direct(dispatcher, endpoint.url, jobs);
    return {
      jobs,
      warmupJobs,
      concurrency,
      sync,
      workerMs,
      directMs,
      workerJobsPerSec: jobs / (workerMs / 1000),
      directCallsPerSec: jobs / (directMs / 1000),
      overheadUsPerJob: ((workerMs - directMs) * 1000) / jobs,
    };
  } finally {
    await dispatcher.close();
    await broker.close();
    await log.close();
    await new Promise<void>((resolve) => endpoint.server.close(() => resolve()));
    await temp.remove();
  }
}

async function pushJobs(broker: Broker, queue: string, jobs: number): Promise<void> {
  for (let i = 0; i < jobs; i += pushChunk) {
    const items = Array.from({ length: Math.min(pushChunk, jobs - i) }, (_, k) => ({ data: { n: i + k } }));
    const out = await broker.pushBulk(queue, items, { actor: null });
    if (!out.ok) throw new Error(`push failed: ${out.error}`);
  }
}

/** Registers a push worker on `queue`, waits until `jobs` jobs there are completed and removes
 *  the worker again (so a later run has the dispatcher to itself); the milliseconds from
 *  registering to the last completion. */
async function runWorker(broker: Broker, queue: string, url: string, jobs: number): Promise<number> {
  let stop = (): void => {};
  const done = new Promise<number>((resolve) => {
    stop = broker.onRecords(() => {
      if (broker.counts(queue).completed === jobs) resolve(performance.now());
    });
  });
  const started = performance.now();
  const reg = await broker.registerWorker(
    {
      queue,
      endpoint: { url, method: 'POST', headers: {}, timeout: 3_000 },
      opts: { concurrency, limiter: null, removeOnComplete: null, removeOnFail: null, maxStalledCount: 1 },
    },
    { actor: null },
  );
  if (!reg.ok) throw new Error(`register failed: ${reg.error}`);
  const finished = await done;
  stop();
  const removed = await broker.removeWorker(queue, { actor: null });
  if (!removed.ok) throw new Error(`remove failed: ${removed.error}`);
  return finished - started;
}

/** The same number of calls, same body shape, same pools, `concurrency` at a time. */
async function direct(dispatcher: WorkerDispatcher, url: string, calls: number): Promise<number> {
  const body = JSON.stringify({ job: { id: '0190a0b0-0000-7000-8000-000000000000', data: { n: 1 } }, token: 'x'.repeat(36) });
  let next = 0;
  const lane = async () => {
    while (next < calls) {
      next += 1;
      const out = await dispatcher.client.call({
        url,
        method: 'POST',
        headers: {},
        body,
        timeoutMs: 3_000,
        responseBytesMax: workerResponseBytesMax,
      });
      if (out.kind !== 'answered' || out.status !== 200) throw new Error(`direct call failed: ${JSON.stringify(out)}`);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, lane));
  return performance.now() - started;
}

async function listen(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
      res.end('{}');
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { server, url: `http://127.0.0.1:${port}/job` };
}

export function formatWorkerBench(results: WorkerBenchResult[]): string {
  const rows = results.map(
    (r) =>
      `| ${r.sync} | ${r.jobs} | ${r.concurrency} | ${Math.round(r.workerJobsPerSec)} | ${Math.round(r.directCallsPerSec)} | ` +
      `${r.overheadUsPerJob.toFixed(1)} |`,
  );
  return [
    '| LOG_SYNC | jobs | concurrency | push worker jobs/s | direct calls/s | overhead µs/job |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows,
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const jobs = Number(process.argv[2] ?? 20_000);
  const syncArg = process.argv[3];
  const syncs: Array<'always' | 'interval'> = syncArg === 'always' || syncArg === 'interval' ? [syncArg] : ['always', 'interval'];
  const results: WorkerBenchResult[] = [];
  for (const sync of syncs) results.push(await benchWorkers(jobs, sync));
  process.stdout.write(`${formatWorkerBench(results)}\n`);
}
