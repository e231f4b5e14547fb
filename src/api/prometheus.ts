// Prometheus text exposition (format 0.0.4) for GET /prometheus, with seed 004's metric names
// under config.metricsPrefix (default "bunqueue", drop-in for existing dashboards):
//   <p>_jobs_{pushed,pulled,completed,failed}_total   counters from the broker's statistics
//   <p>_queue_jobs_{waiting,active,delayed,dlq}{queue} gauges per queue (seed 004), and
//   <p>_queue_jobs_{paused,waiting_children}{queue}    the queue's other unfinished jobs
//   <p>_{push,pull,ack}_duration_ms                   histograms measured by the HTTP routes
//   <p>_log_{start_offset,end_offset,segments,size_bytes}, <p>_log_sync_duration_ms
//   <p>_snapshot_{last_offset,runs_total,failed_runs_total,last_completed_timestamp_seconds}
//   <p>_worker_calls_total{queue,outcome}, <p>_worker_calls_in_flight{queue}   push workers
//   <p>_scrub_*                                       (the writing server only: not serve --until)
// The histograms are per server instance and cover HTTP calls only (WebSocket commands are not
// timed here). Pull latency includes the long-poll wait.
// The per-queue gauges are GET /queues/:q/counts: a paused queue's waiting jobs are `paused`, not
// `waiting`, so without that gauge they showed nowhere, while /health counts them as waiting.

import type { BrokerApi } from '../broker/types.js';
import type { ScrubStatus } from '../snapshot/scrub.js';
import type { SnapshotStatus } from '../snapshot/snapshotter.js';
import type { WorkerCallStatus } from '../workers/dispatcher.js';

/** The log's extent as /health and /prometheus show it. */
export interface LogExtent {
  /** Offset of the oldest record the log still holds (retention removes older ones). */
  startOffset: number;
  /** Offset after the last acknowledged record. */
  endOffset: number;
  segments: number;
  /** Bytes of the segment files up to their last record (not the active one's preallocated zeros). */
  bytes: number;
}

/** What the writing server adds to the broker's metrics; a `serve --until` server has none. */
export interface ServerMetrics {
  workers?: readonly WorkerCallStatus[];
  log?: LogExtent;
  logSync?: Histogram;
  snapshots?: SnapshotStatus;
  scrub?: ScrubStatus;
}

export const histogramBucketsMs = [0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 1000] as const;

export class Histogram {
  /** Non-cumulative count per bucket; the last slot is +Inf. */
  private readonly bucketCounts = new Array<number>(histogramBucketsMs.length + 1).fill(0);
  private sumMs = 0;
  private count = 0;

  observe(ms: number): void {
    let i = histogramBucketsMs.findIndex((le) => ms <= le);
    if (i < 0) i = histogramBucketsMs.length;
    this.bucketCounts[i] = (this.bucketCounts[i] ?? 0) + 1;
    this.sumMs += ms;
    this.count += 1;
  }

  render(name: string, help: string): string[] {
    const lines = [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`];
    let cumulative = 0;
    histogramBucketsMs.forEach((le, i) => {
      cumulative += this.bucketCounts[i] ?? 0;
      lines.push(`${name}_bucket{le="${le}"} ${cumulative}`);
    });
    cumulative += this.bucketCounts[histogramBucketsMs.length] ?? 0;
    lines.push(`${name}_bucket{le="+Inf"} ${cumulative}`);
    lines.push(`${name}_sum ${formatNumber(this.sumMs)}`);
    lines.push(`${name}_count ${this.count}`);
    return lines;
  }
}

export interface LatencyMetrics {
  push: Histogram;
  pull: Histogram;
  ack: Histogram;
}

export function createLatencyMetrics(): LatencyMetrics {
  return { push: new Histogram(), pull: new Histogram(), ack: new Histogram() };
}

/** Runs `call` and records its duration in `histogram`, whether it resolves, rejects or throws.
 *  One continuation on the call's promise, not an async function's two. */
export function timed<T>(histogram: Histogram, call: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const observe = (): void => histogram.observe(performance.now() - started);
  let pending: Promise<T>;
  try {
    pending = call();
  } catch (error) {
    observe();
    return Promise.reject(error);
  }
  return pending.then(
    (value) => {
      observe();
      return value;
    },
    (error: unknown) => {
      observe();
      throw error;
    },
  );
}

/** Escapes a label value: backslash, double quote and newline (exposition format rules). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3);
}

export function renderPrometheus(prefix: string, broker: BrokerApi, latency: LatencyMetrics, server: ServerMetrics = {}): string {
  const stats = broker.stats();
  const lines: string[] = [];
  const counter = (name: string, help: string, value: number): void => {
    lines.push(...metric(prefix, name, 'counter', help, value));
  };
  counter('jobs_pushed_total', 'Total jobs pushed', stats.totalPushed);
  counter('jobs_pulled_total', 'Total jobs pulled', stats.totalPulled);
  counter('jobs_completed_total', 'Total jobs completed', stats.totalCompleted);
  counter('jobs_failed_total', 'Total jobs failed', stats.totalFailed);

  const queues = broker.listQueues();
  const gauges: Array<[string, string, (c: (typeof queues)[number]['counts']) => number]> = [
    ['waiting', 'Jobs waiting per queue', (c) => c.waiting],
    ['active', 'Jobs active per queue', (c) => c.active],
    ['delayed', 'Jobs delayed per queue', (c) => c.delayed],
    ['dlq', 'Jobs in the dead-letter queue per queue', (c) => c.failed],
    ['paused', 'Waiting jobs of a paused queue per queue', (c) => c.paused],
    ['waiting_children', 'Jobs waiting for the jobs they depend on per queue', (c) => c['waiting-children']],
  ];
  for (const [state, help, pick] of gauges) {
    const name = `${prefix}_queue_jobs_${state}`;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const q of queues) lines.push(`${name}{queue="${escapeLabel(q.name)}"} ${pick(q.counts)}`);
  }

  lines.push(...latency.push.render(`${prefix}_push_duration_ms`, 'Push operation latency in ms'));
  lines.push(...latency.pull.render(`${prefix}_pull_duration_ms`, 'Pull operation latency in ms (includes long-poll wait)'));
  lines.push(...latency.ack.render(`${prefix}_ack_duration_ms`, 'Ack operation latency in ms'));
  if (server.workers !== undefined) lines.push(...workerLines(prefix, server.workers));
  if (server.log !== undefined) lines.push(...logLines(prefix, server.log));
  if (server.logSync !== undefined) {
    lines.push(...server.logSync.render(`${prefix}_log_sync_duration_ms`, 'Group-commit fdatasync latency in ms, from the call to the event loop seeing it done'));
  }
  if (server.snapshots !== undefined) lines.push(...snapshotLines(prefix, server.snapshots));
  if (server.scrub !== undefined) lines.push(...scrubLines(prefix, server.scrub));
  return `${lines.join('\n')}\n`;
}

function workerLines(prefix: string, workers: readonly WorkerCallStatus[]): string[] {
  const calls = `${prefix}_worker_calls_total`;
  const inFlight = `${prefix}_worker_calls_in_flight`;
  const lines = [
    `# HELP ${calls} Push-worker calls ended, by what the endpoint made of them (success: a 2xx the job completed with; failure: any other answer; unanswered: timeout or connection error)`,
    `# TYPE ${calls} counter`,
  ];
  for (const w of workers) {
    for (const [outcome, n] of Object.entries(w.calls)) lines.push(`${calls}{queue="${escapeLabel(w.queue)}",outcome="${outcome}"} ${n}`);
  }
  lines.push(`# HELP ${inFlight} Push-worker calls running`, `# TYPE ${inFlight} gauge`);
  for (const w of workers) lines.push(`${inFlight}{queue="${escapeLabel(w.queue)}"} ${w.inFlight}`);
  return lines;
}

function logLines(prefix: string, log: LogExtent): string[] {
  return [
    ...metric(prefix, 'log_start_offset', 'gauge', 'Offset of the oldest record the log holds (retention removes older ones)', log.startOffset),
    ...metric(prefix, 'log_end_offset', 'gauge', 'Offset after the last acknowledged record', log.endOffset),
    ...metric(prefix, 'log_segments', 'gauge', 'Segment files of the log, the active one included', log.segments),
    ...metric(prefix, 'log_size_bytes', 'gauge', "Bytes of the log's segments up to their last record", log.bytes),
  ];
}

/** The snapshots' metrics (src/snapshot/snapshotter.ts); the last one's time once there is one. */
function snapshotLines(prefix: string, s: SnapshotStatus): string[] {
  const lines = [
    ...metric(prefix, 'snapshot_last_offset', 'gauge', 'Offset covered by the newest snapshot: the records below it (0: none)', s.coveredOffset),
    ...metric(prefix, 'snapshot_runs_total', 'counter', 'Snapshots written since the server started', s.runs),
    ...metric(prefix, 'snapshot_failed_runs_total', 'counter', 'Snapshots that failed since the server started', s.failedRuns),
  ];
  if (s.lastFinishedAt === null) return lines;
  return [...lines, ...metric(prefix, 'snapshot_last_completed_timestamp_seconds', 'gauge', 'When the last snapshot was written (Unix time)', s.lastFinishedAt / 1000)];
}

/** The scrub's metrics (src/snapshot/scrub.ts); the last run's only once there is one. */
function scrubLines(prefix: string, scrub: ScrubStatus): string[] {
  const lines = [
    ...metric(prefix, 'scrub_runs_total', 'counter', 'Completed scrubs of the log segments and snapshots', scrub.runs),
    ...metric(prefix, 'scrub_failed_runs_total', 'counter', 'Scrubs that could not complete (their findings are not counted)', scrub.failedRuns),
  ];
  const last = scrub.last;
  if (last === null || scrub.lastFinishedAt === null) return lines;
  return [
    ...lines,
    ...metric(prefix, 'scrub_faults', 'gauge', 'Damaged files the last completed scrub found (0: every file it read is sound)', last.faultCount),
    ...metric(prefix, 'scrub_bytes', 'gauge', 'Bytes the last completed scrub read and checked', last.bytes),
    ...metric(prefix, 'scrub_last_completed_timestamp_seconds', 'gauge', 'When the last scrub completed (Unix time)', scrub.lastFinishedAt / 1000),
  ];
}

/** One unlabelled metric: its HELP, TYPE and sample lines. */
function metric(prefix: string, name: string, type: 'counter' | 'gauge', help: string, value: number): string[] {
  return [`# HELP ${prefix}_${name} ${help}`, `# TYPE ${prefix}_${name} ${type}`, `${prefix}_${name} ${formatNumber(value)}`];
}
