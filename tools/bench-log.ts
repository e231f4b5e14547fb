// Log benchmark: append throughput (sync=always and interval, batched and 64 concurrent single
// appenders), sequential read+decode, open (the startup verification of every segment), and
// beside them the raw fs ceiling measured in the same run on the same disk (same bytes, same
// write sizes, one fdatasync per write; sequential read). A discarded warm-up pass (append and
// read of warmupRecords) runs first, so the first measured row does not pay for JIT compilation.
// Run: node build/tools/bench-log.js [--records N]

import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Log, type SyncPolicy } from '../src/log/log.js';
import type { RecordDraft } from '../src/record/types.js';
import { smallPushDraft } from '../test/fixtures/records.js';
import { tempDir } from './bench-proc.js';

export interface BenchLogOptions {
  records?: number;
  batchRecords?: number;
  /** Batches in flight at once in the batched append runs. */
  batchesInFlight?: number;
  concurrentAppenders?: number;
  dir?: string;
}

export interface BenchRow {
  name: string;
  records: number;
  seconds: number;
  /** CPU seconds of this process (user + system) during the run: the machine may be shared. */
  cpuSeconds: number;
  recordsPerSec: number;
  mbPerSec: number;
}

export interface BenchLogResult {
  recordBytes: number;
  rows: BenchRow[];
}

export async function benchLog(opts: BenchLogOptions = {}): Promise<BenchLogResult> {
  const records = opts.records ?? 300_000;
  const batchRecords = opts.batchRecords ?? 1_000;
  const inFlight = opts.batchesInFlight ?? 4;
  const appenders = opts.concurrentAppenders ?? 64;
  const temp = opts.dir === undefined ? await tempDir('tapeq-bench-') : null;
  const base = opts.dir ?? temp?.dir ?? '';
  const drafts: RecordDraft[] = Array.from({ length: records }, (_, i) => smallPushDraft(i));
  const rows: BenchRow[] = [];
  let logBytes = 0;
  try {
    await warmUp(join(base, 'warm-up'), drafts.slice(0, warmupRecords), batchRecords, inFlight);
    for (const sync of ['always', 'interval'] as const) {
      const dir = join(base, `batched-${sync}`);
      const { timing, bytes } = await appendBatched(dir, sync, drafts, batchRecords, inFlight);
      rows.push(row(`append ${sync}, batches of ${batchRecords} (${inFlight} in flight)`, records, timing, bytes));
      logBytes = bytes;
      const single = Math.min(records, 50_000);
      const s2 = await appendConcurrent(join(base, `single-${sync}`), sync, drafts.slice(0, single), appenders);
      rows.push(row(`append ${sync}, ${appenders} concurrent single-record appenders`, single, s2.timing, s2.bytes));
    }
    await readAll(join(base, 'batched-always'), records);
    const read = await readAll(join(base, 'batched-always'), records);
    rows.push(row('read + decode (sequential, from disk; 2nd pass)', records, read, logBytes));
    rows.push(row('open: verify every frame of every segment (read-only)', records, await openTimed(join(base, 'batched-always'), records), logBytes));
    const raw = await rawFs(join(base, 'raw.bin'), logBytes, Math.ceil(records / batchRecords));
    rows.push(row('raw fs: write + fdatasync per batch-sized write', records, raw.write, logBytes));
    rows.push(row('raw fs: sequential read (1 MiB reads)', records, raw.read, logBytes));
  } finally {
    await temp?.remove();
  }
  return { recordBytes: Math.round(logBytes / records), rows };
}

/** Records appended and read back, unmeasured, before the first measured row. */
const warmupRecords = 30_000;

async function warmUp(dir: string, drafts: RecordDraft[], batch: number, inFlight: number): Promise<void> {
  for (const sync of ['always', 'interval'] as const) await appendBatched(join(dir, sync), sync, drafts, batch, inFlight);
  await readAll(join(dir, 'always'), drafts.length);
}

async function openTimed(dir: string, expected: number): Promise<Timing> {
  const stop = startTimer();
  const log = await Log.open({ dir, readOnly: true, logger: () => {} });
  const timing = stop();
  const records = log.openReport.records;
  await log.close();
  if (records !== expected) throw new Error(`open found ${records} records, expected ${expected}`);
  return timing;
}

function row(name: string, records: number, timing: Timing, bytes: number): BenchRow {
  const { seconds, cpuSeconds } = timing;
  return { name, records, seconds, cpuSeconds, recordsPerSec: records / seconds, mbPerSec: bytes / seconds / 1e6 };
}

export interface Timing {
  seconds: number;
  cpuSeconds: number;
}

function startTimer(): () => Timing {
  const wall = performance.now();
  const cpu = process.cpuUsage();
  return () => {
    const used = process.cpuUsage(cpu);
    return { seconds: (performance.now() - wall) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  };
}

async function appendBatched(dir: string, sync: SyncPolicy, drafts: RecordDraft[], batch: number, inFlight: number) {
  const log = await Log.open({ dir, sync, logger: () => {} });
  const stop = startTimer();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < drafts.length) {
      const from = next;
      next += batch;
      await log.append(drafts.slice(from, from + batch)).durable;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  const timing = stop();
  const bytes = log.segments().reduce((n, s) => n + s.bytes, 0);
  await log.close();
  return { timing, bytes };
}

async function appendConcurrent(dir: string, sync: SyncPolicy, drafts: RecordDraft[], appenders: number) {
  const log = await Log.open({ dir, sync, logger: () => {} });
  const stop = startTimer();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < drafts.length) {
      const draft = drafts[next++] as RecordDraft;
      await log.append([draft]).durable;
    }
  };
  await Promise.all(Array.from({ length: appenders }, worker));
  const timing = stop();
  const bytes = log.segments().reduce((n, s) => n + s.bytes, 0);
  await log.close();
  return { timing, bytes };
}

async function readAll(dir: string, expected: number): Promise<Timing> {
  const log = await Log.open({ dir, readOnly: true, logger: () => {} });
  const stop = startTimer();
  let count = 0;
  for await (const batch of log.readBatches(0)) count += batch.length;
  const timing = stop();
  await log.close();
  if (count !== expected) throw new Error(`read ${count} records, expected ${expected}`);
  return timing;
}

export async function rawFs(path: string, bytes: number, writes: number): Promise<{ write: Timing; read: Timing }> {
  const chunk = Buffer.alloc(Math.ceil(bytes / writes), 0x61);
  const fh = await open(path, 'w+');
  let stop = startTimer();
  for (let pos = 0; pos < bytes; pos += chunk.length) {
    await fh.write(chunk, 0, Math.min(chunk.length, bytes - pos), pos);
    await fh.datasync();
  }
  const write = stop();
  const buf = Buffer.allocUnsafe(1024 * 1024);
  stop = startTimer();
  for (let pos = 0; pos < bytes; pos += buf.length) await fh.read(buf, 0, buf.length, pos);
  const read = stop();
  await fh.close();
  return { write, read };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatBench(result: BenchLogResult): string {
  const lines = [
    `records ≈ ${result.recordBytes} bytes each on disk (frame included)`,
    '',
    '| run | records | seconds | records/s | MB/s | CPU s | records per CPU-s |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...result.rows.map(
      (r) =>
        `| ${r.name} | ${r.records} | ${r.seconds.toFixed(3)} | ${fmt(r.recordsPerSec)} | ${r.mbPerSec.toFixed(1)} | ` +
        `${r.cpuSeconds.toFixed(3)} | ${fmt(r.records / r.cpuSeconds)} |`,
    ),
  ];
  return lines.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--records');
  const records = i > 0 ? Number(process.argv[i + 1]) : undefined;
  benchLog(records === undefined ? {} : { records }).then(
    (result) => console.log(formatBench(result)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
