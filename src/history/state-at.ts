// Opening a data directory read-only and rebuilding its state as of a point: shared by
// `tapeq replay`, `tapeq recover` and `tapeq export`. Nothing here writes: the log is opened
// readOnly (no torn-tail cut, no index rewrite) and snapshots are loaded with readOnly (no `.tmp`
// cleanup). The caller closes the returned log.

import { basename, dirname, join, resolve } from 'node:path';
import { findLogDir, LogError, openReadOnly, type Log } from '../log/log.js';
import { loadState, RecoveryError, type LoadedState } from '../snapshot/recover-state.js';
import type { State } from '../state/index.js';
import { describePoint, PointError, untilOffset, type Point } from './point.js';

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

export interface SourcePaths {
  /** What the tool only reads: no output of it may land inside. */
  dataDir: string;
  logDir: string;
  snapshotsDir: string;
}

/** What a tool's `--dir` names. A directory holding segment files is the log read, as `verify`
 *  and `logcat` read it: a data directory's `log/` (its snapshots are `../snapshots`), or a copy
 *  or an archive under another name, which is read alone (the `snapshots/` beside it may be
 *  another log's; its own, inside it, if it has one). Any other directory is a data directory. */
export async function sourcePathsOf(dir: string): Promise<SourcePaths> {
  if ((await findLogDir(dir)) !== dir) return { dataDir: dir, ...dataPathsOf(dir) };
  const logDir = resolve(dir);
  const dataDir = basename(logDir) === 'log' ? dirname(logDir) : logDir;
  return { dataDir, logDir, snapshotsDir: join(dataDir, 'snapshots') };
}

export interface StateAt {
  log: Log;
  /** The state covers records [0, until). */
  until: number;
  loaded: LoadedState;
}

/** The state as of `point` (the log's durable end when absent). With a point, the log is read
 *  only up to the segment that reaches it (log.openReport.notRead names the segments after). */
export async function stateAt(dir: string, point: Point | undefined, logger: (line: string) => void): Promise<StateAt> {
  const { logDir, snapshotsDir } = await sourcePathsOf(dir);
  const log = await openAtPoint(logDir, point, logger);
  try {
    const until = point === undefined ? log.durableOffset : await untilOffset(log, point);
    const loaded = await loadState({ log, dir: snapshotsDir, logger, until, readOnly: true });
    checkTimeReachable(point, until, log.firstOffset, loaded.state);
    // As `serve --until` says it: the state is not the one at the offset asked for.
    if (point?.kind === 'offset' && point.offset > until) logger(`--until ${point.offset} is past the log's end: the state at its end, offset ${until}`);
    return { log, until, loaded };
  } catch (err) {
    await log.close();
    throw err;
  }
}

/** Opens the log read-only for a tool with `--until`: with a point, the log is read only as far
 *  as the point needs, and no further than the first damage, so damage after the point does not
 *  stop the tool; damage the point needs still does, and the refusal says why the point needs it
 *  (a time resolves only where a record stamped after it is found) and which offset point stops
 *  before it. Without a point, the whole log is verified. */
export async function openAtPoint(logDir: string, point: Point | undefined, logger: (line: string) => void): Promise<Log> {
  if (point === undefined) return openReadOnly(logDir, logger);
  let log: Log;
  try {
    log = await openReadOnly(logDir, logger, { until: point, endAtDamage: true });
  } catch (err) {
    // Damage with nothing sound before it (the first segment's header) fails the open itself.
    if (err instanceof LogError && err.file !== undefined && (err.code === 'LOG_CORRUPT' || err.code === 'LOG_GAP')) throw pointNeeds(err, point);
    throw err;
  }
  const damage = log.openReport.damage;
  if (damage === null || (await reachedBefore(log, point))) return log;
  await log.close();
  throw pointNeeds(damage, point);
}

/** Whether the records before the damage that ended `log` reach the point: an offset at or before
 *  the damaged record; a time once a record before it is stamped after that time. */
async function reachedBefore(log: Log, point: Point): Promise<boolean> {
  if (point.kind === 'offset') return point.offset <= log.durableOffset;
  return (await log.offsetAtTime(point.ms + 1)) < log.durableOffset;
}

/** The damage, refused for a point that needs it: why it does, and the offset that stops before it. */
function pointNeeds(damage: LogError, point: Point): LogError {
  const file = basename(damage.file ?? '');
  const record = damage.offset === undefined ? file : `record ${damage.offset} of ${file}`;
  const why =
    point.kind === 'offset'
      ? `--until ${point.offset} needs ${record}, which lies before that offset`
      : `--until ${describePoint(point)} needs ${record}: no record before it is stamped after that time, so the time may resolve at it or later`;
  const instead = (damage.offset ?? 0) > 0 ? `; --until ${damage.offset} (an offset) stops before it` : '';
  return new LogError(damage.code, `${damage.message}; ${why}${instead}`, { file: damage.file, position: damage.position, offset: damage.offset, cause: damage });
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
