// HTTP scenarios: push (LOG_SYNC=always), push (interval, and interval + durable), bulk push, and
// the full push → pull → ack cycle; each beside its same-run reference (bare fastify, or the
// in-memory fastify queue for the cycle) and, with `--vs bunqueue`, beside bunqueue on SQLite and
// in memory. Every server is its own process; the load comes from a forked autocannon.

import { bunqueueTarget, tapeqTarget, type BenchRun } from './bench-measure.js';
import { refTarget } from './bench-measure.js';
import { versus, withRatio, type Row, type ScenarioReport } from './bench-report.js';
import type { LoadSpec } from './bench-loadgen.js';

const pushTarget = 0.75;
const vsDiskTarget = 4;
const vsMemoryTarget = 1;

interface Competitor {
  subject: string;
  mode: 'sqlite' | 'memory';
  durable: boolean;
  targetMin?: number;
}

/** bunqueue rows for one workload (with the targets given), or a note saying why there are none. */
async function competitors(run: BenchRun, report: ScenarioReport, tapeq: Row, measure: string, spec: LoadSpec, unit: string, list: Competitor[]): Promise<void> {
  if (!run.opts.vs.includes('bunqueue')) return;
  const bq = await run.bunqueue();
  if (bq instanceof Error) {
    report.notes.push(`bunqueue could not be installed or started here, so there are no bunqueue numbers: ${bq.message.split('\n')[0] ?? ''}`);
    return;
  }
  for (const c of list) {
    try {
      const row = await run.measure(bunqueueTarget(bq, c.mode, c.subject), measure, { ...spec, durable: c.durable }, unit);
      report.rows.push(versus(row, tapeq, c.targetMin));
    } catch (err) {
      report.notes.push(`${c.subject}: did not run: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  if (!report.notes.some((n) => n.startsWith('bunqueue version'))) {
    report.notes.push(
      `bunqueue version: ${bq.versions}. Its SQLite store runs WAL with synchronous=NORMAL and buffers pushes unless a job has "durable": true, ` +
        'so "SQLite, durable" is the closest it offers to tapeq\'s default (every acknowledged job covered by an fdatasync).',
    );
  }
}

export async function benchHttpPush(run: BenchRun): Promise<ScenarioReport> {
  const conns = run.opts.connections;
  const measure = `push, 1 job/request, ${conns} connections`;
  const bare = await run.bareFastifyPush();
  const disk = await run.disk();
  const tapeq = await run.measure(tapeqTarget({ LOG_SYNC: 'always' }), `${measure}, LOG_SYNC=always`, run.spec('push'), 'jobs/s');
  const report: ScenarioReport = {
    rows: [bare, ...disk, withRatio(tapeq, bare, pushTarget)],
    notes: ['tapeq acknowledges each push after the group-commit fdatasync that covers it (every acknowledged job is on disk).'],
  };
  await competitors(run, report, tapeq, measure, run.spec('push'), 'jobs/s', [
    { subject: 'bunqueue (SQLite, durable)', mode: 'sqlite', durable: true, targetMin: vsDiskTarget },
    { subject: 'bunqueue (SQLite, buffered)', mode: 'sqlite', durable: false },
    { subject: 'bunqueue (memory)', mode: 'memory', durable: false, targetMin: vsMemoryTarget },
  ]);
  return report;
}

export async function benchHttpPushInterval(run: BenchRun): Promise<ScenarioReport> {
  const measure = `push, 1 job/request, ${run.opts.connections} connections, LOG_SYNC=interval`;
  const bare = await run.bareFastifyPush();
  const env = { LOG_SYNC: 'interval' };
  const plain = await run.measure(tapeqTarget(env), measure, run.spec('push'), 'jobs/s');
  const durable = await run.measure(tapeqTarget(env), `${measure}, "durable": true`, run.spec('push', { durable: true }), 'jobs/s');
  return {
    rows: [bare, withRatio(plain, bare), withRatio(durable, bare)],
    notes: ['interval: acknowledged once written to the OS, fdatasync every LOG_SYNC_INTERVAL_MS; "durable": true waits for that sync.'],
  };
}

export async function benchHttpBulk(run: BenchRun): Promise<ScenarioReport> {
  const spec = run.spec('bulk', { connections: 20, bulkSize: 100 });
  const measure = `bulk push, 100 jobs/request, ${spec.connections} connections`;
  const bare = await run.measure(refTarget('fastify'), measure, spec, 'jobs/s');
  const tapeq = await run.measure(tapeqTarget({ LOG_SYNC: 'always' }), `${measure}, LOG_SYNC=always`, spec, 'jobs/s');
  const report: ScenarioReport = { rows: [bare, withRatio(tapeq, bare)], notes: ['jobs/s = 2xx responses × 100; latency is per request.'] };
  await competitors(run, report, tapeq, measure, spec, 'jobs/s', [
    { subject: 'bunqueue (SQLite, durable)', mode: 'sqlite', durable: true },
    { subject: 'bunqueue (SQLite, buffered)', mode: 'sqlite', durable: false },
    { subject: 'bunqueue (memory)', mode: 'memory', durable: false },
  ]);
  return report;
}

export async function benchHttpCycle(run: BenchRun): Promise<ScenarioReport> {
  const spec = run.spec('cycle', { connections: 20 });
  const measure = `push → pull → ack, ${spec.connections} consumers`;
  const ref = await run.measure(refTarget('memory-queue'), measure, spec, 'cycles/s');
  const tapeq = await run.measure(tapeqTarget({ LOG_SYNC: 'always' }), `${measure}, LOG_SYNC=always`, spec, 'cycles/s');
  const report: ScenarioReport = {
    rows: [ref, withRatio(tapeq, ref)],
    notes: ['Each of the consumers pushes a job, pulls one and acks it with its lock token; a cycle is three requests.'],
  };
  await competitors(run, report, tapeq, measure, spec, 'cycles/s', [
    { subject: 'bunqueue (SQLite, durable)', mode: 'sqlite', durable: true, targetMin: vsDiskTarget },
    { subject: 'bunqueue (SQLite, buffered)', mode: 'sqlite', durable: false },
    { subject: 'bunqueue (memory)', mode: 'memory', durable: false, targetMin: vsMemoryTarget },
  ]);
  return report;
}
