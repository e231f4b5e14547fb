// Tiny-scale options for the bench scenario tests: a fraction of a second per run, no warm-up,
// a few connections and jobs. The tests check that each scenario runs end to end against real
// processes and returns sane numbers; they never judge speed (the machine is shared).

import type { Test } from 'tap';
import { BenchRun, defaultBenchOptions } from '../../tools/bench-measure.js';
import type { Row, ScenarioReport } from '../../tools/bench-report.js';

export function tinyRun(): BenchRun {
  return new BenchRun({ ...defaultBenchOptions, seconds: 0.3, warmupSeconds: 0, jobs: 500, connections: 4, vs: [], log: () => {} });
}

/** Every row has a finite, positive value, a unit, and (for rates) no failed requests. */
export function checkReport(t: Test, report: ScenarioReport, subjects: string[]): void {
  t.same(
    report.rows.map((r) => r.subject),
    subjects,
    'rows in order',
  );
  for (const row of report.rows) checkRow(t, row);
}

function checkRow(t: Test, row: Row): void {
  const name = `${row.subject}: ${row.measure}`;
  t.ok(Number.isFinite(row.value) && row.value > 0, `${name}: value ${row.value} ${row.unit}`);
  t.ok(row.unit.length > 0, `${name}: unit`);
  if (row.p50Ms !== undefined) t.ok(row.p50Ms >= 0 && (row.p99Ms ?? 0) >= row.p50Ms, `${name}: p50 ≤ p99`);
  if (row.peakRssMb !== undefined) t.ok(row.peakRssMb > 10, `${name}: peak RSS ${row.peakRssMb} MiB`);
  if (row.loadgenCores !== undefined) t.ok(row.loadgenCores >= 0, `${name}: load generator CPU reported`);
  if (row.ratio !== undefined) t.ok(Number.isFinite(row.ratio.value) && row.ratio.value > 0, `${name}: ratio`);
}
