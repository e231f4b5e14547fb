// The result shape shared by the server benchmarks (one Row per measured subject) and its two
// renderings: a markdown table per scenario and a hand-written SVG bar chart (one bar group per
// scenario, each bar scaled to the largest value of its group, every bar labelled).

export interface Row {
  /** What was measured: tapeq, bare fastify, bunqueue (SQLite), raw fs, ... */
  subject: string;
  /** The workload, e.g. "push, 1 job/request, 50 connections, LOG_SYNC=always". */
  measure: string;
  /** What matches this row across rounds when `measure` carries a measured number (the SSE row's
   *  achieved push rate); `measure` otherwise. */
  key?: string;
  value: number;
  unit: string;
  p50Ms?: number;
  p99Ms?: number;
  /** Peak RSS of the server's process tree (the sum of each process's VmHWM, an upper bound), MiB
   *  (2^20 bytes; the name says Mb for the JSON's sake). */
  peakRssMb?: number;
  /** Server process tree's CPU seconds / wall seconds during the measured run (2.0 = both cores). */
  serverCores?: number;
  /** Load generator CPU seconds / wall seconds. */
  loadgenCores?: number;
  errors?: number;
  /** What the errors were (status codes, socket errors, timeouts). */
  errorDetail?: string;
  /** A same-run ratio, e.g. {value: 0.8, text: '0.80× bare fastify', template: '{x}× bare fastify'}. */
  ratio?: Ratio;
  /** An issue target on the ratio (or the value): see `target`. */
  target?: Target;
}

export interface Target {
  text: string;
  min: number;
  /** Errors in the runs the target is judged on (this row's and, for a competitor, tapeq's). */
  errors: number;
  pass: boolean;
  /** 'value': judged on the row's value (a rate), not on its ratio; merged rounds judge it on
   *  the median value. */
  on?: 'value';
}

/** A target passes when `value` reaches `min` in runs without errors: a rate that counts
 *  successes only says nothing good about a run where requests also failed. `on: 'value'` for a
 *  target on the row's own value rather than its ratio. */
export function target(text: string, min: number, value: number, errors: number, on: 'ratio' | 'value' = 'ratio'): Target {
  return { text, min, errors, pass: errors === 0 && value >= min, ...(on === 'value' ? { on } : {}) };
}

export interface Ratio {
  value: number;
  /** `template` with the value written in. */
  text: string;
  /** How the ratio reads, `{x}` standing for the value. */
  template: string;
}

export function ratioOf(value: number, template: string): Ratio {
  return { value, text: template.replace('{x}', value.toFixed(2)), template };
}

export interface ScenarioReport {
  rows: Row[];
  notes: string[];
}

/** `row` with its ratio to `reference` (row ÷ reference) and, given `targetMin`, the target,
 *  judged on both runs: a reference with errors counted successes only, so its rate is too low
 *  and the ratio too high. */
export function withRatio(row: Row, reference: Row | undefined, targetMin?: number): Row {
  if (reference === undefined) return row;
  if (!(reference.value > 0) || !(row.value >= 0)) {
    // No ratio to show (a reference whose every request failed), but the target still fails.
    if (targetMin === undefined) return row;
    const errors = (row.errors ?? 0) + (reference.errors ?? 0);
    return { ...row, target: target(`≥ ${targetMin}× ${reference.subject}; no usable ratio (${reference.subject} ${reference.value} ${reference.unit})`, targetMin, Number.NaN, errors) };
  }
  const value = row.value / reference.value;
  const out: Row = { ...row, ratio: ratioOf(value, `{x}× ${reference.subject}`) };
  if (targetMin !== undefined) {
    out.target = target(`≥ ${targetMin}× ${reference.subject}`, targetMin, value, (row.errors ?? 0) + (reference.errors ?? 0));
    if ((reference.errors ?? 0) > 0) out.target.text += `; the ${reference.subject} run had errors, its rate counts successes only`;
  }
  return out;
}

/** A competitor's row with tapeq's ratio to it (tapeq ÷ competitor) and, given `targetMin`, the target. */
export function versus(competitor: Row, tapeq: Row | undefined, targetMin?: number): Row {
  if (tapeq === undefined) return competitor;
  if (!(competitor.value > 0)) {
    // No ratio to show (every request of this run failed), but the target still fails.
    if (targetMin === undefined) return competitor;
    const errors = (competitor.errors ?? 0) + (tapeq.errors ?? 0);
    return { ...competitor, target: target(`tapeq ≥ ${targetMin}× this; no usable ratio (this run: ${competitor.value} ${competitor.unit})`, targetMin, Number.NaN, errors) };
  }
  const value = tapeq.value / competitor.value;
  const out: Row = { ...competitor, ratio: ratioOf(value, 'tapeq = {x}× this') };
  if (targetMin !== undefined) {
    out.target = target(`tapeq ≥ ${targetMin}× this`, targetMin, value, (competitor.errors ?? 0) + (tapeq.errors ?? 0));
    if ((competitor.errors ?? 0) > 0) out.target.text += '; this run had errors, its rate counts successes only';
  }
  return out;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function medianOf(rows: Row[], pick: (row: Row) => number | undefined): number | undefined {
  const values = rows.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length === 0 ? undefined : median(values);
}

const medianFields = ['p50Ms', 'p99Ms', 'peakRssMb', 'serverCores', 'loadgenCores'] as const;

/** One row from the rounds that measured it (same subject and measure). */
function mergeRow(all: Row[], rounds: number, spreads: string[]): Row {
  const last = all[all.length - 1] as Row;
  const label = `${last.subject} (${last.key ?? last.measure})`;
  const merged: Row = { ...last, value: medianOf(all, (r) => r.value) ?? last.value };
  const measures = [...new Set(all.map((r) => r.measure))];
  if (measures.length > 1) merged.measure = `${last.key ?? last.measure} (per round: ${measures.join('; ')})`;
  for (const field of medianFields) {
    const m = medianOf(all, (r) => r[field]);
    if (m === undefined) delete merged[field];
    else merged[field] = m;
  }
  delete merged.errorDetail;
  if (all.some((r) => r.errors !== undefined)) merged.errors = all.reduce((sum, r) => sum + (r.errors ?? 0), 0);
  const details = all.map((r, i) => (r.errorDetail === undefined ? '' : `round ${i + 1}: ${r.errorDetail}`)).filter((d) => d !== '');
  if (details.length > 0) merged.errorDetail = details.join('; ');
  delete merged.ratio;
  delete merged.target;
  const withRatios = all.filter((r) => r.ratio !== undefined && Number.isFinite(r.ratio.value));
  const template = withRatios[withRatios.length - 1]?.ratio?.template;
  if (template !== undefined) {
    const ratios = withRatios.map((r) => (r.ratio as Ratio).value);
    const value = median(ratios);
    merged.ratio = ratioOf(value, template);
    const of = withRatios.length < rounds ? ` (${withRatios.length} of ${rounds} rounds)` : '';
    spreads.push(`${label}: ${ratios.map((v) => v.toFixed(2)).join(', ')}${of}`);
  }
  // A target on the ratio is judged on the median ratio (none: it fails), with the errors of
  // every round that had it, a round without a usable ratio included.
  const onRatio = all.filter((r) => r.target !== undefined && r.target.on !== 'value');
  const ratioTarget = (withRatios.filter((r) => r.target !== undefined).pop() ?? onRatio[onRatio.length - 1])?.target;
  if (ratioTarget !== undefined) {
    const errors = onRatio.reduce((sum, r) => sum + (r.target?.errors ?? 0), 0);
    merged.target = target(ratioTarget.text, ratioTarget.min, merged.ratio?.value ?? Number.NaN, errors);
  }
  // A target on the row's own value (a rate) is judged on the median value, ratio or not.
  const onValue = all.filter((r) => r.target?.on === 'value');
  const valueTarget = onValue[onValue.length - 1]?.target;
  if (valueTarget !== undefined) {
    const errors = onValue.reduce((sum, r) => sum + (r.target?.errors ?? 0), 0);
    merged.target = target(valueTarget.text, valueTarget.min, merged.value, errors, 'value');
  }
  return merged;
}

/**
 * One report from the same scenario run `rounds.length` times (`--rounds`). Rows are matched by
 * subject and measure; each is the median of the rounds that measured it, and its ratio the
 * median of those rounds' own ratios (each between numbers measured minutes apart at most, so a
 * slow stretch of a shared machine moves both sides of one round). Errors add up. A note lists
 * every round's ratios, so the spread is there to see, and names any row some round lacked (a
 * competitor that failed to start once). Notes are the rounds' notes, each once.
 */
export function mergeRounds(rounds: ScenarioReport[]): ScenarioReport {
  if (rounds.length === 0) throw new Error('mergeRounds: no rounds');
  if (rounds.length === 1) return rounds[0] as ScenarioReport;
  const byKey = new Map<string, Row[]>();
  for (const round of rounds) {
    for (const row of round.rows) {
      const key = `${row.subject}\u0000${row.key ?? row.measure}`;
      const seen = byKey.get(key);
      if (seen === undefined) byKey.set(key, [row]);
      else seen.push(row);
    }
  }
  const spreads: string[] = [];
  const partial: string[] = [];
  const rows = [...byKey.values()].map((all) => {
    const last = all[all.length - 1] as Row;
    if (all.length < rounds.length) partial.push(`${last.subject} (${last.measure}): ${all.length} of ${rounds.length}`);
    return mergeRow(all, rounds.length, spreads);
  });
  const notes = [
    ...new Set(rounds.flatMap((r) => r.notes)),
    `Medians of ${rounds.length} rounds, each measuring every row once, in order; each ratio is the median of the rounds' own ratios.`,
    ...(spreads.length > 0 ? [`Ratio in each round: ${spreads.join('; ')}.`] : []),
    ...(partial.length > 0 ? [`Rows not measured in every round: ${partial.join('; ')}.`] : []),
  ];
  return { rows, notes };
}

function num(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function ms(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return '';
  return n < 10 ? n.toFixed(2) : n.toFixed(1);
}

export function formatReport(report: ScenarioReport): string {
  const lines = [
    '| subject | measure | value | unit | p50 ms | p99 ms | peak RSS MiB (process tree) | server cores (process tree) | loadgen cores | errors | ratio | target |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|',
    ...report.rows.map((r) => {
      const ratio = r.ratio?.text ?? '';
      const errors = (r.target?.errors ?? 0) > 0 ? `; ${r.target?.errors} errors` : '';
      const target = r.target ? `${r.target.pass ? 'PASS' : 'FAIL'} (${r.target.text}${errors})` : '';
      return (
        `| ${r.subject} | ${r.measure} | ${num(r.value, r.value < 100 ? 1 : 0)} | ${r.unit} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ` +
        `${num(r.peakRssMb)} | ${num(r.serverCores, 2)} | ${num(r.loadgenCores, 2)} | ${r.errors ?? ''} | ${ratio} | ${target} |`
      );
    }),
  ];
  const errorNotes = report.rows.filter((r) => (r.errors ?? 0) > 0).map((r) => `errors, ${r.subject} (${r.measure}): ${r.errorDetail ?? r.errors}`);
  const notes = [...report.notes, ...errorNotes];
  if (notes.length > 0) lines.push('', ...notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

const palette: Record<string, string> = { tapeq: '#2b6cb0' };
const otherColours = ['#a0aec0', '#ed8936', '#48bb78', '#9f7aea', '#e53e3e', '#38b2ac', '#d69e2e'];

function colourOf(subject: string, seen: Map<string, string>): string {
  if (subject.startsWith('tapeq')) return palette.tapeq ?? '#2b6cb0';
  let colour = seen.get(subject);
  if (colour === undefined) {
    colour = otherColours[seen.size % otherColours.length] ?? '#a0aec0';
    seen.set(subject, colour);
  }
  return colour;
}

/** The text after a bar: what the table's row says of it (value, ratio, errors, target). */
function valueLabel(r: Row): string {
  let label = `${num(r.value, r.value < 100 ? 1 : 0)} ${r.unit}`;
  if (r.ratio !== undefined) label += ` (${r.ratio.text})`;
  if ((r.errors ?? 0) > 0) label += `, ${r.errors} errors`;
  if (r.target !== undefined) {
    const errors = r.target.errors > 0 ? `; ${r.target.errors} errors` : '';
    label += `, ${r.target.pass ? 'PASS' : 'FAIL'} (${r.target.text}${errors})`;
  }
  return label;
}

/** Horizontal bars, one group per scenario; the bars of one unit in a group share a scale, so rows
 *  compared by a ratio must carry the same unit (bare fastify's push counts jobs/s, like tapeq's).
 *  After each bar: its value, ratio, errors and target, as in the table; the chart is as wide as
 *  its longest such line. */
export function renderSvg(groups: Array<{ scenario: string; rows: Row[] }>, title: string): string {
  let width = 980;
  const labelWidth = 430;
  const barMax = width - labelWidth - 150;
  const barHeight = 18;
  const gap = 6;
  const seen = new Map<string, string>();
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="10" y="24" font-size="16" font-weight="bold">${escapeXml(title)}</text>`);
  for (const group of groups) {
    if (group.rows.length === 0) continue;
    parts.push(`<text x="10" y="${y + 14}" font-size="14" font-weight="bold">${escapeXml(group.scenario)}</text>`);
    y += 22;
    const maxByUnit = new Map<string, number>();
    for (const r of group.rows) maxByUnit.set(r.unit, Math.max(maxByUnit.get(r.unit) ?? 0, r.value));
    for (const r of group.rows) {
      const max = maxByUnit.get(r.unit) ?? 1;
      const w = max > 0 && Number.isFinite(r.value) ? Math.max(1, (r.value / max) * barMax) : 0;
      const label = `${r.subject}: ${r.measure}`;
      const shown = label.length > 70 ? `${label.slice(0, 67)}…` : label;
      const after = valueLabel(r);
      // About 6.5 px per character at font-size 11.
      width = Math.max(width, Math.ceil(labelWidth + w + 4 + after.length * 6.5 + 10));
      parts.push(
        `<text x="${labelWidth - 6}" y="${y + barHeight - 5}" font-size="11" text-anchor="end">${escapeXml(shown)}</text>`,
        `<rect x="${labelWidth}" y="${y}" width="${w.toFixed(1)}" height="${barHeight}" fill="${colourOf(r.subject, seen)}"/>`,
        `<text x="${(labelWidth + w + 4).toFixed(1)}" y="${y + barHeight - 5}" font-size="11">${escapeXml(after)}</text>`,
      );
      y += barHeight + gap;
    }
    y += 12;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" viewBox="0 0 ${width} ${y + 10}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
