// Rebuilding the state: the newest usable snapshot plus a fold of the log tail after it. Used by
// the composition root at startup, by the snapshot process, and by the CLI `replay`/`recover`.
//
//   offsets   0 ......... firstOffset ........ S ................ end ........ nextOffset
//   log                   [segments on disk ........................................)
//   snapshot  state of [0, S)  ─────────────►  fold records [S, end) with apply
//
// A snapshot is usable only when S lies inside what the log can extend: firstOffset ≤ S ≤ end,
// where end = min(until, durableOffset). A snapshot beyond the log's end (the log lost its tail:
// a repair quarantined it, or a machine crash took unsynced records) would put the state ahead of
// the log, so an older one is used. The server's own load (not read-only) also moves such a
// snapshot aside, into <snapshots>/beyond-log-<ms>/: once the log grows past its offset again it
// would look usable, and loading it would replace the records written since with the lost ones. A snapshot
// below firstOffset cannot be extended (retention removed the records after it), and neither can
// anything older: with no usable snapshot, a log that does not start at 0 is an error naming the
// missing range, never a silently partial state. A snapshot must also be of this log: the log's
// record before its offset must be the one it folded last, at the same time (ofAnotherLog); one
// copied in from another server's log is refused, and the server's load moves it aside. The fold
// checks every record's offset, so a gap in the log is an error too. Single use per call; nothing here writes the log.

import { randomInt } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { LogRecord } from '../record/types.js';
import { apply, createState, seedJobTables, type State } from '../state/index.js';
import { installChunkSupply } from './chunk-supply.js';
import { listSnapshots, loadNewestState, moveSnapshotsAside, verifiedHeader, type Logger, type SnapshotEntry } from './store.js';

/** What loading needs from the log (the real Log satisfies it). */
export interface LogView {
  readonly firstOffset: number;
  readonly nextOffset: number;
  readonly durableOffset: number;
  /** Records in batches: one await per batch, not per record, keeps replay fast. */
  readBatches(from: number, to?: number): AsyncIterable<LogRecord[]>;
}

export interface LoadStateOptions {
  /** The log, or its open() still running: then the newest snapshot is decoded meanwhile. */
  log: LogView | Promise<LogView>;
  /** The snapshots directory. */
  dir: string;
  logger: Logger;
  /** Point-in-time: fold only records < until, from the newest snapshot with offset ≤ until. */
  until?: number;
  /** Leave the snapshots directory untouched (read-only tools on a live data dir). */
  readOnly?: boolean;
}

export interface LoadedState {
  state: State;
  /** Path of the snapshot used, or null for a full replay. */
  fromSnapshot: string | null;
  /** Records folded after the snapshot. */
  replayed: number;
  /** The state covers records [0, offset). */
  offset: number;
  ms: number;
}

export class RecoveryError extends Error {
  readonly code = 'RECOVERY_IMPOSSIBLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecoveryError';
  }
}

/** Reports snapshots the log cannot back: beyond its end (lost tail) or below its start. Those
 *  beyond the end are moved aside unless the load is read-only. */
async function reportUnbacked(dir: string, log: LogView, end: number, opts: { until?: number; readOnly: boolean }, logger: Logger) {
  const beyond: SnapshotEntry[] = [];
  for (const entry of await listSnapshots(dir)) {
    if (entry.offset > log.durableOffset && opts.until === undefined) {
      beyond.push(entry);
      if (opts.readOnly) {
        logger(
          `snapshot ${entry.file} covers offsets up to ${entry.offset} but the log ends at ${log.durableOffset} ` +
            `(the log lost its tail); trying older`,
        );
      }
    } else if (entry.offset < log.firstOffset && entry.offset <= end) {
      logger(
        `snapshot ${entry.file} covers offsets up to ${entry.offset} but the log starts at ${log.firstOffset} ` +
          `(records [${entry.offset}, ${log.firstOffset}) were removed); not usable`,
      );
    }
  }
  if (opts.readOnly || beyond.length === 0) return;
  const aside = await moveSnapshotsAside(dir, beyond, 'beyond-log');
  for (const entry of beyond) {
    logger(
      `snapshot ${entry.file} covers offsets up to ${entry.offset} but the log ends at ${log.durableOffset} ` +
        `(the log lost its tail); moved to ${aside} so that it is never used once the log grows past it`,
    );
  }
}

/**
 * Why `state`, decoded from a snapshot, cannot have been taken of this log, or null. A snapshot
 * names only an offset, and another data directory's log has the same offsets (a snapshot copied
 * in from a backup of another server, a log restored without its snapshots): the record before
 * the snapshot's offset must be the one the snapshot folded last, at its time. A snapshot at
 * offset 0, or at the log's first offset (retention removed the record before it), is taken on
 * trust: there is no record to compare.
 */
async function ofAnotherLog(log: LogView, state: State): Promise<string | null> {
  const last = state.offset - 1;
  if (last < log.firstOffset) return null;
  for await (const batch of log.readBatches(last, last + 1)) {
    const record = batch[0];
    // A record missing here is the fold's to report (a gap), not this check's.
    if (record === undefined || record.offset !== last || record.timestamp === state.timestamp) return null;
    return `the last record it folded, offset ${last}, is of ${iso(state.timestamp)}; this log's record ${last} is of ${iso(record.timestamp)}`;
  }
  return null;
}

function iso(ms: number): string {
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
}

/** Reports a snapshot of another log; the server's own load (not read-only) moves it into
 *  <snapshots>/other-log-<ms>/, so that no later start decodes it again. */
async function setAsideOtherLogs(dir: string, entry: SnapshotEntry, why: string, readOnly: boolean, logger: Logger): Promise<void> {
  if (readOnly) {
    logger(`snapshot ${entry.file} was not taken of this log (${why}); trying older`);
    return;
  }
  const aside = await moveSnapshotsAside(dir, [entry], 'other-log');
  logger(`snapshot ${entry.file} was not taken of this log (${why}); moved to ${aside}, trying older`);
}

async function fold(state: State, log: LogView, from: number, end: number): Promise<number> {
  if (from === end) return 0;
  // The waiting jobs the replay pushes stay rows until first used, as a snapshot's do.
  state.cold.takesPushes = true;
  try {
    let expected = from;
    batches: for await (const batch of log.readBatches(from, end)) {
      for (const record of batch) {
        if (record.offset !== expected) {
          throw new RecoveryError(`log gap: expected offset ${expected}, read ${record.offset} (records missing from the log)`);
        }
        apply(state, record);
        expected++;
        if (expected === end) break batches;
      }
    }
    if (expected !== end) {
      throw new RecoveryError(`log ended at offset ${expected} while replaying to ${end} (records [${expected}, ${end}) missing)`);
    }
  } finally {
    state.cold.takesPushes = false;
  }
  return end - from;
}

/**
 * Why the state could not be rebuilt from a log cut at `cutAt` that starts at `firstOffset`, or
 * null when it can: the log starts at 0, or a sound snapshot lies in [firstOffset, cutAt]. Asked
 * by `serve --repair` before it sets anything aside (recovery.ts, repairCheck), so that a repair
 * that could not start leaves the directory as it found it.
 */
export async function rebuildRefusal(snapshotsDir: string, cutAt: number, firstOffset: number): Promise<string | null> {
  if (firstOffset === 0) return null;
  for (const entry of await listSnapshots(snapshotsDir)) {
    if (entry.offset < firstOffset || entry.offset > cutAt) continue;
    if ((await verifiedHeader(entry)) !== null) return null;
  }
  return (
    `the log would start at offset ${firstOffset} (retention removed the records before it) and no sound snapshot at offset ` +
    `${firstOffset} to ${cutAt} holds the state to replay it from; restore the damaged file from a copy instead`
  );
}

export async function loadState(options: LoadStateOptions): Promise<LoadedState> {
  const { dir, logger, until } = options;
  const started = performance.now();
  // Every process that holds jobs loads them here first (server, snapshot process, CLI): a random
  // hash seed keeps clients from choosing custom job ids that collide in the job index.
  seedJobTables(randomInt(2 ** 31));
  // Their payloads go to arena chunks that a helper thread pages in ahead of use.
  installChunkSupply();
  if (until !== undefined && (!Number.isSafeInteger(until) || until < 0)) throw new RangeError(`bad until offset ${until}`);
  const readOnly = options.readOnly === true ? { readOnly: true } : {};
  // A log still opening (its sealed segments verified in a worker): decode the newest snapshot
  // meanwhile, and use it only if the opened log can extend it (the usual case).
  // Whatever ends the load (a log that fails to open, an error later) stops that decode at its
  // next block: no decode outlives the load.
  const stopEarly = new AbortController();
  // What the early decode found unusable (and reported) the search below neither reads nor reports again.
  const refused = new Set<string>();
  let early =
    options.log instanceof Promise
      ? loadNewestState(dir, logger, { maxOffset: until, ...readOnly, signal: stopEarly.signal, refused }).catch(() => null)
      : null;
  try {
    const log = await options.log;
    const end = Math.min(until ?? log.durableOffset, log.durableOffset);
    if (until !== undefined && until > log.durableOffset) {
      logger(`replay until ${until} is past the log's end; stopping at ${log.durableOffset}`);
    }
    await reportUnbacked(dir, log, end, { ...(until === undefined ? {} : { until }), readOnly: options.readOnly === true }, logger);
    const usable = (found: { state: State } | null) => found !== null && found.state.offset >= log.firstOffset && found.state.offset <= end;
    let preloaded = early === null ? null : await early;
    early = null;
    // An unusable early decode is dropped before the search decodes another (never two states held).
    if (!usable(preloaded)) preloaded = null;
    if (end < log.firstOffset) {
      // No snapshot can help: one at or after firstOffset is past the point, and the log cannot
      // extend an older one.
      throw new RecoveryError(
        `offset ${end} is before the log's first record (offset ${log.firstOffset}): records [0, ${log.firstOffset}) ` +
          'are gone from the log, so the state there cannot be rebuilt; restore the removed segments (archive directory or backup)',
      );
    }
    let found = preloaded ?? (await loadNewestState(dir, logger, { maxOffset: end, minOffset: log.firstOffset, ...readOnly, refused }));
    let why = found === null ? null : await ofAnotherLog(log, found.state);
    while (found !== null && why !== null) {
      const entry = { file: found.file, offset: found.state.offset };
      found = null; // dropped before the next decode: never two states held
      refused.add(entry.file);
      await setAsideOtherLogs(dir, entry, why, options.readOnly === true, logger);
      found = await loadNewestState(dir, logger, { maxOffset: end, minOffset: log.firstOffset, ...readOnly, refused });
      why = found === null ? null : await ofAnotherLog(log, found.state);
    }
    if (found === null && log.firstOffset > 0) {
      throw new RecoveryError(
        `no usable snapshot covers offset ${log.firstOffset}, where the log now starts: records [0, ${log.firstOffset}) ` +
          `are gone from the log; restore the removed segments (archive directory or backup) or a snapshot at offset ` +
          `≥ ${log.firstOffset} and ≤ ${end}`,
      );
    }
    const state = found?.state ?? createState();
    const start = state.offset;
    const replayed = await fold(state, log, start, end);
    return { state, fromSnapshot: found?.file ?? null, replayed, offset: end, ms: Math.round(performance.now() - started) };
  } finally {
    stopEarly.abort();
  }
}
