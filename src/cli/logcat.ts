// `tapeq logcat`: prints log records as NDJSON (recordToJson), one per line, oldest first.
//
//   --dir <path>           data directory (default $DATA_DIR or ./data; its log/ subdirectory,
//                          or the directory itself when it holds segment files)
//   --from <offset>        first offset (inclusive)      --to <offset>     end (exclusive)
//   --since <time>         timestamp >= time             --until <time>    timestamp <= time
//   --kind <type>          record type; repeatable or comma separated (e.g. pushed,completed)
//   --queue <name>         records of that queue
//   --job <id>             records touching that job, and (as GET /jobs/:id/history) the
//                          completions and removals of the jobs it waited for, after its push
//   --follow               keep printing records appended by a running broker (polls every 200 ms)
//
// Strictly read-only: the log is opened with readOnly (O_RDONLY, no truncation, no index
// rebuild); a torn tail is reported on stderr and not printed. Records that retention retired
// under a lagging --follow before they were printed are named on stderr, and the command then
// ends with 1. Exit 0, 1 on a log error or such a loss, 2 on usage.
//
// logcat is the audit tool, so damage (a corrupt record, an offset gap) does not hide the sound
// records before it: they are printed, then the damage is named on stderr (file, byte, record
// offset) and the command ends with 1. The log is read only as far as --to or --until need (as
// the tools with --until read it, recovery.ts), so a range that ends before the damage is
// printed whole, with 0.
//
// A reader of stdout that leaves (`logcat --follow | head -n 1`) is noticed at the next write,
// which fails with EPIPE and ends the command with 0; on an idle log that write only comes with
// the next record. Nothing earlier is honest: Node exposes no poll(2) of stdout (GNU `tail -f`
// ends at once through POLLERR on the pipe), process.stdout emits no 'close' or 'error' while
// nothing is written, a zero-length write to a pipe without readers succeeds on Linux (pipe_write
// returns before it looks for readers), and libuv refuses to read-watch a write-only pipe
// (ENOTCONN). So this is documented (--help, README), not worked around.
//
// Beside a running broker (--follow or not) a record is printed once it is whole in the file, not
// once fdatasync covered it: a machine crash can cut it as a torn tail after it was printed. No
// reader can tell a synced record from one still only in the page cache (a later record proves
// nothing under group commit), so this is documented (README, --help), not worked around.

import { parseArgs } from 'node:util';
import { findLogDir, LogError, openReadOnly, type Log, type ReadBound } from '../log/log.js';
import { isoTimeMs } from '../history/point.js';
import { dataDirOf } from '../history/state-at.js';
import { followDirectory } from '../log/follower.js';
import { recordToJson } from '../record/codec.js';
import { jobIdsOf, queueOf, RECORD_TYPES, releasesDependent, type LogRecord, type RecordType } from '../record/types.js';

/** Epoch ms from "1700000000000" or an ISO time; throws a usage error naming the flag. */
function parseTime(flag: string, value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : isoTimeMs(value);
  // Past Date's range (±8.64e15 ms) a number of digits is no time: 1e20 would pass as one.
  if (Number.isNaN(new Date(ms).getTime())) throw new UsageError(`${flag}: not a time (ISO 8601 or epoch ms): ${value}`);
  return ms;
}

function parseOffset(flag: string, value: string): number {
  // Beyond 2^53 digits round to another number: the offset asked for is not the one compared.
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new UsageError(`${flag}: not an offset: ${value}`);
  return Number(value);
}

class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Writes a line to stdout, waiting when the pipe is full (logcat | head must not buffer); once
 *  `stop` is aborted (a signal, or the reader closed the pipe) it writes nothing more. */
async function writeLine(line: string, stop: AbortSignal): Promise<void> {
  if (stop.aborted || process.stdout.write(`${line}\n`)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      process.stdout.off('drain', done);
      stop.removeEventListener('abort', done);
      resolve();
    };
    process.stdout.once('drain', done);
    stop.addEventListener('abort', done, { once: true });
  });
}

interface Filter {
  from: number;
  to: number;
  since: number;
  until: number;
  kinds: Set<RecordType> | null;
  queue: string | null;
  job: string | null;
  /** The dependencies the job's latest push was still waiting for (filled while reading). */
  jobDeps: Set<string>;
}

function parseLogcatArgs(argv: string[]): { dir: string; follow: boolean; fromGiven: boolean; filter: Filter } {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      dir: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      kind: { type: 'string', multiple: true },
      queue: { type: 'string' },
      job: { type: 'string' },
      follow: { type: 'boolean', default: false },
    },
  });
  const kinds = values.kind?.flatMap((k) => k.split(',')).filter((k) => k !== '');
  // `--kind "$TYPES"` with the variable unset must not print every record as if no filter was given.
  if (kinds?.length === 0) throw new UsageError(`--kind: no record type given (one of ${RECORD_TYPES.join(', ')})`);
  for (const k of kinds ?? []) {
    if (!(RECORD_TYPES as readonly string[]).includes(k)) throw new UsageError(`--kind: unknown record type ${k} (one of ${RECORD_TYPES.join(', ')})`);
  }
  // Nor an empty `--queue`/`--job` print nothing as if no record matched.
  if (values.queue === '') throw new UsageError('--queue: empty; name the queue');
  if (values.job === '') throw new UsageError('--job: empty; name the job');
  const filter: Filter = {
    from: values.from === undefined ? 0 : parseOffset('--from', values.from),
    to: values.to === undefined ? Number.POSITIVE_INFINITY : parseOffset('--to', values.to),
    since: values.since === undefined ? Number.NEGATIVE_INFINITY : parseTime('--since', values.since),
    until: values.until === undefined ? Number.POSITIVE_INFINITY : parseTime('--until', values.until),
    kinds: kinds === undefined ? null : new Set(kinds as RecordType[]),
    queue: values.queue ?? null,
    job: values.job ?? null,
    jobDeps: new Set(),
  };
  if (filter.from > filter.to) throw new UsageError(`--from ${filter.from} is after --to ${filter.to}`);
  if (filter.since > filter.until) throw new UsageError('--since is after --until');
  return { dir: dataDirOf(values.dir), follow: values.follow === true, fromGiven: values.from !== undefined, filter };
}

/** Records are read in offset order (for --job from the log's start), so a job's push is seen
 *  before what releases it. */
function matches(r: LogRecord, f: Filter): boolean {
  const touchesJob = f.job === null || touches(r, f.job, f.jobDeps);
  if (r.offset < f.from || r.offset >= f.to || r.timestamp < f.since || r.timestamp > f.until) return false;
  if (f.kinds !== null && !f.kinds.has(r.body.type)) return false;
  if (f.queue !== null && queueOf(r.body) !== f.queue) return false;
  return touchesJob;
}

function touches(r: LogRecord, job: string, deps: Set<string>): boolean {
  const body = r.body;
  if (body.type === 'pushed' && body.job.id === job) {
    deps.clear();
    for (const dep of body.pendingDeps) deps.add(dep);
    return true;
  }
  if (jobIdsOf(body).includes(job)) return true;
  return deps.size > 0 && jobIdsOf(body).some((id) => deps.has(id) && releasesDependent(body, id));
}

export async function logcatCommand(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseLogcatArgs>;
  try {
    parsed = parseLogcatArgs(argv);
  } catch (err) {
    console.error(`tapeq logcat: ${(err as Error).message}`);
    return 2;
  }
  const { follow, filter } = parsed;
  // With --follow, a stop signal ends the command cleanly from the first moment, also while the
  // records already on disk are still being printed.
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  if (follow) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  // `logcat | head`: when the reader goes, stdout fails with EPIPE; that ends the command quietly.
  const onStdoutError = (error: NodeJS.ErrnoException): void => {
    if (error.code === 'EPIPE') stop.abort();
    else throw error;
  };
  process.stdout.on('error', onStdoutError);
  try {
    const dir = await findLogDir(parsed.dir);
    const log = await openReadOnly(dir, (line) => console.error(`tapeq logcat: ${line}`), { endAtDamage: true, ...readBoundOf(filter) });
    const rangeEnded = await printRecords(log, filter, parsed.fromGiven, stop.signal);
    const last = log.segments().at(-1);
    const damage = log.openReport.damage;
    await log.close();
    // Everything before the damage was printed; the range goes on past it, where nothing is read.
    if (damage !== null && !rangeEnded && !stop.signal.aborted) {
      console.error(`tapeq logcat: ${damage.message}; records from offset ${damage.offset} on are not printed`);
      return 1;
    }
    if (!follow || stop.signal.aborted || last === undefined || rangeEnded) return 0;
    const lost = await followAndPrint(dir, { baseOffset: last.baseOffset, position: last.bytes, nextOffset: last.nextOffset }, filter, stop.signal);
    return lost ? 1 : 0;
  } catch (err) {
    if (err instanceof LogError) {
      console.error(`tapeq logcat: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    // The EPIPE listener stays: writes already queued may still fail after the command returns.
  }
}

/** How far the log must be read for the filter: to --to, else to the first segment stamped past
 *  --until, else to its end. Damage beyond that is never read. */
function readBoundOf(filter: Filter): { until?: ReadBound } {
  if (Number.isFinite(filter.to)) return { until: { kind: 'offset', offset: filter.to } };
  if (Number.isFinite(filter.until)) return { until: { kind: 'time', ms: filter.until } };
  return {};
}

/** Prints the matching records the opened log holds; true when the filter's range ends within
 *  them (at --to, or at a record stamped past --until), so that nothing after them is wanted. */
async function printRecords(log: Log, filter: Filter, fromGiven: boolean, stop: AbortSignal): Promise<boolean> {
  // --job reads from the log's start whatever the range, so that it sees the job's push (which
  // names the dependencies whose completions it then prints); the range still filters output.
  const start =
    filter.job !== null
      ? log.firstOffset
      : Math.max(filter.from, log.firstOffset, Number.isFinite(filter.since) ? await log.offsetAtTime(filter.since) : 0);
  // An explicit --from below the log's start must not pass for "no records there".
  if (fromGiven && filter.from < log.firstOffset && filter.to > log.firstOffset) {
    console.error(`tapeq logcat: --from ${filter.from}: records [${filter.from}, ${log.firstOffset}) are gone from the log (retention); printing from ${log.firstOffset}`);
  }
  const end = Math.min(filter.to, log.durableOffset);
  for await (const batch of log.readBatches(Math.min(start, end), end)) {
    if (stop.aborted) break;
    for (const r of batch) if (matches(r, filter)) await writeLine(JSON.stringify(recordToJson(r)), stop);
  }
  // Timestamps never go back in the log (the broker stamps max(clock, last)): once a record is
  // past --until, so is everything after it. (The newest stamp: the last segment may be empty.)
  const newest = log
    .segments()
    .map((s) => s.lastTimestamp)
    .reduce<number | null>((max, ts) => (ts !== null && (max === null || ts > max) ? ts : max), null);
  return end >= filter.to || (newest !== null && newest > filter.until);
}

/** Prints what the broker appends until the signal, --to or --until; true if retention retired records
 *  in the range before they were read (each loss is named on stderr as it is found). */
async function followAndPrint(
  dir: string,
  at: { baseOffset: number; position: number; nextOffset: number },
  filter: Filter,
  signal: AbortSignal,
): Promise<boolean> {
  let lost = false;
  const onRetired = (from: number, to: number): void => {
    if (to <= filter.from || from >= filter.to) return;
    lost = true;
    console.error(`tapeq logcat: records ${from}–${to - 1} were retired (deleted or archived by retention) before they could be read; going on from ${to}`);
  };
  for await (const batch of followDirectory(dir, at, signal, onRetired)) {
    for (const r of batch) {
      if (r.offset >= filter.to || r.timestamp > filter.until) return lost;
      if (matches(r, filter)) await writeLine(JSON.stringify(recordToJson(r)), signal);
    }
  }
  return lost;
}
