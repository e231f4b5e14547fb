// `tapeq serve [--repair] [--until <offset|ISO time>]`: start the broker on DATA_DIR with the
// configuration from the environment. `--repair` starts despite a corrupt sealed segment: the log
// is cut at the first bad record and the rest moves to a quarantine directory (unless the state
// before the cut could not be rebuilt: then it refuses and moves nothing). `--until` starts a
// READ-ONLY server on the state as of that point (see src/history/point.ts for how a time
// resolves): the log is opened read-only, nothing runs in the background, every write answers 409.

import { parseArgs } from 'node:util';
import { loadConfig, misspeltVariableWarnings } from '../config.js';
import { parsePoint, type Point } from '../history/point.js';
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
  await serveUntilSignalled(config, { repair, ...(until !== undefined ? { until } : {}) });
  return 0;
}
