// `tapeq bench --rounds N`: the rounds of a scenario merge into one report whose values are the
// medians of the rounds, whose ratios are the medians of each round's own ratio (not the ratio
// of two medians), whose targets are judged on that median, and whose notes list every round's
// ratios. Rounds that measured different rows are not lined up.

import t from 'tap';
import { mergeRounds, versus, withRatio, type Row, type ScenarioReport } from '../../tools/bench-report.js';

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
  t.same(tapeq?.target, { text: '≥ 0.75× bare fastify', min: 0.75, pass: true });
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

t.test('one-round-is-returned-as-it-is-and-rounds-that-differ-are-not-lined-up', async (t) => {
  const one = round(1000, 500, 1);
  t.equal(mergeRounds([one]), one);
  const short: ScenarioReport = { rows: [one.rows[0] as Row], notes: [] };
  const merged = mergeRounds([one, short]);
  t.equal(merged.rows.length, 1, 'the last round');
  t.match(merged.notes.join('\n'), /different rows; this is the last round alone/);
  t.throws(() => mergeRounds([]));
});
