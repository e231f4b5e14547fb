// `tapeq serve [--repair] [--until <offset|ISO time>]`: start the broker on DATA_DIR with the
// configuration from the environment. `--repair` starts despite a corrupt sealed segment: the log
// is cut at the first bad record and the rest moves to a quarantine directory (unless the state
// before the cut could not be rebuilt: then it refuses and moves nothing). `--until` starts a
// READ-ONLY server on the state as of that point (see src/history/point.ts for how a time
// resolves): the log is opened read-only, nothing runs in the background, every write answers 409.
// A start refused for a damaged record (without --repair) says, in a second line, what can be done.

import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, misspeltVariableWarnings } from '../config.js';
import { parsePoint, type Point } from '../history/point.js';
import { LogError } from '../log/log.js';
import { serveUntilSignalled } from '../main.js';

export async function serveCommand(argv: string[]): Promise<number> {
  let repair: boolean;
  let until: Point | undefined;
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      options: { repair: { type: 'boolean', default: false }, until: { type: 'string' } },
    });
    repair = values.repair === true;
    until = values.until === undefined ? undefined : parsePoint('--until', values.until);
  } catch (err) {
    console.error(`tapeq serve: ${(err as Error).message} (accepted: --repair, --until <offset|ISO time>)`);
    return 2;
  }
  if (repair && until !== undefined) {
    console.error('tapeq serve: --repair and --until exclude each other (--until never changes the data directory)');
    return 2;
  }
  for (const warning of misspeltVariableWarnings(process.env)) console.error(`tapeq: WARNING ${warning}`);
  const config = loadConfig(process.env);
  try {
    await serveUntilSignalled(config, { repair, ...(until !== undefined ? { until } : {}) });
  } catch (err) {
    const damaged = repair || until !== undefined ? null : damagedRecordOf(err);
    if (damaged === null) throw err;
    // The refusal's line stays as it was (operators grep it); the next one says what can be done.
    console.error(`tapeq: ${damaged.message}`);
    console.error(`tapeq: ${waysOn(damaged.file, damaged.offset)}`);
    return 1;
  }
  return 0;
}

/** The damaged record (file and offset) a start refused, or null for any other failure. */
function damagedRecordOf(err: unknown): { message: string; file: string; offset: number } | null {
  if (!(err instanceof LogError) || (err.code !== 'LOG_CORRUPT' && err.code !== 'LOG_GAP')) return null;
  if (err.file === undefined || err.offset === undefined) return null;
  return { message: err.message, file: err.file, offset: err.offset };
}

/** What an operator can do about a damaged record at `offset`: what --repair does (recovery.ts,
 *  quarantine; main.ts moves the snapshots past the cut) and what recover --until keeps. */
function waysOn(file: string, offset: number): string {
  return (
    `to go on: restore ${basename(file)} from a backup if one holds it; else copy the data directory first, then either ` +
    `\`tapeq serve --repair\` (cuts the log before offset ${offset}: the rest of that segment and every later one move to ` +
    `log/quarantine-<ms>/, snapshots past the cut to snapshots/beyond-log-<ms>/, and the server starts on the state before it; ` +
    `records from ${offset} on, acknowledged ones included, are set aside) or \`tapeq recover --until ${offset} --out <new dir>\` ` +
    `(writes the state before it into a new data directory, this one left as it is)`
  );
}
