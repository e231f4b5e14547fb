// `tapeq serve [--repair]`: start the broker on DATA_DIR with the configuration from the
// environment. `--repair` quarantines a corrupt sealed segment instead of refusing to start.

import { loadConfig } from '../config.js';
import { serveUntilSignalled } from '../main.js';

export async function serveCommand(argv: string[]): Promise<number> {
  const unknown = argv.filter((a) => a !== '--repair');
  if (unknown.length > 0) {
    console.error(`tapeq serve: unknown option ${unknown[0]} (accepted: --repair)`);
    return 2;
  }
  const config = loadConfig(process.env);
  await serveUntilSignalled(config, { repair: argv.includes('--repair') });
  return 0;
}
