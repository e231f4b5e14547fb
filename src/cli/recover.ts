// `tapeq recover --until <offset|ISO time> --out <dir> [--dir <path>] [--dry-run]`:
// point-in-time recovery into a NEW data directory that `tapeq serve` starts from. The state of
// <out> is exactly the state at the point (offset N: after records [0, N); a time: after the last
// record stamped <= it). See src/history/fork.ts for what is copied: the segments before the cut,
// the segment holding it truncated at the frame boundary, a new log id, and a snapshot at the cut.
// The source directory is only read. <out> must not exist or be empty, and not lie inside the source.
//
// --dry-run writes nothing: it prints what would be kept and what would be left out (records
// after the cut: count, offset range, time range, counts per record type), and the segments and
// snapshots the real run would write (all but the new log id, which is drawn then). Output is
// JSON on stdout. Exit 0; 1 when recovery is impossible; 2 on usage errors.
//
// The state and the fork need only the records up to the point; damage after it, in the point's
// segment or a later one, does not stop recovery (the state just before bit rot is what it is
// for). The later segments are then verified for the report alone (leftOut counts their records):
// `laterSegments` says whether they are sound, or names the damage found, and leftOut then counts
// only the records before it.

import { parseArgs } from 'node:util';
import { LogError, openReadOnly, type Log } from '../log/log.js';
import { ForkError, checkOutsideSource, checkTarget, forkSnapshotPaths, planFork, writeFork } from '../history/fork.js';
import { parsePoint, PointError, describePoint, type Point } from '../history/point.js';
import { dataDirOf, sourcePathsOf, stateAt } from '../history/state-at.js';
import { RecoveryError } from '../snapshot/recover-state.js';

interface RecoverArgs {
  dir: string;
  until: Point;
  out: string;
  dryRun: boolean;
}

function parseRecoverArgs(argv: string[]): RecoverArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      dir: { type: 'string' },
      until: { type: 'string' },
      out: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  if (values.until === undefined) throw new PointError('--until <offset|ISO time> is required');
  if (values.out === undefined) throw new PointError('--out <dir> is required');
  if (values.out === '') throw new PointError('--out: empty; name the new data directory');
  return { dir: dataDirOf(values.dir), until: parsePoint('--until', values.until), out: values.out, dryRun: values['dry-run'] === true };
}

/** The records a cut at `until` leaves out. */
async function leftOut(log: Log, until: number): Promise<Record<string, unknown>> {
  let count = 0;
  let timeFirst: number | null = null;
  let timeLast: number | null = null;
  const types: Record<string, number> = {};
  for await (const batch of log.readBatches(until)) {
    for (const r of batch) {
      count++;
      timeFirst ??= r.timestamp;
      timeLast = r.timestamp;
      types[r.body.type] = (types[r.body.type] ?? 0) + 1;
    }
  }
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return {
    records: count,
    offsets: count === 0 ? null : { first: until, last: log.durableOffset - 1 },
    times: count === 0 ? null : { first: iso(timeFirst), last: iso(timeLast) },
    types,
  };
}

interface LaterSegments {
  /** The whole log when it verified, for leftOut; null when damage was found after the point. */
  whole: Log | null;
  report: {
    /** Segments after the one that reaches the point: the fork needs none of them. */
    segments: number;
    /** Where the records the open for the point did not verify begin: the first offset of those
     *  segments, or the damaged record that ended it (null when there are none). */
    fromOffset: number | null;
    /** Read and sound: leftOut counts their records. */
    verified: boolean;
    /** What stopped their verification (leftOut then stops at fromOffset). */
    damaged: { file: string | null; byte: number | null; offset: number | null; error: string } | null;
  };
}

/** Verifies what `log` (opened up to the point, and no further than damage after it) did not:
 *  the segments after the point's, unless the open already found damage. */
async function laterSegments(log: Log, until: number, logger: (line: string) => void): Promise<LaterSegments> {
  const segments = log.openReport.notRead.length;
  const fromOffset = log.durableOffset;
  let damage = log.openReport.damage;
  if (damage === null) {
    if (segments === 0) return { whole: log, report: { segments, fromOffset: null, verified: true, damaged: null } };
    try {
      const whole = await openReadOnly(log.dir, logger, { knownSealed: log.sealedScanResults() });
      return { whole, report: { segments, fromOffset, verified: true, damaged: null } };
    } catch (err) {
      if (!(err instanceof LogError)) throw err;
      damage = err;
    }
  }
  logger(
    `${damage.message}; the state at offset ${until} does not need it: recovery goes on from records [${log.firstOffset}, ${until}), ` +
      `all verified, and leftOut counts records only up to offset ${fromOffset}`,
  );
  const damaged = { file: damage.file ?? null, byte: damage.position ?? null, offset: damage.offset ?? null, error: damage.message };
  return { whole: null, report: { segments, fromOffset, verified: false, damaged } };
}

export async function recoverCommand(argv: string[]): Promise<number> {
  let args: RecoverArgs;
  try {
    args = parseRecoverArgs(argv);
  } catch (err) {
    console.error(`tapeq recover: ${(err as Error).message}`);
    return 2;
  }
  try {
    await checkTarget(args.out);
    const source = await sourcePathsOf(args.dir);
    await checkOutsideSource(args.out, source.dataDir);
    const logger = (line: string) => console.error(`tapeq recover: ${line}`);
    const { log, until, loaded } = await stateAt(args.dir, args.until, logger);
    let later: LaterSegments | null = null;
    try {
      later = await laterSegments(log, until, logger);
      const kept = { records: until - log.firstOffset, offsets: { first: log.firstOffset, next: until }, lastTime: until > log.firstOffset ? new Date(loaded.state.timestamp).toISOString() : null };
      const report = { point: describePoint(args.until), until, kept, leftOut: await leftOut(later.whole ?? log, until), laterSegments: later.report };
      if (args.dryRun) {
        const plan = await planFork(log, until, source.snapshotsDir);
        const { snapshot, fallbackSnapshot } = forkSnapshotPaths(args.out, until, plan);
        console.log(JSON.stringify({ dryRun: true, out: args.out, ...report, segments: plan.segments, snapshot, fallbackSnapshot }, null, 2));
        return 0;
      }
      const fork = await writeFork(log, loaded.state, until, args.out, source.snapshotsDir);
      const { logId, segments, snapshot, fallbackSnapshot } = fork;
      console.log(JSON.stringify({ out: args.out, ...report, logId, segments, snapshot, fallbackSnapshot }, null, 2));
      return 0;
    } finally {
      const whole = later?.whole ?? log;
      if (whole !== log) await whole.close();
      await log.close();
    }
  } catch (err) {
    if (err instanceof LogError || err instanceof RecoveryError || err instanceof ForkError) {
      console.error(`tapeq recover: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
