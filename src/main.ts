// Composition root, and nothing else: open the log (its sealed segments verified in a worker
// while the newest snapshot is decoded) → replay the tail → start the broker, the push-worker
// dispatcher, snapshots, retention and the scrub → serve. A startup probe holds the port from
// the first moment, before anything is made on disk, and answers /ready with 503 until the real
// server takes over that same port (the probe's, so that HTTP_PORT=0 names one port throughout).
// A start that fails undoes what it made: the log is closed, the lock released, and a DATA_DIR
// this start created is removed again while it is still empty (data-dir-create.ts).
// Shutdown (SIGTERM/SIGINT): /ready goes 503 and pulls get no job, push workers finish their
// calls, then the server stops taking requests and lets in-flight ones finish, the broker stops
// its timers, the log syncs and closes; a second signal exits at once.
// The writing server holds DATA_DIR's lock (data-dir-lock.ts) from before it opens the log until
// the log is closed, so that a second one on the same directory refuses to start.
// `serve --until <point>` is the point-in-time variant: the log opened read-only, the state as of
// that point, a read-only broker (writes answer 409 READ_ONLY), and no timers, snapshots,
// retention, push workers or real-time streams (they would show records past the point).

import type { FastifyInstance } from 'fastify';
import { limitConnections } from './api/connection-limit.js';
import { buildServer } from './api/server.js';
import { Histogram } from './api/prometheus.js';
import { realtimePlugin } from './api/realtime/index.js';
import { Broker } from './broker/broker.js';
import { createDataDir } from './data-dir-create.js';
import { lockDataDir, type DataDirLock } from './data-dir-lock.js';
import { governHeapGrowth } from './heap-growth.js';
import type { Config } from './config.js';
import { checkConstants, shutdownGraceMs } from './constants.js';
import { Log } from './log/log.js';
import { loadState, rebuildRefusal, type LoadedState } from './snapshot/recover-state.js';
import { JobHistory } from './history/history.js';
import { describePoint, untilOffset, type Point } from './history/point.js';
import { checkTimeReachable, dataPathsOf } from './history/state-at.js';
import { compact } from './snapshot/retention.js';
import { Scrubber } from './snapshot/scrub.js';
import { listSnapshots } from './snapshot/store.js';
import { Snapshotter } from './snapshot/snapshotter.js';
import { listenStartupProbe } from './startup-probe.js';
import { WorkerDispatcher } from './workers/dispatcher.js';

export interface ServeOptions {
  /** Quarantine a corrupt sealed segment instead of refusing to start. */
  repair?: boolean;
  /** Serve the state as of this point, read-only (`serve --until`). */
  until?: Point;
  logger?: (line: string) => void;
  /** Aborting it stops a start where it is: a wait on a foreign lock ends at once, a start past
   *  it stops once its state is loaded, and what the start made is undone as for any failed start
   *  (serve() rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface Running {
  app: FastifyInstance;
  broker: Broker;
  log: Log;
  /** The port actually bound (HTTP_PORT=0 picks a free one). */
  port: number;
  close(): Promise<void>;
}

export async function serve(config: Config, options: ServeOptions = {}): Promise<Running> {
  checkConstants();
  const logger = options.logger ?? ((line: string) => console.error(line));
  if (options.until !== undefined) return servePointInTime(config, options.until, logger);
  return withStartupProbe(config, (onFailure) => serveWriting(config, options, logger, onFailure), logger);
}

/** Registers how to undo a startup step, should a later one fail. */
type OnFailure = (undo: () => Promise<void>) => void;

/** The writing server, on the state its data directory holds. */
async function serveWriting(
  config: Config,
  options: ServeOptions,
  logger: (line: string) => void,
  onFailure: OnFailure,
): Promise<Assembled> {
  const { snapshotsDir } = dataPathsOf(config.dataDir);
  const logSync = new Histogram();
  const { lock, log, loaded } = await openDataDir(config, options, logger, onFailure, (ms) => logSync.observe(ms));
  const broker = new Broker({ log, state: loaded.state, lockMsDefault: config.lockMs, logger });
  const snapshotter = new Snapshotter({
    dir: snapshotsDir,
    log,
    everyRecords: config.snapshotEveryRecords,
    intervalMs: config.snapshotIntervalMs,
    spread: { windowMs: config.historyRetentionMs, points: config.snapshotRecoveryPoints },
    logger,
  });
  const history = new JobHistory({ log, writeFiles: true, logger });
  const dispatcher = new WorkerDispatcher({ broker, logger });
  const scrubber = new Scrubber({ log, snapshotsDir, intervalMs: config.scrubIntervalMs, logger });
  const app = await buildServer({
    broker,
    config,
    history,
    realtime: realtimePlugin({ broker, log, config }),
    monitoring: {
      log,
      logSync,
      snapshots: () => snapshotter.status(),
      workers: () => dispatcher.status(),
      snapshotPid: () => snapshotter.processPid,
      ...(config.scrubIntervalMs > 0 ? { scrub: () => scrubber.status() } : {}),
    },
  });
  return {
    app,
    broker,
    log,
    start() {
      broker.start();
      dispatcher.start();
      snapshotter.start();
      history.start();
      scrubber.start();
      const stopCompaction = scheduleCompaction(log, snapshotsDir, config, logger);
      return async () => {
        try {
          await stopCompaction();
          await scrubber.close();
          // First: a snapshot process must not be forked again while the rest drains.
          await snapshotter.close();
          // /ready answers 503 and pulls get no job from here; the listener stays open (so
          // /ready is seen, not refused) while push workers finish their calls.
          broker.beginShutdown();
          await dispatcher.close();
          await app.close();
          await broker.close();
          await history.close();
          await log.close();
        } finally {
          await lock.release();
        }
      };
    },
  };
}

/** Makes DATA_DIR if it is missing, locks it, opens its log and loads the state. It runs once the
 *  startup probe holds the port: a start refused for its port or host makes nothing on disk. Each
 *  step registers its undo for a start that fails later. */
async function openDataDir(
  config: Config,
  options: ServeOptions,
  logger: (line: string) => void,
  onFailure: OnFailure,
  observeSyncMs: (ms: number) => void,
): Promise<{ lock: DataDirLock; log: Log; loaded: LoadedState }> {
  const { logDir, snapshotsDir } = dataPathsOf(config.dataDir);
  const dataDir = await createDataDir(config.dataDir);
  onFailure(() => dataDir.removeIfEmpty());
  const lock = await lockDataDir(config.dataDir, logger, undefined, options.signal);
  onFailure(() => lock.release());
  // With a snapshot to decode, the sealed segments are verified in a worker meanwhile; without
  // one the replay must wait for them anyway, and the main thread verifies them sooner (1M
  // records: about 180 ms against 340 ms through the worker).
  const snapshots = await listSnapshots(snapshotsDir);
  const opening = Log.open({
    dir: logDir,
    segmentBytes: config.segmentBytes,
    sync: config.logSync,
    syncIntervalMs: config.logSyncIntervalMs,
    repair: options.repair === true,
    repairCheck: (cutAt, firstOffset) => rebuildRefusal(snapshotsDir, cutAt, firstOffset),
    logger: named(logger, 'tapeq: log: '),
    sealedInWorker: snapshots.length > 0,
    observeSyncMs,
  });
  // Closed once it has opened, also when the load failed while it was still opening.
  onFailure(() => opening.then((log) => log.close(), () => undefined));
  const loaded = await loadState({ log: opening, dir: snapshotsDir, logger: named(logger, 'tapeq: ') });
  const log = await opening;
  options.signal?.throwIfAborted();
  logger(
    `tapeq: log opened and state loaded in ${loaded.ms} ms (snapshot: ${loaded.fromSnapshot ?? 'none'}, ` +
      `replayed ${loaded.replayed} records, next offset ${log.nextOffset})`,
  );
  return { lock, log, loaded };
}

/** The log's and the snapshot loader's lines (`cut torn tail of …`, `snapshot … is unusable`) are
 *  written for any caller, which names them; the server's own lines start with `tapeq: `, and so
 *  do theirs here. A line that already names tapeq (the group commit's) is left as it is. */
function named(logger: (line: string) => void, prefix: string): (line: string) => void {
  return (line) => logger(line.startsWith('tapeq: ') ? line : `${prefix}${line}`);
}

/** `serve --until`: a read-only server on the state as of `point`; nothing on disk changes. */
async function servePointInTime(config: Config, point: Point, logger: (line: string) => void): Promise<Running> {
  const { logDir, snapshotsDir } = dataPathsOf(config.dataDir);
  return withStartupProbe(config, async (onFailure) => {
    const log = await Log.open({ dir: logDir, readOnly: true, logger: named(logger, 'tapeq: log: ') });
    onFailure(() => log.close());
    const until = await untilOffset(log, point);
    const loaded = await loadState({ log, dir: snapshotsDir, logger: named(logger, 'tapeq: '), until, readOnly: true });
    checkTimeReachable(point, until, log.firstOffset, loaded.state);
    const pastEnd = point.kind === 'offset' && point.offset > until ? ` (past the log's end: the state at its end, offset ${until})` : '';
    logger(
      `tapeq: READ-ONLY server on the state at ${describePoint(point)}${pastEnd}: records [0, ${until}) of ${log.durableOffset} ` +
        `(snapshot: ${loaded.fromSnapshot ?? 'none'}, replayed ${loaded.replayed}); writes answer 409`,
    );
    const broker = new Broker({ log, state: loaded.state, lockMsDefault: config.lockMs, logger, readOnly: true });
    const history = new JobHistory({ log, writeFiles: false, until, logger });
    const app = await buildServer({ broker, config, history });
    return {
      app,
      broker,
      log,
      start() {
        return async () => {
          broker.beginShutdown();
          await app.close();
          await broker.close();
          await history.close();
          await log.close();
        };
      },
    };
  }, logger);
}

/** What a server variant builds before it listens; `start()` runs after listening and returns
 *  the shutdown sequence. */
interface Assembled {
  app: FastifyInstance;
  broker: Broker;
  log: Log;
  start(): () => Promise<void>;
}

/** Holds the port with the startup probe while `assemble` opens the log and replays it, then
 *  swaps the probe for the real server, on the port the probe got: with HTTP_PORT=0 the system
 *  picks one for the probe, and a client that found it must find the server there too. On failure
 *  the probe is closed and the steps `assemble` registered are undone, the latest first. */
async function withStartupProbe(
  config: Config,
  assemble: (onFailure: OnFailure) => Promise<Assembled>,
  logger: (line: string) => void,
): Promise<Running> {
  const probe = await listenStartupProbe(config, logger);
  logger(`tapeq: starting on http://${config.host}:${probe.port}: /ready answers 503 until the log is replayed`);
  const undos: Array<() => Promise<void>> = [];
  try {
    const built = await assemble((undo) => undos.push(undo));
    await probe.close();
    limitConnections(built.app.server, config.maxConnections, logger);
    await built.app.listen({ port: probe.port, host: config.host });
    const stop = built.start();
    const stopWarming = warmValidators(built.app, logger);
    const address = built.app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : probe.port;
    warnIfExposed(config, port, logger);
    const close = async (): Promise<void> => {
      stopWarming();
      await stop();
    };
    return { app: built.app, broker: built.broker, log: built.log, port, close };
  } catch (error) {
    await probe.close();
    // The error that stopped the start is the one reported; an undo that fails too changes nothing in it.
    for (const undo of undos.reverse()) await undo().catch(() => undefined);
    throw error;
  }
}

/** Compiles the route schemas no request has needed yet, one per event-loop turn once the server
 *  listens: first requests do not wait on Ajv, and a schema that does not compile is reported now
 *  rather than by its route's first request (which answers 500 for it). Returns a stop. */
function warmValidators(app: FastifyInstance, logger: (line: string) => void): () => void {
  let stopped = false;
  const step = (): void => {
    if (stopped) return;
    try {
      if (app.compileValidators(1) === 0) return;
    } catch (error) {
      logger(`tapeq: ${(error as Error).message}`);
    }
    setImmediate(step);
  };
  setImmediate(step);
  return () => {
    stopped = true;
  };
}

/** Retention runs after snapshots exist; it is cheap (a directory listing) when nothing is due.
 *  One run at a time: a run may outlast the period (verifying a large new snapshot, archiving by
 *  copy to another filesystem), and runs must not overlap (retention.ts, Log.dropSegmentsBefore);
 *  a tick that finds one running is skipped. Stopping waits for a run under way. */
function scheduleCompaction(log: Log, snapshotsDir: string, config: Config, logger: (line: string) => void): () => Promise<void> {
  const everyMs = Math.min(config.snapshotIntervalMs, 60_000);
  let running: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (running !== null) return;
    running = compact({ log, snapshotsDir, retentionMs: config.historyRetentionMs, archiveDir: config.archiveDir, now: Date.now() })
      .then((removed) => {
        if (removed.length > 0) logger(`tapeq: retention removed ${removed.length} segment(s): ${removed.join(', ')}`);
      })
      .catch((error: unknown) => logger(`tapeq: retention failed: ${String(error)}`))
      .finally(() => {
        running = null;
      });
  }, everyMs);
  timer.unref();
  // The close waits for a run under way: it must not remove segments from a log being closed,
  // nor from a directory the server has let go.
  return async () => {
    clearInterval(timer);
    await running;
  };
}

function warnIfExposed(config: Config, port: number, logger: (line: string) => void): void {
  const loopback = config.host === '127.0.0.1' || config.host === '::1' || config.host === 'localhost';
  if (!loopback && config.authTokens.length === 0) {
    logger(
      `tapeq: WARNING listening on ${config.host}:${port} without AUTH_TOKENS: ` +
        'anyone who can reach this address can read and change every queue',
    );
  }
}

/** Runs `serve` until SIGTERM/SIGINT; a second signal exits at once. The process is the server's
 *  own, so its V8 heap growth is governed from here (HEAP_GROWING_PERCENT, heap-growth.ts),
 *  before the state is loaded. The handlers are in place before startup: a signal while the lock
 *  is taken or the log replayed stops the start (ServeOptions.signal), undoing what it made, and
 *  exits 0 (without them it killed the process there, leaving LOCK and its temp file behind, and
 *  a pid 1 ignored it; until 2026-12-07 the start went on, a wait on a foreign lock included, and
 *  the server drained once it had started). */
export async function serveUntilSignalled(config: Config, options: ServeOptions = {}): Promise<void> {
  governHeapGrowth(config.heapGrowingPercent);
  const logger = options.logger ?? ((line: string) => console.error(line));
  let running: Running | null = null;
  let stopping: string | null = null;
  const starting = new AbortController();
  const drain = (server: Running, signal: string): void => {
    logger(`tapeq: ${signal} received, draining`);
    const force = setTimeout(() => {
      logger(`tapeq: shutdown took longer than ${shutdownGraceMs} ms, exiting`);
      process.exit(1);
    }, shutdownGraceMs);
    force.unref();
    server.close().then(
      () => {
        logger('tapeq: stopped cleanly');
        process.exit(0);
      },
      (error: unknown) => {
        logger(`tapeq: shutdown failed: ${String(error)}`);
        process.exit(1);
      },
    );
  };
  const stop = (signal: string) => {
    if (stopping !== null) {
      logger(`tapeq: ${signal} again, exiting now`);
      process.exit(1);
    }
    stopping = signal;
    if (running !== null) return drain(running, signal);
    logger(`tapeq: ${signal} received while starting: stopping the start (again to exit now)`);
    starting.abort(new Error(`${signal} received while starting`));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    running = await serve(config, { ...options, signal: starting.signal });
  } catch (error) {
    if (!starting.signal.aborted) throw error;
    logger('tapeq: stopped before it started (what the start made is undone)');
    process.exit(0);
  }
  logger(`tapeq: listening on http://${config.host}:${running.port} (data in ${config.dataDir})`);
  if (stopping !== null) drain(running, stopping);
}
