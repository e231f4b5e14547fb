// `tapeq bench --rounds N`: the rounds of a scenario merge into one report whose values are the
// medians of the rounds, whose ratios are the medians of each round's own ratio (not the ratio
// of two medians), whose targets are judged on that median, and whose notes list every round's
// ratios. Rows are matched by subject and measure, so a row missing from a round (a competitor
// that failed once) costs only that row's round; unusable ratios are left out, not ranked.

import t from 'tap';
import { formatReport, mergeRounds, renderSvg, target, versus, withRatio, type Row, type ScenarioReport } from '../../tools/bench-report.js';

function round(bare: number, tapeq: number, p50: number): ScenarioReport {
  const ref: Row = { subject: 'bare fastify', measure: 'push', value: bare, unit: 'req/s', p50Ms: p50, errors: 0 };
  const row: Row = { subject: 'tapeq', measure: 'push, always', value: tapeq, unit: 'jobs/s', p50Ms: p50 * 2, errors: 1 };
  return { rows: [ref, withRatio(row, ref, 0.75)], notes: ['same note'] };
}

t.test('values-are-medians-and-the-ratio-is-the-median-of-round-ratios', async (t) => {
  // Round ratios 0.50, 0.80, 0.90 → median 0.80 (the ratio of the medians would be 700/1000 = 0.70).
  const merged = mergeRounds([round(1000, 500, 1), round(2000, 1600, 3), round(700, 630, 2)]);
  const [ref, tapeq] = merged.rows;
  t.equal(ref?.value, 1000);
  t.equal(tapeq?.value, 630);
  t.equal(ref?.p50Ms, 2);
  t.equal(tapeq?.errors, 3, 'errors add up over the rounds');
  t.equal(tapeq?.ratio?.value, 0.8);
  t.equal(tapeq?.ratio?.text, '0.80× bare fastify');
  t.same(tapeq?.target, { text: '≥ 0.75× bare fastify', min: 0.75, errors: 3, pass: false }, 'the ratio reaches 0.75 but its runs had errors');
  t.equal(merged.notes[0], 'same note');
  t.match(merged.notes.join('\n'), /Medians of 3 rounds/);
  t.match(merged.notes.join('\n'), /tapeq \(push, always\): 0\.50, 0\.80, 0\.90/);
});

t.test('a-target-fails-when-the-median-round-misses-it', async (t) => {
  const merged = mergeRounds([round(1000, 900, 1), round(1000, 700, 1), round(1000, 600, 1)]);
  t.equal(merged.rows[1]?.ratio?.value, 0.7);
  t.equal(merged.rows[1]?.target?.pass, false);
});

t.test('versus-ratios-keep-their-wording', async (t) => {
  const tapeq: Row = { subject: 'tapeq', measure: 'push', value: 400, unit: 'jobs/s' };
  const rounds = [100, 200, 400].map((v) => ({
    rows: [tapeq, versus({ subject: 'bunqueue (memory)', measure: 'push', value: v, unit: 'jobs/s' }, tapeq, 1)],
    notes: [],
  }));
  const merged = mergeRounds(rounds);
  t.equal(merged.rows[1]?.ratio?.text, 'tapeq = 2.00× this');
  t.equal(merged.rows[1]?.target?.pass, true);
});

t.test('one-round-is-returned-as-it-is', async (t) => {
  const one = round(1000, 500, 1);
  t.equal(mergeRounds([one]), one);
  t.throws(() => mergeRounds([]));
});

t.test('a-row-missing-from-a-round-is-merged-over-the-rounds-that-have-it', async (t) => {
  const full = (v: number): ScenarioReport => {
    const tapeq: Row = { subject: 'tapeq', measure: 'push', value: 400, unit: 'jobs/s' };
    return { rows: [tapeq, versus({ subject: 'bunqueue (memory)', measure: 'push', value: v, unit: 'jobs/s' }, tapeq, 1)], notes: ['n'] };
  };
  const failed: ScenarioReport = {
    rows: [{ subject: 'tapeq', measure: 'push', value: 100, unit: 'jobs/s' }],
    notes: ['n', 'bunqueue (memory): did not run'],
  };
  const merged = mergeRounds([full(100), failed, full(400)]);
  t.equal(merged.rows.length, 2);
  t.equal(merged.rows[0]?.value, 400, 'tapeq: the median of all three rounds');
  t.equal(merged.rows[1]?.value, 250, 'bunqueue: the median of the two rounds it ran');
  t.equal(merged.rows[1]?.ratio?.value, 2.5);
  const notes = merged.notes.join('\n');
  t.equal(merged.notes.filter((n) => n === 'n').length, 1, 'a note every round made is listed once');
  t.match(notes, /bunqueue \(memory\): did not run/);
  t.match(notes, /bunqueue \(memory\) \(push\): 4\.00, 1\.00 \(2 of 3 rounds\)/);
  t.match(notes, /Rows not measured in every round: bunqueue \(memory\) \(push\): 2 of 3/);
});

t.test('rounds-without-a-usable-ratio-are-left-out-of-its-median', async (t) => {
  const ref: Row = { subject: 'ref', measure: 'm', value: 100, unit: 'x' };
  const tapeq = (value: number): Row => ({ subject: 'tapeq', measure: 'm', value, unit: 'x', errors: 0 });
  const rounds: ScenarioReport[] = [
    { rows: [ref, withRatio(tapeq(50), ref, 0.75)], notes: [] },
    { rows: [ref, { ...tapeq(60), ratio: { value: Number.NaN, text: 'NaN× ref', template: '{x}× ref' } }], notes: [] },
    { rows: [ref, tapeq(70)], notes: [] },
    { rows: [ref, { ...withRatio(tapeq(90), ref, 0.75), errors: 2, errorDetail: '2 × 503' }], notes: [] },
  ];
  const merged = mergeRounds(rounds).rows[1];
  t.equal(merged?.value, 65);
  t.equal(merged?.ratio?.value, 0.7, 'the median of 0.50 and 0.90, the two usable ratios');
  t.equal(merged?.target?.pass, false);
  t.equal(merged?.errors, 2);
  t.equal(merged?.errorDetail, 'round 4: 2 × 503');
});

t.test('a-target-fails-when-its-run-had-errors', async (t) => {
  const ref: Row = { subject: 'bare fastify', measure: 'push', value: 100, unit: 'jobs/s', errors: 0 };
  const clean = withRatio({ subject: 'tapeq', measure: 'push', value: 90, unit: 'jobs/s', errors: 0 }, ref, 0.75);
  const failed = withRatio({ subject: 'tapeq', measure: 'push', value: 90, unit: 'jobs/s', errors: 5 }, ref, 0.75);
  t.equal(clean.target?.pass, true);
  t.equal(failed.target?.pass, false, 'the rate counts successes only; the failures fail the target');
  t.match(formatReport({ rows: [ref, failed], notes: [] }), /FAIL \(≥ 0\.75× bare fastify; 5 errors\)/);
  const tapeqFailed: Row = { subject: 'tapeq', measure: 'push', value: 400, unit: 'jobs/s', errors: 1 };
  t.equal(versus({ subject: 'bunqueue (memory)', measure: 'push', value: 100, unit: 'jobs/s', errors: 0 }, tapeqFailed, 1).target?.pass, false);
});

t.test('rows-whose-measure-carries-a-measured-number-merge-by-key', async (t) => {
  const sse = (achieved: number, value: number): ScenarioReport => ({
    rows: [{ subject: 'tapeq', measure: `SSE, ${achieved} pushes/s achieved (200 offered)`, key: 'SSE, 200 pushes/s offered', value, unit: 'events/s' }],
    notes: [],
  });
  const merged = mergeRounds([sse(180, 90), sse(190, 95), sse(200, 100)]);
  t.equal(merged.rows.length, 1);
  t.equal(merged.rows[0]?.value, 95);
  t.match(merged.rows[0]?.measure ?? '', /^SSE, 200 pushes\/s offered \(per round: SSE, 180 pushes\/s achieved/);
});

t.test('a-target-on-the-value-is-judged-on-the-median-value-not-the-ratio', async (t) => {
  // The WebSocket push row carries a ratio to bare fastify (no target) and a target on its own
  // rate (≥ 100,000 jobs/s); merged, the target must still be judged on the rate.
  const ws = (bare: number, tapeq: number): ScenarioReport => {
    const ref: Row = { subject: 'bare fastify', measure: 'ws push', value: bare, unit: 'jobs/s', errors: 0 };
    const row: Row = { subject: 'tapeq', measure: 'ws push, always', value: tapeq, unit: 'jobs/s', errors: 0 };
    return { rows: [ref, { ...withRatio(row, ref), target: target('≥ 100,000 jobs/s', 100_000, tapeq, 0, 'value') }], notes: [] };
  };
  const merged = mergeRounds([ws(300_000, 120_000), ws(300_000, 110_000), ws(300_000, 130_000)]).rows[1];
  t.equal(merged?.value, 120_000);
  t.equal(merged?.ratio?.value, 0.4);
  t.same(merged?.target, { text: '≥ 100,000 jobs/s', min: 100_000, errors: 0, pass: true, on: 'value' }, '120,000 jobs/s reaches 100,000');
  const slow = mergeRounds([ws(300_000, 90_000), ws(300_000, 80_000), ws(300_000, 130_000)]).rows[1];
  t.equal(slow?.target?.pass, false, 'a median of 90,000 jobs/s does not');
  // A round whose reference failed has no ratio; the row's own target is still there.
  const noRef = mergeRounds([ws(0, 120_000), ws(0, 110_000)]).rows[1];
  t.equal(noRef?.ratio, undefined);
  t.equal(noRef?.target?.pass, true, 'the value target survives the merge without a ratio');
});

t.test('a-target-fails-when-its-reference-run-failed-entirely', async (t) => {
  // A reference whose every request failed has no rate to divide by: its ratio cannot be shown,
  // but the target it was to be judged on fails rather than vanishing.
  const failedRef: Row = { subject: 'bare fastify', measure: 'push', value: 0, unit: 'jobs/s', errors: 50 };
  const goodRef: Row = { subject: 'bare fastify', measure: 'push', value: 1_000, unit: 'jobs/s', errors: 0 };
  const tapeq: Row = { subject: 'tapeq', measure: 'push, always', value: 900, unit: 'jobs/s', errors: 0 };
  const one = withRatio(tapeq, failedRef, 0.75);
  t.equal(one.ratio, undefined);
  t.equal(one.target?.pass, false, 'withRatio: the target fails');
  t.equal(one.target?.errors, 50);
  const bq = versus({ subject: 'bunqueue (memory)', measure: 'push', value: 0, unit: 'jobs/s', errors: 10 }, tapeq, 1);
  t.equal(bq.target?.pass, false, 'versus: the target fails');
  t.equal(bq.target?.errors, 10);
  // Over rounds: the round whose reference failed counts its errors in the merged target.
  const rounds: ScenarioReport[] = [failedRef, goodRef, goodRef].map((ref) => ({ rows: [ref, withRatio(tapeq, ref, 0.75)], notes: [] }));
  const merged = mergeRounds(rounds).rows[1];
  t.equal(merged?.ratio?.value, 0.9, 'the median of the two usable ratios');
  t.equal(merged?.target?.errors, 50);
  t.equal(merged?.target?.pass, false, 'one round\'s reference had errors');
  const allFailed = mergeRounds([failedRef, failedRef].map((ref) => ({ rows: [ref, withRatio(tapeq, ref, 0.75)], notes: [] }))).rows[1];
  t.equal(allFailed?.target?.pass, false, 'no usable ratio in any round: the target still fails');
});

t.test('the-chart-says-why-a-merged-target-failed-as-the-table-does', async (t) => {
  // Round 1's reference had errors, round 2's did not: the merged tapeq row has no errors of its
  // own and a ratio above the target, which fails on the reference's errors. The table says so;
  // the chart must too, not a bare FAIL beside a ratio that meets it.
  const tapeq: Row = { subject: 'tapeq', measure: 'push, always', value: 900, unit: 'jobs/s', errors: 0 };
  const rounds = [5, 0].map((errors): ScenarioReport => {
    const ref: Row = { subject: 'bare fastify', measure: 'push', value: 1_000, unit: 'jobs/s', errors };
    return { rows: [ref, withRatio(tapeq, ref, 0.75)], notes: [] };
  });
  const merged = mergeRounds(rounds);
  t.match(formatReport(merged), /FAIL \(≥ 0\.75× bare fastify; 5 errors\)/);
  t.match(renderSvg([{ scenario: 'http-push', rows: merged.rows }], 'title'), /FAIL \(≥ 0\.75× bare fastify; 5 errors\)/);
});
