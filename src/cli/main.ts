#!/usr/bin/env node
// The `tapeq` executable: one binary, one subcommand per tool. `serve` is the default.
// Each subcommand module exports `async (argv) => exitCode`; this file only dispatches.

import { ConfigError } from '../config.js';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: { summary: 'start the broker (default)', load: async () => (await import('./serve.js')).serveCommand },
  logcat: {
    summary: 'print log records as NDJSON (--from --to --since --until --kind --queue --job --follow)',
    load: async () => (await import('./logcat.js')).logcatCommand,
  },
  verify: {
    summary: 'check every frame and checksum; exit 1 naming the first bad record',
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  replay: {
    summary: 'rebuild the state as of --until <offset|ISO time>; print a summary, --job <id> or --digest',
    load: async () => (await import('./replay.js')).replayCommand,
  },
  recover: {
    summary: 'point-in-time recovery: --until <offset|ISO time> --out <new dir> [--dry-run]',
    load: async () => (await import('./recover.js')).recoverCommand,
  },
  export: {
    summary: 'write records as an Avro object container file: --avro <file> [--since --until --queue]',
    load: async () => (await import('./export.js')).exportCommand,
  },
  bench: { summary: 'run the benchmarks (see --help)', load: async () => (await import('./bench.js')).benchCommand },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return ['usage: tapeq <command> [options]', '', 'commands:', ...lines, '', 'DATA_DIR (default ./data) picks the data directory.'].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') {
    console.log(usage());
    return 0;
  }
  const name = first === undefined || first.startsWith('-') ? 'serve' : first;
  const args = first === undefined || first.startsWith('-') ? argv : rest;
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`tapeq: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  return (await command.load())(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof ConfigError) console.error(`tapeq: ${error.message}`);
    else console.error('tapeq:', error);
    process.exitCode = 1;
  },
);
