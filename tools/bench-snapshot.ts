// Snapshot benchmark: N waiting jobs with ~100-byte payloads in a real log, then
//   - the longest main-thread event-loop pause while the Snapshotter builds a snapshot in its
//     snapshot process (perf_hooks.monitorEventLoopDelay, 1 ms resolution) and that snapshot's wall time,
//     next to the longest pause over as long a stretch with no snapshot running (on a shared
//     machine the scheduler alone pauses the loop; the difference is the snapshot's doing);
//   - snapshot file size and the in-process write time of file format 2 (writeStateSnapshot:
//     encode + write block by block + fsync + rename + prune);
//   - load time (read + verify + decode straight into a State: loadNewestState) of that file;
//   - exportState time (the image the digest hashes; snapshots no longer go through it);
//   - full replay from offset 0 in records/s, for comparison;
//   - the minor page faults of the load and the replay, and what a first write to a fresh page
//     costs on this machine (most of those faults are such writes).
// Wall times suffer on a loaded machine; the CPU seconds of this process are reported too.
//
// Run: npx tsc -p . && node build/tools/bench-snapshot.js [jobs]   (default 1,000,000)
// Needs a few GB of memory for 1M jobs (the log's tail ring, the state, the snapshot process's copy).

import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { Log } from '../src/log/log.js';
import type { RecordDraft } from '../src/record/types.js';
import { exportState } from '../src/state/index.js';
import { loadState } from '../src/snapshot/recover-state.js';
import { Snapshotter } from '../src/snapshot/snapshotter.js';
import { loadNewestState, writeStateSnapshot } from '../src/snapshot/store.js';
import { plainSpec } from '../test/fixtures/records.js';
import { firstTouchUsPerFault, tempDir } from './bench-proc.js';

export interface SnapshotBenchResult {
  jobs: number;
  snapshotterMs: number;
  mainLoopMaxPauseMs: number;
  mainLoopP99PauseMs: number;
  idleLoopMaxPauseMs: number;
  snapshotBytes: number;
  exportMs: number;
  writeMs: number;
  writeCpuMs: number;
  loadMs: number;
  loadCpuMs: number;
  loadMinorFaults: number;
  fullReplayMs: number;
  fullReplayCpuMs: number;
  fullReplayMinorFaults: number;
  fullReplayRecordsPerSec: number;
  fullReplayRecordsPerCpuSec: number;
  /** Wall time per minor fault of first writes to fresh memory, in a fresh process (bench-proc.ts). */
  firstTouchUsPerFault: number;
}

/** Wall and CPU milliseconds of `run`, and the minor page faults of this process meanwhile. */
async function timed<T>(run: () => Promise<T> | T): Promise<{ value: T; ms: number; cpuMs: number; minorFaults: number }> {
  const cpu = process.cpuUsage();
  const faults = process.resourceUsage().minorPageFault;
  const started = performance.now();
  const value = await run();
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return { value, ms, cpuMs: (used.user + used.system) / 1_000, minorFaults: process.resourceUsage().minorPageFault - faults };
}

/** Longest event-loop pause over `ms` with nothing else running. */
async function idleLoopMaxPauseMs(ms: number): Promise<number> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  await new Promise((resolve) => setTimeout(resolve, ms));
  delay.disable();
  return delay.max / 1e6;
}

const payload = JSON.stringify({ email: 'someone@example.com', template: 'welcome', locale: 'en', n: 0, pad: 'x'.repeat(38) });

export function pushDraft(i: number, t0: number): RecordDraft {
  return {
    timestamp: t0 + Math.floor(i / 100),
    actor: null,
    body: {
      type: 'pushed',
      job: plainSpec(`0190f5c2-8a4b-7c3d-${i.toString(16).padStart(12, '0')}`, `bench-${i % 4}`, payload, t0),
      state: 1,
      pendingDeps: [],
    },
  };
}

export async function fillLog(log: Log, jobs: number): Promise<void> {
  const t0 = 1_700_000_000_000;
  for (let i = 0; i < jobs; i += 2_000) {
    const drafts: RecordDraft[] = [];
    for (let j = i; j < Math.min(i + 2_000, jobs); j++) drafts.push(pushDraft(j, t0));
    await log.append(drafts).durable;
  }
}

/** Longest main-loop pause while the Snapshotter's process builds a snapshot of the whole log. */
async function measureSnapshotter(log: Log, dir: string): Promise<{ ms: number; maxMs: number; p99Ms: number }> {
  const snapshotter = new Snapshotter({ dir, log, everyRecords: Number.MAX_SAFE_INTEGER, intervalMs: 2 ** 30, logger: () => {} });
  // As in the server: the snapshot process is forked when the Snapshotter starts, not per snapshot.
  snapshotter.start();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const delay = monitorEventLoopDelay({ resolution: 1 });
  const started = performance.now();
  delay.enable();
  const file = await snapshotter.snapshotNow();
  delay.disable();
  const ms = performance.now() - started;
  await snapshotter.close();
  if (file === null) throw new Error('snapshotter wrote nothing');
  return { ms, maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6 };
}

/** Full replay, exportState and writeStateSnapshot; only numbers come back, so neither the
 *  replayed state nor the image is still alive (and scanned by the GC) while the load is timed. */
async function replayExportWrite(log: Log, root: string) {
  const replay = await timed(() => loadState({ log, dir: join(root, 'empty'), logger: () => {} }));
  const state = replay.value.state;
  const exported = await timed(() => exportState(state).jobs.length);
  const write = await timed(() => writeStateSnapshot(join(root, 'written'), state));
  return {
    replay: { ms: replay.ms, cpuMs: replay.cpuMs, minorFaults: replay.minorFaults, replayed: replay.value.replayed },
    exported: { ms: exported.ms },
    write: { ms: write.ms, cpuMs: write.cpuMs },
    snapshotBytes: (await stat(write.value)).size,
  };
}

export async function benchSnapshot(jobs = 1_000_000): Promise<SnapshotBenchResult> {
  const temp = await tempDir('tapeq-bench-snapshot-');
  const root = temp.dir;
  const log = await Log.open({ dir: join(root, 'log'), sync: 'interval', syncIntervalMs: 5, logger: () => {} });
  try {
    await fillLog(log, jobs);
    const snapshotter = await measureSnapshotter(log, join(root, 'snapshots'));
    const idleMaxMs = await idleLoopMaxPauseMs(Math.min(snapshotter.ms, 30_000));

    const built = await replayExportWrite(log, root);
    const load = await timed(() => loadNewestState(join(root, 'written'), () => {}));
    if (load.value === null || load.value.state.jobs.size !== jobs) throw new Error('snapshot did not load');
    const { replay, exported, write, snapshotBytes } = built;

    return {
      jobs,
      snapshotterMs: Math.round(snapshotter.ms),
      mainLoopMaxPauseMs: Math.round(snapshotter.maxMs * 10) / 10,
      mainLoopP99PauseMs: Math.round(snapshotter.p99Ms * 10) / 10,
      idleLoopMaxPauseMs: Math.round(idleMaxMs * 10) / 10,
      snapshotBytes,
      exportMs: Math.round(exported.ms),
      writeMs: Math.round(write.ms),
      writeCpuMs: Math.round(write.cpuMs),
      loadMs: Math.round(load.ms),
      loadCpuMs: Math.round(load.cpuMs),
      loadMinorFaults: load.minorFaults,
      fullReplayMs: Math.round(replay.ms),
      fullReplayCpuMs: Math.round(replay.cpuMs),
      fullReplayMinorFaults: replay.minorFaults,
      fullReplayRecordsPerSec: Math.round(replay.replayed / (replay.ms / 1_000)),
      fullReplayRecordsPerCpuSec: Math.round(replay.replayed / (replay.cpuMs / 1_000)),
      firstTouchUsPerFault: Math.round((await firstTouchUsPerFault()) * 100) / 100,
    };
  } finally {
    await log.close();
    await temp.remove();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const jobs = Number(process.argv[2] ?? 1_000_000);
  const result = await benchSnapshot(jobs);
  for (const [key, value] of Object.entries(result)) console.log(`${key.padEnd(26)} ${value}`);
}
