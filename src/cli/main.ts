#!/usr/bin/env node
// The `tapeq` executable: one binary, one subcommand per tool. `serve` is the default.
// Each subcommand module exports `async (argv) => exitCode`; this file only dispatches.

import { ConfigError } from '../config.js';

type Command = (argv: string[]) => Promise<number>;

/** A command: its one-line summary for `tapeq --help`, and the usage `tapeq <command> --help`
 *  prints (flags and exit codes; the module's header comment says the rest). */
interface CommandEntry {
  summary: string;
  usage: string;
  load: () => Promise<Command>;
}

const timePoint = '<offset|ISO time>';
const exits = 'Exit 0; 1 on a log error; 2 on a usage error.';

const COMMANDS: Record<string, CommandEntry> = {
  serve: {
    summary: 'start the broker (default)',
    usage: `usage: tapeq serve [--repair] [--until ${timePoint}]

  --repair          start despite a corrupt sealed segment: the log is cut at the first bad record,
                    the rest of that segment and every later segment move to log/quarantine-<ms>/
                    (named on stderr), and the records after the cut are no longer served; it
                    refuses, moving nothing, when no snapshot could rebuild the state before the
                    cut (retention removed the log's beginning): restore the file from a copy
  --until <point>   a READ-ONLY server on the state as of that point: offset N = after records
                    [0, N); a time = after the last record stamped at or before it. Writes answer 409;
                    no SSE or WebSocket streams (404), no timers, push workers or retention.

Configuration comes from the environment (README, "Configuration"); DATA_DIR holds the log, and
one writing server at a time (DATA_DIR/LOCK). Exit 0 after a clean shutdown (SIGTERM, SIGINT); 1
when it cannot start (invalid configuration, a data directory another server holds or that cannot
be used, a damaged log, a port in use) or its shutdown fails; 2 on a usage error.`,
    load: async () => (await import('./serve.js')).serveCommand,
  },
  logcat: {
    summary: 'print log records as NDJSON (--from --to --since --until --kind --queue --job --follow)',
    usage: `usage: tapeq logcat [--dir <path>] [filters] [--follow]

  --dir <path>       data directory or its log/ directory (default $DATA_DIR or ./data)
  --from <offset>    first offset (inclusive)          --to <offset>    end offset (exclusive)
  --since <time>     stamped at or after (ISO 8601 or epoch ms)
  --until <time>     stamped at or before (with --follow, the command ends at the first record
                     past it, as it does at --to)
  --kind <type>      record type; repeatable or comma separated (e.g. pushed,completed)
  --queue <name>     records of that queue
  --job <id>         records touching that job, and the completions and removals of the jobs it
                     waited for that released it (as GET /jobs/:id/history)
  --follow           keep printing records a running broker appends (Ctrl-C to stop); records
                     retention retires before they are printed are named on stderr and skipped,
                     and the command, when it stops, ends with 1. In a pipeline whose reader
                     leaves (\`logcat --follow | head -n 1\`), it ends at its next write, so on
                     an idle log only once a record is appended: Node cannot watch an idle pipe
                     for its reader. Ctrl-C ends the pipeline at once; --to or --until bound it.

Beside a running broker, records are printed once written, before the broker's fdatasync: a
machine crash (not a process crash) can still cut the last ones, and the restarted broker then
writes other records at their offsets (see README, "Command line").

A damaged log (a corrupt record, an offset gap) is read only as far as the range needs: the
records before the damage are printed, and if the range reaches it, it is named on stderr (exit 1).

Read-only. Exit 0; 1 on a log error, damage the range reaches or records lost to retention; 2 on
a usage error.`,
    load: async () => (await import('./logcat.js')).logcatCommand,
  },
  verify: {
    summary: 'check every frame, snapshot and checksum; exit 1 naming the first bad record',
    usage: `usage: tapeq verify [--dir <path>]

Checks every segment header, frame length and checksum, that every record decodes and that
offsets run without a gap; then every snapshot's checksums, that none covers records past the
log's end (records the log lost), and that a log whose beginning retention removed has a snapshot
to start from. Prints a summary, ending with how far back \`recover --until\` reaches (offset 0
while the log starts there, else the oldest sound snapshot the log extends, with the time of its
last record); on damage names the file, byte, offset and problem.
Read-only. Exit 0 when the log is sound; 1 on damage (a torn tail counts); 2 on a usage error.`,
    load: async () => (await import('./verify.js')).verifyCommand,
  },
  replay: {
    summary: 'rebuild the state as of --until <offset|ISO time>; print a summary, --job <id> or --digest',
    usage: `usage: tapeq replay [--dir <path>] [--until ${timePoint}] [--job <id>] [--queue <name>] [--digest]

  --until <point>   offset N = after records [0, N); a time = after the last record stamped at or
                    before it (default: the log's end)
  --job <id>        print that job as it was then (the API's job JSON)
  --queue <name>    restrict the summary to one queue (with --job: the job must be in it)
  --digest          print only the state digest (sha256 hex)

Read-only. Exit 0; 1 when the job did not exist then or the state cannot be rebuilt; 2 on a usage error.`,
    load: async () => (await import('./replay.js')).replayCommand,
  },
  recover: {
    summary: 'point-in-time recovery: --until <offset|ISO time> --out <new dir> [--dry-run]',
    usage: `usage: tapeq recover --until ${timePoint} --out <new dir> [--dir <path>] [--dry-run]

Writes a NEW data directory whose state is exactly the state at the point, which \`tapeq serve\`
starts from; <new dir> must not exist or be empty, and the source is only read. --dry-run writes
nothing and prints what the real run would: what is kept and what left out, the segments, the
snapshot at the cut and the fallback snapshot a compacted log's fork gets (all but the new log
id). Only the records the point needs must be sound: damage after it is named in the report
(laterSegments), not a refusal. Exit 0; 1 when recovery is impossible; 2 on a usage error.`,
    load: async () => (await import('./recover.js')).recoverCommand,
  },
  export: {
    summary: 'write records as an Avro object container file: --avro <file> [--since --until --queue]',
    usage: `usage: tapeq export --avro <file> [--dir <path>] [--since <time>] [--until ${timePoint}] [--queue <name>]

  --since <time>    first record stamped at or after it (ISO 8601)
  --until <point>   offset N = records before N; a time = records stamped at or before it
  --queue <name>    only that queue's records

Writes deflate blocks with the schema in src/history/export-schema.json, through a temporary file
renamed at the end. ${exits}`,
    load: async () => (await import('./export.js')).exportCommand,
  },
  bench: {
    summary: 'run the benchmarks (tapeq bench --help lists the scenarios)',
    usage: '', // the harness prints its own
    load: async () => (await import('./bench.js')).benchCommand,
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return [
    'usage: tapeq <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    '`tapeq <command> --help` lists its options. DATA_DIR (default ./data) picks the data directory.',
  ].join('\n');
}

/** `tapeq replay | grep -q …`: a reader that leaves early closes the pipe and the rest of the
 *  output has nowhere to go. That is no failure of a tool, which ends with its own exit code, not
 *  with an unhandled EPIPE and its stack trace (logcat also stops reading the log then). */
function ignoreClosedStdout(error: NodeJS.ErrnoException): void {
  if (error.code !== 'EPIPE') throw error;
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
  if (command.usage !== '' && (args.includes('--help') || args.includes('-h'))) {
    console.log(command.usage);
    return 0;
  }
  if (name !== 'serve') process.stdout.on('error', ignoreClosedStdout);
  return (await command.load())(args);
}

/** Errors whose message already says what is wrong and where (a corrupt segment with its byte and
 *  offset, a point the log cannot reach, a data directory another server holds): printed as one line, like the tools print them. By
 *  name, so that this entry point does not load the modules that define them. */
function isExplainedError(error: unknown): boolean {
  return error instanceof Error && ['LogError', 'RecoveryError', 'PointError', 'ForkError', 'DataDirLockError'].includes(error.name);
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
    ENOSPC: 'no space left on device',
    EPERM: 'operation not permitted',
    ENAMETOOLONG: 'name too long',
    // A recursive mkdir reports a directory it cannot create on a read-only file system so.
    ENOENT: 'cannot be created (no such directory, or on a read-only file system)',
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
