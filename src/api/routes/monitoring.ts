// Monitoring endpoints, seed 004 shapes:
//   GET /health       {ok, status: 'healthy'|'unhealthy', uptime (s), version, queues, connections, memory (MB)}   no auth
//   GET /healthz|live text/plain "OK"                                                             no auth
//   GET /ready        200 {ok: true, ready: true} | 503 {ok: false, ready: false}                  no auth
//   GET /stats        {ok, stats, memory, collections}
//   GET /metrics      {ok, metrics: {totalPushed, totalPulled, totalCompleted, totalFailed}}
//   GET /prometheus   text exposition; auth only when config.metricsAuth
// Probes are exempt from rate limiting and, alone of all routes, answer HEAD too (for uptime
// checkers that use it; every other GET route refuses HEAD with 405, see server.ts). `uptime` is
// the process uptime in whole seconds.

import type { FastifyInstance } from 'fastify';
import { connections } from '../connections.js';
import { collections, memoryMb, processRssMb } from '../memory.js';
import { type Histogram, type LogExtent, renderPrometheus, type ServerMetrics } from '../prometheus.js';
import { automaticErrors, okWith } from '../schemas.js';
import type { ScrubStatus } from '../../snapshot/scrub.js';
import type { SnapshotStatus } from '../../snapshot/snapshotter.js';
import type { WorkerCallStatus } from '../../workers/dispatcher.js';
import { version } from '../version.js';
import type { RouteDeps } from './types.js';

/** The schema of an object of numbers, none of them required. */
const numbers = (...names: string[]) => ({
  type: 'object',
  properties: Object.fromEntries(names.map((n) => [n, { type: 'number' }])),
});
const memorySchema = numbers('heapUsed', 'heapTotal', 'rss', 'external', 'arrayBuffers');
const collectionsSchema = numbers('jobIndex', 'completedJobs', 'processingTotal', 'queuedTotal', 'temporalIndexTotal');
const logSchema = {
  type: 'object',
  description: 'The log this server writes (absent for serve --until)',
  properties: {
    startOffset: { type: 'integer', description: 'Offset of the oldest record the log holds (retention removes older ones)' },
    endOffset: { type: 'integer', description: 'Offset after the last acknowledged record' },
    segments: { type: 'integer', description: 'Segment files, the active one included' },
    bytes: { type: 'integer', description: "Bytes of the segments up to their last record (not the active one's preallocated zeros)" },
  },
} as const;

const snapshotsSchema = {
  type: 'object',
  description: 'The snapshots this server wrote since it started (absent for serve --until)',
  properties: {
    coveredOffset: { type: 'integer', description: 'Offset covered by the newest snapshot: the records below it (0: none)' },
    runs: { type: 'integer', description: 'Snapshots written since the server started' },
    failedRuns: { type: 'integer', description: 'Snapshots that failed since the server started' },
    lastFinishedAt: { type: ['string', 'null'], description: 'ISO time the last one was written; null before the first' },
    lastMs: { type: ['integer', 'null'], description: 'How long the last one took (ms)' },
  },
} as const;

const scrubSchema = {
  type: 'object',
  description:
    'The scrub of the log segments (the active one up to the end synced when a run starts) and snapshots (SCRUB_INTERVAL_MS; absent when it is 0). ' +
    'The counts are of the last completed run; faults lists what it found damaged (file and problem), and stays until a run finds the files sound. ' +
    'Files are read through the page cache, so recently written ones (the active segment above all) are mostly checked as cached, not on the disk',
  properties: {
    intervalMs: { type: 'integer' },
    runs: { type: 'integer', description: 'Completed runs since the server started' },
    failedRuns: { type: 'integer', description: 'Runs that could not complete (lastError says why)' },
    running: { type: 'boolean' },
    lastFinishedAt: { type: ['string', 'null'], description: 'ISO time of the last completed run; null before the first' },
    lastMs: { type: ['integer', 'null'] },
    segments: { type: 'integer', description: 'Sealed segments read' },
    activeBytes: { type: 'integer', description: "Bytes of the active segment read: up to its synced end when the run started" },
    snapshots: { type: 'integer' },
    bytes: { type: 'integer' },
    faultCount: { type: 'integer' },
    faults: { type: 'array', items: { type: 'object', properties: { file: { type: 'string' }, problem: { type: 'string' } } } },
    lastError: { type: ['string', 'null'], description: 'Why the last run could not complete; null when it did' },
  },
};
const probe = { auth: 'exempt', rateLimitExempt: true } as const;
/** Route options of a probe: no auth, no rate limit, and HEAD answered as GET without its body. */
const probeRoute = { config: probe, exposeHeadRoute: true } as const;

function uptimeSeconds(): number {
  return Math.floor(process.uptime());
}

/** What the monitoring routes show besides the broker's numbers (main.ts provides them). */
export interface MonitoringSources {
  /** The snapshot process's pid while it runs, for GET /health's `memory.snapshotRss`. */
  snapshotPid?: () => number | null;
  /** The scrub's status; absent when SCRUB_INTERVAL_MS is 0 (and for a read-only server). */
  scrub?: () => ScrubStatus;
  /** The log the server writes (the real Log), and the latency of its syncs. */
  log?: { readonly firstOffset: number; readonly durableOffset: number; segments(): ReadonlyArray<{ bytes: number }> };
  logSync?: Histogram;
  /** What the snapshots have done since the start. */
  snapshots?: () => SnapshotStatus;
  /** The registered push workers' calls. */
  workers?: () => readonly WorkerCallStatus[];
}

/** The writing server's own metrics, read now. */
function serverMetrics(sources: MonitoringSources): ServerMetrics {
  const out: ServerMetrics = {};
  if (sources.log !== undefined) out.log = logExtent(sources.log);
  if (sources.logSync !== undefined) out.logSync = sources.logSync;
  if (sources.snapshots !== undefined) out.snapshots = sources.snapshots();
  if (sources.workers !== undefined) out.workers = sources.workers();
  if (sources.scrub !== undefined) out.scrub = sources.scrub();
  return out;
}

function logExtent(log: NonNullable<MonitoringSources['log']>): LogExtent {
  const segments = log.segments();
  return { startOffset: log.firstOffset, endOffset: log.durableOffset, segments: segments.length, bytes: segments.reduce((sum, s) => sum + s.bytes, 0) };
}

export function monitoringRoutes(app: FastifyInstance, { broker, config, latency }: RouteDeps, sources: MonitoringSources = {}): void {
  const tags = ['monitoring'];
  app.get(
    '/health',
    {
      ...probeRoute,
      schema: {
        operationId: 'getHealth',
        summary: 'Detailed health',
        tags,
        response: {
          200: okWith({
            status: { type: 'string', enum: ['healthy', 'unhealthy'], description: "'unhealthy' whenever /ready answers 503 (a storage fault, draining, acknowledgements held while the log waits for a file descriptor)" },
            uptime: { type: 'integer' },
            version: { type: 'string' },
            queues: numbers('waiting', 'active', 'delayed', 'completed', 'dlq'),
            connections: numbers('tcp', 'ws', 'sse'),
            memory: {
              ...numbers('heapUsed', 'heapTotal', 'rss', 'snapshotRss'),
              description: "The server process's memory in MB; snapshotRss (absent when there is none) is the snapshot process's resident set, which lives beside the server between snapshots too",
            },
            log: logSchema,
            snapshots: snapshotsSchema,
            scrub: scrubSchema,
          }),
        },
      },
    },
    async () => {
      const s = broker.stats();
      const { heapUsed, heapTotal, rss } = memoryMb();
      return {
        ok: true,
        // Not ready (a storage fault, draining for shutdown, acknowledgements held): /ready answers 503, and this
        // must not say otherwise.
        status: broker.ready ? 'healthy' : 'unhealthy',
        uptime: uptimeSeconds(),
        version,
        queues: { waiting: s.queued, active: s.processing, delayed: s.delayed, completed: s.completed, dlq: s.dlq },
        connections: { tcp: 0, ws: connections.ws, sse: connections.sse },
        memory: { heapUsed, heapTotal, rss, ...snapshotMemory(sources.snapshotPid?.() ?? null) },
        ...(sources.log === undefined ? {} : { log: logExtent(sources.log) }),
        ...(sources.snapshots === undefined ? {} : { snapshots: snapshotView(sources.snapshots()) }),
        ...(sources.scrub === undefined ? {} : { scrub: scrubView(sources.scrub()) }),
      };
    },
  );

  // One probe at two paths: two operations, so two operationIds.
  for (const [path, operationId] of [['/healthz', 'getHealthz'], ['/live', 'getLiveness']] as const) {
    app.get(path, { ...probeRoute, schema: { operationId, summary: 'Liveness probe (text OK)', tags, produces: ['text/plain'] } }, async (_request, reply) =>
      reply.type('text/plain').send('OK'),
    );
  }

  app.get(
    '/ready',
    {
      ...probeRoute,
      schema: {
        operationId: 'getReadiness',
        summary: 'Readiness probe',
        tags,
        response: {
          200: okWith({ ready: { type: 'boolean' } }),
          503: {
            description: `not ready: ${automaticErrors.unavailable}, or after a storage fault, or while acknowledgements are held`,
            type: 'object',
            required: ['ok', 'ready'],
            properties: { ok: { type: 'boolean', enum: [false] }, ready: { type: 'boolean', enum: [false] } },
          },
        },
      },
    },
    async (_request, reply) => {
      if (broker.ready) return { ok: true, ready: true };
      reply.code(503);
      return { ok: false, ready: false };
    },
  );

  app.get(
    '/stats',
    {
      schema: {
        operationId: 'getStats',
        summary: 'Server statistics',
        tags,
        response: {
          200: okWith({
            stats: numbers('queued', 'processing', 'delayed', 'dlq', 'completed', 'uptime', 'pushPerSec', 'pullPerSec', 'totalPushed', 'totalPulled', 'totalCompleted', 'totalFailed'),
            memory: memorySchema,
            collections: collectionsSchema,
          }),
        },
      },
    },
    async () => {
      const s = broker.stats();
      return {
        ok: true,
        stats: {
          queued: s.queued,
          processing: s.processing,
          delayed: s.delayed,
          dlq: s.dlq,
          completed: s.completed,
          uptime: uptimeSeconds(),
          pushPerSec: s.pushPerSec,
          pullPerSec: s.pullPerSec,
          totalPushed: s.totalPushed,
          totalPulled: s.totalPulled,
          totalCompleted: s.totalCompleted,
          totalFailed: s.totalFailed,
        },
        memory: memoryMb(),
        collections: collections(s),
      };
    },
  );

  app.get(
    '/metrics',
    { schema: { operationId: 'getMetrics', summary: 'Throughput counters (JSON)', tags, response: { 200: okWith({ metrics: numbers('totalPushed', 'totalPulled', 'totalCompleted', 'totalFailed') }) } } },
    async () => {
      const { totalPushed, totalPulled, totalCompleted, totalFailed } = broker.stats();
      return { ok: true, metrics: { totalPushed, totalPulled, totalCompleted, totalFailed } };
    },
  );

  app.get(
    '/prometheus',
    { config: { auth: 'metrics' }, schema: { operationId: 'getPrometheusMetrics', summary: 'Prometheus text format', tags, produces: ['text/plain'] } },
    async (_request, reply) =>
      reply
        .type('text/plain; version=0.0.4; charset=utf-8')
        .send(renderPrometheus(config.metricsPrefix, broker, latency, serverMetrics(sources))),
  );
}

/** `snapshotRss` while a snapshot process runs and its memory can be read; nothing otherwise. */
function snapshotMemory(pid: number | null): { snapshotRss?: number } {
  const rss = pid === null ? null : processRssMb(pid);
  return rss === null ? {} : { snapshotRss: rss };
}

/** GET /health's `snapshots`: the status with its time as ISO text. */
function snapshotView(s: SnapshotStatus): Record<string, unknown> {
  return { ...s, lastFinishedAt: s.lastFinishedAt === null ? null : new Date(s.lastFinishedAt).toISOString() };
}

/** GET /health's `scrub`: the status with the last run's numbers inline. */
function scrubView(status: ScrubStatus): Record<string, unknown> {
  const last = status.last;
  return {
    intervalMs: status.intervalMs,
    runs: status.runs,
    failedRuns: status.failedRuns,
    running: status.running,
    lastFinishedAt: status.lastFinishedAt === null ? null : new Date(status.lastFinishedAt).toISOString(),
    lastMs: last?.ms ?? null,
    segments: last?.segments ?? 0,
    activeBytes: last?.activeBytes ?? 0,
    snapshots: last?.snapshots ?? 0,
    bytes: last?.bytes ?? 0,
    faultCount: last?.faultCount ?? 0,
    faults: last?.faults ?? [],
    lastError: status.lastError,
  };
}
