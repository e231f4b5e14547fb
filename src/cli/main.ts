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

/** Errors whose message already says what is wrong and where (a corrupt segment with its byte and
 *  offset, a point the log cannot reach): printed as one line, like the tools print them. By
 *  name, so that this entry point does not load the modules that define them. */
function isExplainedError(error: unknown): boolean {
  return error instanceof Error && ['LogError', 'RecoveryError', 'PointError', 'ForkError'].includes(error.name);
}

/** One line for the operating-system errors a user causes by configuration (a port in use, an
 *  address this machine does not have, a data dir that is a file or not writable): no stack
 *  trace, which would suggest a bug. Null for anything else. */
function systemErrorLine(error: unknown): string | null {
  if (!(error instanceof Error)) return null;
  const { code, syscall, address, port, path } = error as NodeJS.ErrnoException & { address?: string; port?: number };
  const known: Record<string, string> = {
    EADDRINUSE: 'address already in use',
    EADDRNOTAVAIL: 'address not available on this machine',
    EACCES: 'permission denied',
    ENOTFOUND: 'host name not found',
    ENOTDIR: 'not a directory',
    EEXIST: 'exists and is not a directory',
    EROFS: 'read-only file system',
  };
  if (code === undefined || known[code] === undefined) return null;
  if (syscall === 'listen' || syscall === 'getaddrinfo') return `cannot listen on ${address ?? (error as { hostname?: string }).hostname ?? '?'}${port === undefined ? '' : `:${port}`}: ${known[code]} (${code})`;
  if (path !== undefined) return `cannot use ${path}: ${known[code]} (${code})`;
  return null;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    const line = error instanceof ConfigError || isExplainedError(error) ? (error as Error).message : systemErrorLine(error);
    if (line !== null) console.error(`tapeq: ${line}`);
    else console.error('tapeq:', error);
    process.exitCode = 1;
  },
);
