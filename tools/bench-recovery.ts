// Recovery and memory scenarios, against the real `tapeq serve` process:
//
//   recovery  a data dir holding N pushed jobs (written straight through the Log, ~100-byte
//             payloads), then time from spawn to GET /ready = 200: first by full replay (no
//             snapshot), then from a snapshot of the same log (written by the snapshot store in the format the server's snapshotter writes);
//             then one scrub of that data dir (src/snapshot/scrub.ts), timed.
//   memory    a fresh server started with --expose-gc (as the README's runs by hand; POST /gc
//             works without it), N jobs pushed over HTTP in bulk requests of up to 1,000; the
//             RSS of its process tree (VmRSS of the server and of its snapshot process) right
//             after, after 60 s idle, then after POST /gc (a compacting GC), against the RSS of
//             the empty server.
//
// `--jobs N` scales both (default 1,000,000).

import { mkdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { heapGrowingPercentCeiling, heapHeadroomBytes, scrubDutyCycle } from '../src/constants.js';
import { Log } from '../src/log/log.js';
import { dataPathsOf } from '../src/history/state-at.js';
import { loadState } from '../src/snapshot/recover-state.js';
import { scrubInWorker } from '../src/snapshot/scrub.js';
import { writeStateSnapshot } from '../src/snapshot/store.js';
import type { BenchRun } from './bench-measure.js';
import { runLoad, startTapeq, tempDir, type ServerProcess } from './bench-proc.js';
import { ratioOf, type Row, type ScenarioReport } from './bench-report.js';
import { fillLog } from './bench-snapshot.js';

const noSnapshots = { SNAPSHOT_EVERY_RECORDS: String(2 ** 31 - 1), SNAPSHOT_INTERVAL_MS: String(2 ** 31 - 1) };

/** Milliseconds the server itself reported for opening its log and loading its state
 *  ("log opened and state loaded in N ms"; before 2026-12-06 "state loaded in N ms", without the open). */
function loadedMs(server: ServerProcess): number {
  const match = /state loaded in (\d+) ms/.exec(server.stderr());
  return match?.[1] === undefined ? Number.NaN : Number(match[1]);
}

async function timeToReady(run: BenchRun, dataDir: string, how: string): Promise<{ row: Row; minorFaults: number }> {
  run.opts.log(`bench: tapeq — time to ready, ${how}`);
  run.noteTapeqEnv(noSnapshots);
  const server = await startTapeq(dataDir, noSnapshots, [], 600_000);
  try {
    const minorFaults = server.minorFaults();
    const row: Row = {
      subject: 'tapeq',
      measure: `spawn → /ready 200, ${how} (server's own log open + load: ${loadedMs(server)} ms; ${minorFaults.toLocaleString('en-US')} minor page faults)`,
      value: server.readyMs,
      unit: 'ms',
      peakRssMb: server.peakRssMb(),
    };
    return { row, minorFaults };
  } finally {
    await server.stop(30_000);
  }
}

export async function benchRecovery(run: BenchRun): Promise<ScenarioReport> {
  const jobs = run.opts.jobs;
  const data = await tempDir('tapeq-bench-recovery-');
  try {
    const { logDir, snapshotsDir } = dataPathsOf(data.dir);
    run.opts.log(`bench: writing ${jobs.toLocaleString('en-US')} pushed jobs into a log`);
    const log = await Log.open({ dir: logDir, sync: 'interval', syncIntervalMs: 5, logger: () => {} });
    try {
      await fillLog(log, jobs);
    } finally {
      await log.close();
    }
    const empty = await tempDir('tapeq-bench-recovery-empty-');
    const baseline = await timeToReady(run, empty.dir, 'empty data dir (start-up baseline)').finally(() => empty.remove());
    const replay = await timeToReady(run, data.dir, `full replay of ${jobs.toLocaleString('en-US')} jobs`);

    run.opts.log('bench: writing a snapshot of that log');
    const readOnly = await Log.open({ dir: logDir, readOnly: true, logger: () => {} });
    try {
      const loaded = await loadState({ log: readOnly, dir: join(data.dir, 'no-snapshots'), logger: () => {} });
      await mkdir(snapshotsDir, { recursive: true });
      await writeStateSnapshot(snapshotsDir, loaded.state);
    } finally {
      await readOnly.close();
    }
    const snapshot = await timeToReady(run, data.dir, `from a snapshot of ${jobs.toLocaleString('en-US')} jobs`);
    const speedup = replay.row.value / snapshot.row.value;
    const scrub = await scrubRow(run, data.dir, jobs);
    const memory = await run.freshMemory();
    return {
      rows: [baseline.row, replay.row, { ...snapshot.row, ratio: ratioOf(speedup, 'replay time ÷ this = {x}') }, scrub, memory],
      notes: [
        'Time to ready includes starting Node and loading the code (the empty-data-dir row); the server\'s own state load time is in the measure column.',
        faultNote(memory.value, [replay, snapshot]),
        `The scrub row is one run of the server's scrub (SCRUB_INTERVAL_MS) over that data dir, in a worker thread as the server runs it: ` +
          `it pauses after each file three times as long as the file took, so it reads at about ${scrubDutyCycle * 100}% of the rate in its measure. ` +
          'The files were just written and read, so their pages are in the page cache, as on a server that wrote them lately; a cold read is bounded by the disk.',
      ],
    };
  } finally {
    await data.remove();
  }
}

/** One scrub of `dataDir`'s segments and snapshots (src/snapshot/scrub.ts), timed. */
async function scrubRow(run: BenchRun, dataDir: string, jobs: number): Promise<Row> {
  run.opts.log('bench: tapeq — one scrub of that data dir');
  const { logDir, snapshotsDir } = dataPathsOf(dataDir);
  const log = await Log.open({ dir: logDir, readOnly: true, logger: () => {} });
  const segments = log.segments();
  const last = segments[segments.length - 1];
  if (last === undefined) throw new Error(`bench: no segment in ${logDir}`);
  // The log is closed, so its last segment holds only synced records: what the server's scrub
  // reads of its active segment, up to its synced end (scrub.ts).
  const active = { baseOffset: last.baseOffset, bytes: last.bytes };
  const job = { logDir, snapshotsDir, logId: log.logId, bases: segments.slice(0, -1).map((s) => s.baseOffset), active };
  await log.close();
  const started = performance.now();
  const cpu = process.cpuUsage();
  const result = await scrubInWorker(job, undefined, true);
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu); // every thread of this process: the scrub's worker too
  const cpuMs = (used.user + used.system) / 1_000;
  const mib = result.bytes / 2 ** 20;
  const working = ms * scrubDutyCycle;
  if (result.faultCount > 0) throw new Error(`bench: the scrub found ${result.faultCount} fault(s) in a log it just wrote: ${JSON.stringify(result.faults[0])}`);
  return {
    subject: 'tapeq',
    measure:
      `scrub: ${result.segments} sealed segments, the active one and ${result.snapshots} snapshot of ${jobs.toLocaleString('en-US')} jobs, ${mib.toFixed(0)} MiB ` +
      `(${(mib / (working / 1_000)).toFixed(0)} MiB/s while working, ${(cpuMs / 1_000).toFixed(2)} CPU s)`,
    value: ms,
    unit: 'ms',
  };
}

/** What the starts' minor page faults cost at the raw memory row's price per fault. */
function faultNote(usPerFault: number, starts: Array<{ row: Row; minorFaults: number }>): string {
  const cost = starts.map((s) => `${((s.minorFaults * usPerFault) / 1e6).toFixed(2)} s of the ${(s.row.value / 1_000).toFixed(2)} s`).join(' and ');
  return (
    `Minor page faults are counted over every thread of the server until it is ready; most are first writes to fresh memory ` +
    `(the heap, the payload arena, read buffers). At this run's ${usPerFault.toFixed(2)} µs per fault (raw memory row; it varies ` +
    `from run to run on a shared machine) they come to about ${cost} starts, spread over the server's threads, so not all of ` +
    `it on the wall clock.`
  );
}

/** How far the server under test let its old generation grow (its HEAP_GROWING_PERCENT: the
 *  default, since it inherits no tapeq variable and the scenario sets none). */
function heapGrowthText(): string {
  const percent = loadConfig(noSnapshots).heapGrowingPercent;
  return percent === 0
    ? 'HEAP_GROWING_PERCENT=0 here, so V8 picks how far the old generation grows past the live heap (up to 4×)'
    : `at most HEAP_GROWING_PERCENT (${percent}% here) past the live heap, or ${heapHeadroomBytes / 2 ** 20} MiB when that is more (at most ${heapGrowingPercentCeiling}%)`;
}

interface GcReply {
  after?: { heapUsed: number; rss: number };
}

async function gc(server: ServerProcess): Promise<GcReply> {
  const res = await fetch(`${server.url}/gc`, { method: 'POST', signal: AbortSignal.timeout(60_000) });
  return (await res.json()) as GcReply;
}

/** How long the memory scenario leaves the filled server idle before POST /gc: V8's memory
 *  reducer compacted the heap 15–60 s after a fill in our runs. */
const idleSeconds = 60;

/** RSS of the server's process tree and of the server process alone, MiB. */
interface Rss {
  tree: number;
  alone: number;
}

function rssOf(server: ServerProcess): Rss {
  return { tree: server.treeRssMb(), alone: server.rssMb() };
}

/** " (process tree; the server process alone: N MiB)": what each RSS row's value is made of. */
function aloneText(rss: Rss): string {
  return `process tree; the server process alone: ${rss.alone.toFixed(1)} MiB`;
}

/** RSS after `seconds` of no requests, and the tree's lowest RSS meanwhile (sampled each second). */
async function idleRss(server: ServerProcess, seconds: number): Promise<{ end: Rss; lowest: number; lowestAtS: number }> {
  let lowest = server.treeRssMb();
  let lowestAtS = 0;
  for (let s = 1; s <= seconds; s++) {
    await sleep(1_000);
    const rss = server.treeRssMb();
    if (rss < lowest) {
      lowest = rss;
      lowestAtS = s;
    }
  }
  return { end: rssOf(server), lowest, lowestAtS };
}

/** `idle`: seconds the filled server is left alone before POST /gc (tests shorten it). */
export async function benchMemory(run: BenchRun, idle = idleSeconds): Promise<ScenarioReport> {
  const jobs = run.opts.jobs;
  const data = await tempDir('tapeq-bench-memory-');
  run.noteTapeqEnv(noSnapshots);
  const server = await startTapeq(data.dir, noSnapshots, ['--expose-gc']);
  try {
    const empty = await gc(server);
    const rssEmpty = rssOf(server);
    run.opts.log(`bench: tapeq — pushing ${jobs.toLocaleString('en-US')} jobs (bulk of 1,000 over HTTP)`);
    const bulkSize = Math.min(1_000, jobs);
    const connections = Math.min(4, Math.ceil(jobs / bulkSize));
    const fill = await runLoad(run.spec('fill', { url: server.url, connections, bulkSize, amount: jobs, warmupSeconds: 0, seconds: 0 }));
    if (fill.errors > 0) throw new Error(`memory: ${fill.errors} push requests failed`);
    const rssFilled = rssOf(server);
    run.opts.log(`bench: tapeq — leaving the filled server idle for ${idle} s`);
    const idled = await idleRss(server, idle);
    const full = await gc(server);
    const rssFull = rssOf(server);
    const bytesPerJob = ((rssFull.tree - rssEmpty.tree) * 1_048_576) / fill.ops;
    const heapPerJob = full.after && empty.after ? ((full.after.heapUsed - empty.after.heapUsed) * 1_048_576) / fill.ops : Number.NaN;
    const rows: Row[] = [
      { subject: 'tapeq', measure: `RSS after POST /gc, empty server (${aloneText(rssEmpty)})`, value: rssEmpty.tree, unit: 'MiB' },
      {
        subject: 'tapeq',
        measure: `RSS right after pushing ${fill.ops.toLocaleString('en-US')} jobs, before POST /gc (${aloneText(rssFilled)})`,
        value: rssFilled.tree,
        unit: 'MiB',
      },
      {
        subject: 'tapeq',
        measure: `RSS after ${idle} s idle, before POST /gc (${aloneText(idled.end)}; the tree's lowest meanwhile: ${idled.lowest.toFixed(0)} MiB, at ${idled.lowestAtS} s)`,
        value: idled.end.tree,
        unit: 'MiB',
      },
      {
        subject: 'tapeq',
        measure: `RSS after POST /gc, ${fill.ops.toLocaleString('en-US')} waiting jobs (~100-byte payloads) (${aloneText(rssFull)})`,
        value: rssFull.tree,
        unit: 'MiB',
        peakRssMb: server.peakRssMb(),
      },
      { subject: 'tapeq', measure: 'RSS growth per waiting job (process tree, from POST /gc to POST /gc)', value: bytesPerJob, unit: 'bytes/job' },
      { subject: 'tapeq', measure: 'heapUsed growth per waiting job (from POST /gc)', value: heapPerJob, unit: 'bytes/job' },
      {
        subject: 'tapeq',
        measure: `fill rate: bulk push, ${bulkSize.toLocaleString('en-US')} jobs/request, ${connections} connection${connections === 1 ? '' : 's'}`,
        value: fill.opsPerSec, unit: 'jobs/s',
        p50Ms: fill.p50Ms,
        p99Ms: fill.p99Ms,
        loadgenCores: fill.cpuSeconds / fill.cpuWindowSeconds,
        errors: fill.errors,
      },
    ];
    return {
      rows,
      notes: [
        'POST /gc runs a full GC that compacts the whole heap and returns once the freed pages are back with the OS; RSS read from /proc/<pid>/status.',
        'The server runs with snapshots disabled (SNAPSHOT_EVERY_RECORDS and SNAPSHOT_INTERVAL_MS at their maximum), so no snapshot is built during the fill; ' +
          'the RSS rows are the current RSS of the process tree (the server and the snapshot process it forks at start, idle here; the server alone in brackets), peak RSS the sum of their peaks.',
        `Before POST /gc the heap also holds the garbage the fill left in the old generation since V8's last full GC (request bodies and records that outlived a young-generation GC): ${heapGrowthText()}; V8 compacts what stays half-empty only gradually, which the idle row shows.`,
      ],
    };
  } finally {
    await server.stop(30_000);
    await data.remove();
  }
}
