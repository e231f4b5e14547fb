// Shared by the snapshotter tests: a log of small records, the snapshot processes of a parent
// (Linux /proc), and polling helpers.

import type { Test } from 'tap';
import { readFile, readdir, rm, mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Log } from '../../src/log/log.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { procStatFields } from '../fixtures/process.js';
import { smallPushDraft } from '../fixtures/records.js';

export async function logWith(t: Test, records: number, segmentBytes?: number) {
  const root = await mkdtemp(join(tmpdir(), 'tapeq-snapshotter-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const log = await Log.open({
    dir: join(root, 'log'),
    sync: 'interval',
    syncIntervalMs: 2,
    logger: () => undefined,
    ...(segmentBytes === undefined ? {} : { segmentBytes }),
  });
  t.teardown(() => log.close());
  await append(log, 0, records);
  return { log, snapshots: join(root, 'snapshots') };
}

export async function append(log: Log, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 1_000) {
    const drafts = [];
    for (let j = i; j < Math.min(i + 1_000, from + count); j++) drafts.push(smallPushDraft(j));
    await log.append(drafts).durable;
  }
}

/** Polls `probe` every millisecond until it yields a value (at most 10 s). */
export async function untilQuick<T>(probe: () => T | undefined): Promise<T> {
  for (const started = performance.now(); performance.now() - started < 10_000; ) {
    let value: T | undefined;
    try {
      value = probe();
    } catch {
      value = undefined;
    }
    if (value !== undefined) return value;
    await sleep(1);
  }
  throw new Error('condition not reached within 10 s');
}

/** A started Snapshotter over a log of `records` records, once its snapshot process is up. */
export async function startedSnapshotter(t: Test, records: number, logger: (line: string) => void = () => undefined) {
  const { log, snapshots } = await logWith(t, records);
  const snapshotter = new Snapshotter({ dir: snapshots, log, everyRecords: 1e9, intervalMs: 1e9, logger });
  t.teardown(() => snapshotter.close());
  snapshotter.start();
  const pid = await until(async () => (await snapshotProcesses(process.pid))[0]);
  return { log, snapshots, snapshotter, pid };
}

/** Pids of the snapshot processes whose parent is `parent` (Linux /proc). */
export async function snapshotProcesses(parent: number): Promise<number[]> {
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = Number(procStatFields(await readFile(`/proc/${name}/stat`, 'utf8'))[1]);
      if (ppid === parent && (await readFile(`/proc/${name}/cmdline`, 'utf8')).includes('snapshot-process.js')) {
        pids.push(Number(name));
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

/** Running or sleeping, not gone and not a zombie waiting to be reaped. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return procStatFields(readFileSync(`/proc/${pid}/stat`, 'utf8'))[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Polls `probe` every 50 ms until it yields a value (at most 10 s). */
export async function until<T>(probe: () => Promise<T | undefined>, pauseMs = 50): Promise<T> {
  for (const started = performance.now(); performance.now() - started < 10_000; ) {
    const value = await probe();
    if (value !== undefined) return value;
    await sleep(pauseMs);
  }
  throw new Error('condition not reached within 10 s');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
