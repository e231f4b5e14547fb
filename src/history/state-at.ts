// Opening a data directory read-only and rebuilding its state as of a point: shared by
// `tapeq replay`, `tapeq recover` and `tapeq export`. Nothing here writes: the log is opened
// readOnly (no torn-tail cut, no index rewrite) and snapshots are loaded with readOnly (no `.tmp`
// cleanup). The caller closes the returned log.

import { dirname, join, resolve } from 'node:path';
import { findLogDir, openReadOnly, type Log } from '../log/log.js';
import { loadState, RecoveryError, type LoadedState } from '../snapshot/recover-state.js';
import type { State } from '../state/index.js';
import { PointError, untilOffset, type Point } from './point.js';

/** A tool's data directory: `--dir`, else DATA_DIR, else ./data; an empty DATA_DIR is unset, as
 *  `serve` reads it (config.ts), so that a tool looks where the server writes. An empty `--dir`
 *  (an unset shell variable) is a usage error: it names no directory. */
export function dataDirOf(flag: string | undefined): string {
  if (flag === '') throw new PointError('--dir: empty; name the data directory or its log directory');
  const env = process.env['DATA_DIR'];
  return flag ?? (env === undefined || env === '' ? './data' : env);
}

export function dataPathsOf(dataDir: string): { logDir: string; snapshotsDir: string } {
  return { logDir: join(dataDir, 'log'), snapshotsDir: join(dataDir, 'snapshots') };
}

/** The data dir of a tool's `--dir`, which may name the data dir or its log dir (as `verify` and
 *  `logcat` take it): a dir holding segment files is a log dir, inside its data dir. */
export async function dataDirFrom(dir: string): Promise<string> {
  return (await findLogDir(dir)) === dir ? dirname(resolve(dir)) : dir;
}

export interface StateAt {
  log: Log;
  /** The state covers records [0, until). */
  until: number;
  loaded: LoadedState;
}

/** The state as of `point` (the log's durable end when absent). */
export async function stateAt(dir: string, point: Point | undefined, logger: (line: string) => void): Promise<StateAt> {
  const { logDir, snapshotsDir } = dataPathsOf(await dataDirFrom(dir));
  const log = await openReadOnly(logDir, logger);
  try {
    const until = point === undefined ? log.durableOffset : await untilOffset(log, point);
    const loaded = await loadState({ log, dir: snapshotsDir, logger, until, readOnly: true });
    checkTimeReachable(point, until, log.firstOffset, loaded.state);
    return { log, until, loaded };
  } catch (err) {
    await log.close();
    throw err;
  }
}

/** A time before a compacted log's first record: no retained record is stamped at or before it,
 *  so it resolves to the log's first offset, and the state there (a snapshot) holds records
 *  retention removed. It is the state at that time only if its last record is stamped by then;
 *  otherwise the last record stamped at or before the time is among the removed ones. */
export function checkTimeReachable(point: Point | undefined, until: number, firstOffset: number, state: State): void {
  if (point?.kind !== 'time' || firstOffset === 0 || until !== firstOffset || state.timestamp <= point.ms) return;
  throw new RecoveryError(
    `${new Date(point.ms).toISOString()} is before the log's first record (offset ${firstOffset}): the last record stamped ` +
      `at or before it was removed by retention (the state at offset ${firstOffset} holds records stamped up to ` +
      `${new Date(state.timestamp).toISOString()}); restore the removed segments (archive directory or backup)`,
  );
}
