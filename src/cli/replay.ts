// `tapeq replay`: rebuilds the state as of a point of the log, read-only, and prints it.
//
//   --dir <path>                  data directory (default $DATA_DIR or ./data)
//   --until <offset|ISO time>     offset N: the state after records [0, N); a time: the state after
//                                 the last record stamped <= that time. Default: the log's end.
//   --job <id>                    print that job as it was then (the API's job JSON)
//   --queue <name>                restrict the summary to one queue (with --job: the job must be in it)
//   --digest                      print only the state digest (sha256 hex, as the determinism tests use)
//
// Without --job/--digest prints a JSON summary: the offset, the last record's time, and per queue
// the counts by state. Strictly read-only. Exit 0; 1 when the job or queue did not exist at that point or
// the state cannot be rebuilt; 2 on usage errors.

import { parseArgs } from 'node:util';
import { digestOf } from '../broker/digest.js';
import { countsOf, queueNames } from '../broker/queries.js';
import { jobView } from '../broker/view.js';
import { LogError } from '../log/log.js';
import { parsePoint, PointError, type Point } from '../history/point.js';
import { dataDirOf, stateAt } from '../history/state-at.js';
import { RecoveryError } from '../snapshot/recover-state.js';
import { queueExists, type State } from '../state/index.js';

interface ReplayArgs {
  dir: string;
  until: Point | undefined;
  job: string | null;
  queue: string | null;
  digest: boolean;
}

function parseReplayArgs(argv: string[]): ReplayArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      dir: { type: 'string' },
      until: { type: 'string' },
      job: { type: 'string' },
      queue: { type: 'string' },
      digest: { type: 'boolean', default: false },
    },
  });
  if (values.job === '') throw new PointError('--job: empty; name the job');
  if (values.queue === '') throw new PointError('--queue: empty; name the queue');
  if (values.digest === true && (values.job !== undefined || values.queue !== undefined)) {
    throw new PointError('--digest covers the whole state: it excludes --job and --queue');
  }
  return {
    dir: dataDirOf(values.dir),
    until: values.until === undefined ? undefined : parsePoint('--until', values.until),
    job: values.job ?? null,
    queue: values.queue ?? null,
    digest: values.digest === true,
  };
}

function summaryOf(state: State, queue: string | null): Record<string, unknown> {
  const names = queue === null ? queueNames(state) : [queue];
  const queues: Record<string, unknown> = {};
  for (const name of names) {
    const q = state.queues.get(name);
    queues[name] = { paused: q?.paused ?? false, counts: countsOf(q) };
  }
  return { jobs: queue === null ? state.jobs.size : [...state.jobs.values()].filter((j) => j.queue === queue).length, queues };
}

export async function replayCommand(argv: string[]): Promise<number> {
  let args: ReplayArgs;
  try {
    args = parseReplayArgs(argv);
  } catch (err) {
    console.error(`tapeq replay: ${(err as Error).message}`);
    return 2;
  }
  try {
    const { log, until, loaded } = await stateAt(args.dir, args.until, (line) => console.error(`tapeq replay: ${line}`));
    await log.close();
    const state = loaded.state;
    const at = { offset: until, timestamp: state.timestamp, time: until === 0 ? null : new Date(state.timestamp).toISOString() };
    if (args.digest) {
      console.log(digestOf(state));
      return 0;
    }
    if (args.job !== null) {
      const job = state.jobs.get(args.job);
      if (job === undefined || (args.queue !== null && job.queue !== args.queue)) {
        console.error(`tapeq replay: job ${args.job} did not exist${args.queue === null ? '' : ` in queue ${args.queue}`} at offset ${until}`);
        return 1;
      }
      console.log(JSON.stringify({ ...at, job: jobView(job) }, null, 2));
      return 0;
    }
    // As an unknown --job: zero counts would read as a queue that existed and was empty.
    if (args.queue !== null && !queueExists(state, args.queue) && !state.workers.has(args.queue)) {
      console.error(`tapeq replay: queue ${args.queue} did not exist at offset ${until}`);
      return 1;
    }
    const source = { fromSnapshot: loaded.fromSnapshot, replayed: loaded.replayed };
    console.log(JSON.stringify({ ...at, ...source, ...summaryOf(state, args.queue) }, null, 2));
    return 0;
  } catch (err) {
    if (err instanceof LogError || err instanceof RecoveryError) {
      console.error(`tapeq replay: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
