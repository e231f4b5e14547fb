// Benchmark harness: `tapeq bench [scenario ...] [--json]` (also `npm run bench`). Each scenario
// measures tapeq and, in the same run, the reference it is judged against (raw fs for the log,
// full replay for snapshots), because this machine is shared and only same-run ratios mean much.
// With no scenario named, every scenario runs.

import { benchLog, formatBench } from './bench-log.js';
import { benchSnapshot } from './bench-snapshot.js';

interface Scenario {
  summary: string;
  run: (args: { json: boolean }) => Promise<unknown>;
  format: (result: never) => string;
}

const SCENARIOS: Record<string, Scenario> = {
  log: {
    summary: 'append (always, interval) and read+decode records/s beside the raw fs ceiling',
    run: () => benchLog(),
    format: (r: Awaited<ReturnType<typeof benchLog>>) => formatBench(r),
  },
  snapshot: {
    summary: 'snapshot of 1,000,000 jobs: main-loop pause, size, write/load times, vs full replay',
    run: () => benchSnapshot(),
    format: (r: Awaited<ReturnType<typeof benchSnapshot>>) =>
      ['| measure | value |', '|---|---:|', ...Object.entries(r).map(([k, v]) => `| ${k} | ${String(v)} |`)].join('\n'),
  },
};

export async function benchMain(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(n in SCENARIOS));
  if (argv.includes('--help') || unknown.length > 0) {
    if (unknown.length > 0) console.error(`tapeq bench: unknown scenario ${unknown.join(', ')}`);
    console.error('usage: tapeq bench [scenario ...] [--json]\n\nscenarios:');
    for (const [name, s] of Object.entries(SCENARIOS)) console.error(`  ${name.padEnd(10)} ${s.summary}`);
    return unknown.length > 0 ? 2 : 0;
  }
  const selected = names.length > 0 ? names : Object.keys(SCENARIOS);
  const results: Record<string, unknown> = {};
  for (const name of selected) {
    const scenario = SCENARIOS[name];
    if (scenario === undefined) continue;
    const result = await scenario.run({ json });
    results[name] = result;
    if (!json) console.log(`\n## ${name}\n\n${scenario.format(result as never)}`);
  }
  if (json) console.log(JSON.stringify(results, null, 2));
  return 0;
}
