// Benchmark harness: `tapeq bench [scenario ...] [--json] [--svg <file>] [--seconds N] [--rounds N]
// [--jobs N] [--connections N] [--vs bunqueue]` (also `npm run bench -- …`). Each scenario measures tapeq
// and, in the same run, the reference it is judged against (bare fastify for HTTP, raw fs for the
// disk, an in-memory fastify queue for the cycle, direct calls for push workers, full replay for
// snapshots), because this machine is shared and only same-run ratios mean much. The load average
// is printed first for the same reason. With no scenario named, every scenario runs. `--rounds N`
// runs the server scenarios N times over (every scenario once per round, references included) and
// reports medians, with each round's ratios listed (bench-report.ts mergeRounds).
//
// Servers under test and load generators are separate processes on 127.0.0.1, bounded in time
// and killed at the end even on error (tools/bench-proc.ts).

import { writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { benchLog, formatBench } from './bench-log.js';
import { benchHttpBulk, benchHttpCycle, benchHttpPush, benchHttpPushInterval } from './bench-http.js';
import { BenchRun, defaultBenchOptions, type BenchOptions } from './bench-measure.js';
import { benchMemory, benchRecovery } from './bench-recovery.js';
import { formatReport, mergeRounds, renderSvg, withRatio, type Row, type ScenarioReport } from './bench-report.js';
import { tapeqEnvNames } from './bench-proc.js';
import { benchSnapshot } from './bench-snapshot.js';
import { benchWorkers } from './bench-workers.js';
import { benchWs } from './bench-ws.js';

export interface Scenario {
  summary: string;
  run: (run: BenchRun) => Promise<unknown>;
  format: (result: never) => string;
  /** Rows for the SVG chart, for results that are not a ScenarioReport. */
  rows?: (result: never) => Row[];
  /** One result from several rounds (`--rounds`); scenarios without it run once. */
  merge?: (results: never[]) => unknown;
}

/** A scenario that reports rows; `rounds: false` runs it once even with --rounds (its rows are
 *  labelled with what it measured, and it takes minutes). */
const report = (run: (r: BenchRun) => Promise<ScenarioReport>, summary: string, rounds = true): Scenario => ({
  summary,
  run,
  format: (r: ScenarioReport) => formatReport(r),
  rows: (r: ScenarioReport) => r.rows,
  ...(rounds ? { merge: (results: ScenarioReport[]) => mergeRounds(results) } : {}),
});

export async function benchWorkersReport(run: BenchRun, jobs = 20_000): Promise<ScenarioReport> {
  run.opts.log('bench: push workers (in-process broker, local endpoint, concurrency 50)');
  const r = await benchWorkers(jobs, 'always');
  // One direct call stands for one job (the body a worker sends), so both rows count jobs/s and
  // the chart draws them on one scale.
  const direct: Row = { subject: 'direct calls', measure: `same endpoint, same undici pools, concurrency ${r.concurrency}, one call per job`, value: r.directCallsPerSec, unit: 'jobs/s' };
  const worker: Row = { subject: 'tapeq', measure: `push worker, ${r.jobs} jobs, concurrency ${r.concurrency}, LOG_SYNC=always`, value: r.workerJobsPerSec, unit: 'jobs/s' };
  return {
    rows: [direct, withRatio(worker, direct)],
    notes: [
      `In-process (tools/bench-workers.ts): broker + dispatcher + endpoint share one event loop. Broker overhead ${r.overheadUsPerJob.toFixed(1)} µs/job.`,
      `Both sides warm up first (${r.warmupJobs.toLocaleString('en-US')} jobs through a worker on another queue, then as many direct calls, same pools); ` +
        `then the worker run is timed, then the direct calls. A fixed ${r.jobs.toLocaleString('en-US')} jobs each: --seconds and --jobs do not apply.`,
    ],
  };
}

const SCENARIOS: Record<string, Scenario> = {
  'http-push': report(benchHttpPush, 'HTTP push, 1 job/request, 50 connections, LOG_SYNC=always, vs bare fastify and raw fs'),
  'http-push-interval': report(benchHttpPushInterval, 'HTTP push with LOG_SYNC=interval, plain and "durable": true'),
  'http-bulk': report(benchHttpBulk, 'HTTP bulk push, 100 jobs/request, vs bare fastify'),
  'http-cycle': report(benchHttpCycle, 'push → pull → ack over HTTP, 20 consumers, vs an in-memory fastify queue'),
  ws: report(benchWs, 'WebSocket pipelined PUSH and PULL → ACK; SSE fan-out to 500 subscribers'),
  workers: report((run) => benchWorkersReport(run), 'push worker throughput (concurrency 50) vs direct calls'),
  recovery: report(benchRecovery, 'time to /ready with --jobs N jobs (default 1,000,000): full replay vs snapshot, and one scrub', false),
  memory: report(benchMemory, 'RSS with --jobs N waiting jobs (default 1,000,000): after the fill, after 60 s idle, after POST /gc', false),
  log: {
    summary: 'append (always, interval) and read+decode records/s beside the raw fs ceiling (in-process)',
    run: () => benchLog(),
    format: (r: Awaited<ReturnType<typeof benchLog>>) => formatBench(r),
  },
  snapshot: {
    summary: 'snapshot of 1,000,000 jobs: main-loop pause, size, write/load times, vs full replay (in-process)',
    run: () => benchSnapshot(),
    format: (r: Awaited<ReturnType<typeof benchSnapshot>>) =>
      ['| measure | value |', '|---|---:|', ...Object.entries(r).map(([k, v]) => `| ${k} | ${String(v)} |`)].join('\n'),
  },
};

export const scenarioNames = Object.keys(SCENARIOS);

const usage = `usage: tapeq bench [scenario ...] [--json] [--svg <file>] [--seconds N] [--rounds N] [--jobs N] [--connections N] [--vs bunqueue]

  --seconds N      measured seconds per run, 0.1 to 3600 (default 5; each run also has a 1 s warm-up);
                   workers, recovery, memory, log and snapshot measure fixed amounts instead
  --rounds N       run the scenarios N times (references too) and report medians, with each round's
                   ratios listed (default 1; recovery, memory, log and snapshot run once)
  --jobs N         jobs for recovery and memory (default 1,000,000)
  --connections N  HTTP connections for push (default 50)
  --vs bunqueue    also run http-push, http-bulk and http-cycle against bunqueue (SQLite and memory),
                   installed on demand into ~/.cache/tapeq-bench/bunqueue
  --json           JSON on stdout instead of markdown
  --svg <file>     also write an SVG bar chart

scenarios:`;

const exitCodes = '\nExit 0; 1 when a scenario failed (it is reported, and the others still run); 2 on a usage error.';

interface Args {
  names: string[];
  json: boolean;
  svg: string | null;
  opts: BenchOptions;
  rounds: number;
  help: boolean;
  errors: string[];
}

/** Longest `--seconds`: an hour per run, far below the 24.8 days a Node timer can hold. */
const secondsMax = 3_600;

/** The scenarios `--vs bunqueue` adds competitors to (and runs when none is named). */
const vsScenarios = ['http-push', 'http-bulk', 'http-cycle'];

function parseArgs(argv: string[], scenarios: Record<string, Scenario>): Args {
  const args: Args = { names: [], json: false, svg: null, opts: { ...defaultBenchOptions, vs: [] }, rounds: 1, help: false, errors: [] };
  let i = 0;
  // A flag's value is the next argument, unless that is another flag (`--svg --json`).
  const value = (flag: string): string | null => {
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) {
      args.errors.push(`${flag} needs a value`);
      return null;
    }
    i += 1;
    return next;
  };
  const number = (flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const text = value(flag);
    if (text === null) return Number.NaN;
    const n = Number(text);
    if (!Number.isFinite(n) || n < min || n > max) {
      args.errors.push(max === Number.MAX_SAFE_INTEGER ? `${flag} needs a number ≥ ${min}` : `${flag} needs a number from ${min} to ${max}`);
    }
    return n;
  };
  for (; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--help' || a === '-h') args.help = true;
    else if (a === '--json') args.json = true;
    else if (a === '--svg') args.svg = value(a);
    else if (a === '--seconds') args.opts.seconds = number(a, 0.1, secondsMax);
    else if (a === '--rounds') args.rounds = Math.floor(number(a, 1));
    else if (a === '--jobs') args.opts.jobs = Math.floor(number(a, 1));
    else if (a === '--connections') args.opts.connections = Math.floor(number(a, 1));
    else if (a === '--vs') {
      const who = value(a);
      if (who === 'bunqueue') args.opts.vs.push(who);
      else if (who !== null) args.errors.push(`--vs: unknown competitor ${who} (known: bunqueue)`);
    } else if (a.startsWith('--')) args.errors.push(`unknown option ${a}`);
    else if (a in scenarios) {
      if (!args.names.includes(a)) args.names.push(a);
    } else args.errors.push(`unknown scenario ${a}`);
  }
  return args;
}

/** Machine and load, printed before the numbers: the machine is shared. */
export function machineLine(): string {
  const cpu = cpus();
  const [one, five, fifteen] = loadavg().map((n) => n.toFixed(2));
  return (
    `${cpu.length} vCPU (${cpu[0]?.model.trim() ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ` +
    `load average ${one} ${five} ${fifteen} (at ${new Date().toISOString()})`
  );
}

/** What the tapeq servers under test inherit: none of tapeq's variables (tools/bench-proc.ts). */
function serverEnvLine(): string {
  const stripped = tapeqEnvNames.filter((name) => process.env[name] !== undefined);
  return (
    'tapeq servers under test run with tapeq\'s defaults except the variables each scenario sets (listed under it)' +
    (stripped.length > 0 ? `; set in this shell and not passed on: ${stripped.join(', ')}.` : '.')
  );
}

/** What one invocation reports: each scenario's result (or failure) as it is shown, in markdown
 *  unless `json`, plus what the JSON and the chart need. */
class Report {
  readonly results: Record<string, unknown> = {};
  readonly groups: Array<{ scenario: string; rows: Row[] }> = [];
  readonly tapeqEnvs: Record<string, string> = {};
  readonly failures = new Map<string, string>();

  constructor(private readonly json: boolean) {}

  show(name: string, scenario: Scenario, result: unknown): void {
    this.results[name] = result;
    if (scenario.rows) this.groups.push({ scenario: name, rows: scenario.rows(result as never) });
    const env = this.tapeqEnvs[name] === undefined ? '' : `${this.tapeqEnvs[name]}\n\n`;
    if (!this.json) console.log(`\n## ${name}\n\n${env}${scenario.format(result as never)}`);
  }

  showFailure(name: string): void {
    this.results[name] = { error: this.failures.get(name) };
    if (!this.json) console.log(`\n## ${name}\n\nFAILED: ${this.failures.get(name) ?? ''}`);
  }
}

/** Runs the selected scenarios args.rounds times. With one round each result is shown as it
 *  comes; with more, each round's tables go to stderr and the results are returned per scenario.
 *  A scenario that throws is recorded as failed and not run again; the others go on. */
async function runRounds(args: Args, selected: string[], scenarios: Record<string, Scenario>, report: Report): Promise<Map<string, unknown[]>> {
  const perRound = new Map<string, unknown[]>();
  // Installs (bunqueue) are made once for all rounds; each round measures its references anew.
  const installs = new Map<string, Promise<unknown>>();
  for (let round = 1; round <= args.rounds; round++) {
    if (args.rounds > 1) args.opts.log(`bench: round ${round} of ${args.rounds}`);
    const run = new BenchRun(args.opts, installs);
    for (const name of selected) {
      const scenario = scenarios[name];
      if (scenario === undefined || report.failures.has(name) || (round > 1 && scenario.merge === undefined)) continue;
      let result: unknown;
      try {
        result = await scenario.run(run);
      } catch (err) {
        run.takeTapeqEnvs();
        const message = err instanceof Error ? err.message : String(err);
        report.failures.set(name, args.rounds > 1 ? `round ${round}: ${message}` : message);
        args.opts.log(`bench: ${name} failed: ${message}`);
        if (args.rounds === 1) report.showFailure(name);
        continue;
      }
      const envs = run.takeTapeqEnvs();
      if (envs.length > 0) report.tapeqEnvs[name] = `tapeq server environment: defaults except ${envs.join('; or ')}`;
      if (args.rounds === 1) {
        report.show(name, scenario, result);
        continue;
      }
      perRound.set(name, [...(perRound.get(name) ?? []), result]);
      args.opts.log(`bench: round ${round}, ${name}:\n${scenario.format(result as never)}`);
    }
  }
  return perRound;
}

/** Runs the scenarios asked for and prints their report. A scenario that throws is reported as
 *  `{error}` (a section of its own in markdown, its entry in the JSON) and the others still run;
 *  the exit code is then 1. `scenarios` is the registry (tests pass their own). */
export async function benchMain(argv: string[], scenarios: Record<string, Scenario> = SCENARIOS): Promise<number> {
  const args = parseArgs(argv, scenarios);
  if (args.help || args.errors.length > 0) {
    for (const e of args.errors) console.error(`tapeq bench: ${e}`);
    // Asked for, the usage is the answer (stdout, exit 0); after a mistake it explains it.
    const print = args.errors.length > 0 ? console.error : console.log;
    print(usage);
    for (const [name, s] of Object.entries(scenarios)) print(`  ${name.padEnd(19)} ${s.summary}`);
    print(exitCodes);
    return args.errors.length > 0 ? 2 : 0;
  }
  let selected = args.names.length > 0 ? args.names : Object.keys(scenarios);
  if (args.names.length === 0 && args.opts.vs.length > 0) selected = vsScenarios;
  const withoutVs = args.opts.vs.length > 0 ? selected.filter((name) => !vsScenarios.includes(name)) : [];
  if (withoutVs.length > 0) {
    console.error(`tapeq bench: --vs ${args.opts.vs.join(', ')} applies to ${vsScenarios.join(', ')} only; ${withoutVs.join(', ')} run${withoutVs.length === 1 ? 's' : ''} without it`);
  }
  const machineBefore = machineLine();
  const serverEnv = serverEnvLine();
  if (!args.json) console.log(`# tapeq bench\n\n${machineBefore}\n\n\`tapeq bench ${argv.join(' ')}\`\n\n${serverEnv}`);
  const report = new Report(args.json);
  const perRound = await runRounds(args, selected, scenarios, report);
  // Several rounds: every scenario once all are in, in the order asked for; a scenario that failed
  // in any round is shown as failed (its earlier rounds stay in the JSON's `rounds`).
  if (args.rounds > 1) {
    for (const name of selected) {
      const scenario = scenarios[name] as Scenario;
      const rounds = perRound.get(name);
      if (report.failures.has(name)) report.showFailure(name);
      else if (rounds !== undefined) report.show(name, scenario, scenario.merge !== undefined ? scenario.merge(rounds as never[]) : rounds[0]);
    }
  }
  const machineAfter = machineLine();
  const rounds = args.rounds > 1 ? { rounds: Object.fromEntries(perRound) } : {};
  const { results, tapeqEnvs, groups, failures } = report;
  if (args.json) console.log(JSON.stringify({ machineBefore, machineAfter, argv, serverEnv, tapeqEnvs, results, ...rounds }, null, 2));
  else console.log(`\n${machineAfter}`);
  if (args.svg !== null) {
    await writeFile(args.svg, renderSvg(groups, `tapeq bench — ${machineBefore}`));
    if (!args.json) console.log(`\nSVG chart written to ${args.svg}`);
  }
  if (failures.size > 0) console.error(`tapeq bench: failed: ${[...failures.keys()].join(', ')}`);
  return failures.size > 0 ? 1 : 0;
}
