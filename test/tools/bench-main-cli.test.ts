// `tapeq bench` itself (tools/bench.ts benchMain) with stand-in scenarios that start nothing: how
// it parses its arguments and how it reports a scenario that fails.

import t from 'tap';
import { benchMain, type Scenario } from '../../tools/bench.js';
import { formatReport, type ScenarioReport } from '../../tools/bench-report.js';

const report: ScenarioReport = { rows: [{ subject: 'tapeq', measure: 'm', value: 1, unit: 'jobs/s' }], notes: [] };

function scenario(run: () => Promise<ScenarioReport>, calls: string[], name: string): Scenario {
  return {
    summary: name,
    run: () => {
      calls.push(name);
      return run();
    },
    format: (r: ScenarioReport) => formatReport(r),
    rows: (r: ScenarioReport) => r.rows,
  };
}

/** benchMain's exit code and what it printed on stdout and stderr (console.log / console.error). */
async function main(argv: string[], scenarios: Record<string, Scenario>): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await benchMain(argv, scenarios);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

t.test('a-failing-scenario-is-reported-the-others-still-run-and-the-exit-is-1', async (t) => {
  const calls: string[] = [];
  const scenarios = {
    bad: scenario(() => Promise.reject(new Error('server not ready')), calls, 'bad'),
    good: scenario(async () => report, calls, 'good'),
  };
  const json = await main(['bad', 'good', '--json'], scenarios);
  t.equal(json.code, 1);
  t.same(calls, ['bad', 'good']);
  const results = (JSON.parse(json.out) as { results: Record<string, unknown> }).results;
  t.same(results.bad, { error: 'server not ready' });
  t.same(results.good, report);
  const md = await main(['bad', 'good'], scenarios);
  t.equal(md.code, 1);
  t.match(md.out, /## bad\n\nFAILED: server not ready/);
  t.match(md.out, /## good\n\n\| subject/);
  const rounds = await main(['bad', 'good', '--rounds', '2', '--json'], scenarios);
  t.equal(rounds.code, 1);
  t.same((JSON.parse(rounds.out) as { results: Record<string, unknown> }).results.bad, { error: 'round 1: server not ready' });
});

t.test('the-header-names-the-tapeq-variables-not-passed-on', async (t) => {
  const before = process.env.LOG_SYNC_INTERVAL_MS;
  process.env.LOG_SYNC_INTERVAL_MS = '50';
  try {
    const md = await main(['good'], { good: scenario(async () => report, [], 'good') });
    t.match(md.out, /tapeq servers under test run with tapeq's defaults except the variables each scenario sets .*not passed on: LOG_SYNC_INTERVAL_MS\./);
  } finally {
    if (before === undefined) delete process.env.LOG_SYNC_INTERVAL_MS;
    else process.env.LOG_SYNC_INTERVAL_MS = before;
  }
});

t.test('a-flag-value-that-is-a-flag-is-refused', async (t) => {
  const good = { good: scenario(async () => report, [], 'good') };
  const svg = await main(['--svg', '--json'], good);
  t.equal(svg.code, 2);
  t.match(svg.err, /--svg needs a value/);
  t.match((await main(['--seconds'], good)).err, /--seconds needs a value/);
});

t.test('seconds-has-an-upper-bound', async (t) => {
  const good = { good: scenario(async () => report, [], 'good') };
  const long = await main(['--seconds', '3601'], good);
  t.equal(long.code, 2);
  t.match(long.err, /--seconds needs a number from 0\.1 to 3600/);
});

t.test('a-scenario-named-twice-runs-once', async (t) => {
  const calls: string[] = [];
  const code = (await main(['good', 'good', '--json'], { good: scenario(async () => report, calls, 'good') })).code;
  t.equal(code, 0);
  t.same(calls, ['good']);
});

t.test('vs-bunqueue-names-the-scenarios-it-does-not-apply-to', async (t) => {
  const calls: string[] = [];
  const scenarios = { ws: scenario(async () => report, calls, 'ws'), memory: scenario(async () => report, calls, 'memory') };
  const run = await main(['ws', 'memory', '--vs', 'bunqueue', '--json'], scenarios);
  t.equal(run.code, 0);
  t.match(run.err, /--vs bunqueue applies to http-push, http-bulk, http-cycle only; ws, memory run without it/);
});
