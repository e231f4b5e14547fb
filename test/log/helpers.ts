// Shared helpers of the log tests: temp dirs, quiet loggers, draft batches, file hashing.

import fsp, { mkdtemp, readdir, rm } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Log, type LogOptions } from '../../src/log/log.js';
import type { RecordDraft } from '../../src/record/types.js';
import { smallPushDraft } from '../fixtures/records.js';

export interface TestContext {
  teardown(fn: () => unknown): void;
}

export async function tempDir(t: TestContext, name = 'log'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `tapeq-${name}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export function drafts(from: number, count: number): RecordDraft[] {
  return Array.from({ length: count }, (_, i) => smallPushDraft(from + i));
}

/** Opens a log that collects its recovery messages in `lines`. */
export async function openLog(opts: LogOptions): Promise<{ log: Log; lines: string[] }> {
  const lines: string[] = [];
  const log = await Log.open({ logger: (l) => lines.push(l), ...opts });
  return { log, lines };
}

export async function writeLog(dir: string, count: number, opts: Partial<LogOptions> = {}): Promise<void> {
  const { log } = await openLog({ dir, ...opts });
  for (let i = 0; i < count; i += 500) await log.append(drafts(i, Math.min(500, count - i))).durable;
  await log.close();
}

export async function readAll(log: Log, from = log.firstOffset, to?: number): Promise<number[]> {
  const offsets: number[] = [];
  for await (const batch of log.readBatches(from, to)) for (const r of batch) offsets.push(r.offset);
  return offsets;
}

export async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.endsWith('.log')).sort();
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

export { hashTree } from '../fixtures/hash-tree.js';

/** Replaces one function of node:fs/promises for the rest of the test, for the modules that
 *  imported it by name too (syncBuiltinESMExports): how a test puts a live writer's move (a roll,
 *  a trim) between a reader's steps. `real` is the original. */
export function patchFsPromises<K extends 'stat' | 'open' | 'readdir' | 'rm'>(
  t: TestContext,
  name: K,
  make: (real: (typeof fsp)[K]) => (typeof fsp)[K],
): void {
  const real = fsp[name];
  (fsp as Record<K, unknown>)[name] = make(real);
  syncBuiltinESMExports();
  t.teardown(() => {
    (fsp as Record<K, unknown>)[name] = real;
    syncBuiltinESMExports();
  });
}
