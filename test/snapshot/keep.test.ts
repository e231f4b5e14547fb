// Which snapshots pruning keeps (src/snapshot/keep.ts), over weeks of simulated snapshots: with a
// spread policy, a kept snapshot is always stamped at or before the window's start (so every point
// of the window can be rebuilt), the oldest kept one is never much older than that (so retention
// still removes the log before it), and the files kept stay few.

import t from 'tap';
import { snapshotsToKeep, type KeepCandidate, type SpreadPolicy } from '../../src/snapshot/keep.js';
import { prng } from './workload.js';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

interface Run {
  /** Most files kept at once. */
  most: number;
  /** After each prune once the history is longer than the window: the oldest kept stamp, and the
   *  newest kept stamp at or before the window's start (null: none). */
  checks: Array<{ now: number; oldest: number; anchor: number | null }>;
}

/** Snapshots every `everyMs` (with random idle stretches of up to `idleMs` without any), each
 *  followed by a prune at its own time, as the snapshot process does. */
function simulate(spread: SpreadPolicy | null, everyMs: number, idleMs: number, days: number, seed: number): Run {
  const random = prng(seed);
  let kept: KeepCandidate[] = [];
  const start = 1_700_000_000_000;
  const run: Run = { most: 0, checks: [] };
  for (let now = start, n = 0; now < start + days * day; n++) {
    kept = [{ file: `s${n}`, timestamp: now }, ...kept];
    const keep = snapshotsToKeep(kept, 2, spread, now);
    kept = kept.filter((c) => keep.has(c.file));
    run.most = Math.max(run.most, kept.length);
    if (spread !== null && now - start > spread.windowMs + everyMs) {
      const windowStart = now - spread.windowMs;
      run.checks.push({ now, oldest: (kept.at(-1) as KeepCandidate).timestamp, anchor: kept.find((c) => c.timestamp <= windowStart)?.timestamp ?? null });
    }
    now += everyMs + (random() < 0.02 ? Math.floor(random() * idleMs) : 0);
  }
  return run;
}

t.test('a-spread-keeps-a-snapshot-before-the-window-and-the-log-kept-stays-near-the-window', async (t) => {
  for (const [windowMs, points, everyMs] of [
    [7 * day, 4, 10 * minute],
    [7 * day, 1, 10 * minute],
    [1 * day, 24, 10 * minute],
    [2 * hour, 4, 10 * minute],
  ] as const) {
    const spread = { windowMs, points };
    const idleMs = 6 * hour;
    const run = simulate(spread, everyMs, idleMs, windowMs / day * 3 + 2, windowMs + points);
    const step = Math.ceil(windowMs / points);
    const name = `window ${windowMs / hour} h, ${points} points`;
    t.ok(run.checks.length > 100, `${name}: ${run.checks.length} prunes checked`);
    t.ok(run.checks.every((c) => c.anchor !== null), `${name}: always a snapshot at or before the window's start`);
    // The oldest kept is the anchor; it lies within a step (plus the gap to the snapshot before it)
    // of the window's start.
    const late = run.checks.filter((c) => c.oldest < c.now - windowMs - step - everyMs - idleMs);
    t.same(late, [], `${name}: the oldest kept is never more than a step and a gap before the window`);
    t.ok(run.most <= 2 + points + 2, `${name}: at most ${2 + points + 2} files (most: ${run.most})`);
  }
});

t.test('without-a-spread-only-the-newest-are-kept', async (t) => {
  t.equal(simulate(null, 10 * minute, 0, 3, 1).most, 2);
  const valid = [3, 2, 1, 0].map((i) => ({ file: `s${i}`, timestamp: i * day }));
  t.same([...snapshotsToKeep(valid, 2, { windowMs: day, points: 0 }, 10 * day)], ['s3', 's2'], 'points 0: no anchor either');
  t.same([...snapshotsToKeep(valid, 2, null, 10 * day)], ['s3', 's2']);
});

t.test('the-anchor-is-the-newest-at-or-before-the-window-and-each-step-keeps-its-oldest', async (t) => {
  // Stamps in hours; window 8 h, 2 points: steps of 4 h on boundaries 0, 4, 8, …; now = 20 h.
  const valid = [19, 18, 17, 15, 13, 12.5, 11, 9, 8, 7, 3].map((h) => ({ file: `h${h}`, timestamp: h * hour }));
  const keep = snapshotsToKeep(valid, 2, { windowMs: 8 * hour, points: 2 }, 20 * hour);
  // Newest two: 19, 18. Window starts at 12 h: anchor 11. Steps within it: [12,16) oldest 12.5,
  // [16,20) oldest 17.
  t.same([...keep].sort(), ['h11', 'h12.5', 'h17', 'h18', 'h19']);
  t.same([...snapshotsToKeep(valid, 2, { windowMs: 0, points: 4 }, 20 * hour)].sort(), ['h18', 'h19'], 'an empty window: the newest is its own anchor');
  // The clock went back 6 h after it had stamped 19, 18, 17 and 15, after now (14 h): the window
  // starts at 6 h, anchor 3; steps [4, 8) 7, [8, 12) 8, [12, 16) 12.5 (not 15 or 17).
  const back = snapshotsToKeep(valid, 2, { windowMs: 8 * hour, points: 2 }, 14 * hour);
  t.same([...back].sort(), ['h12.5', 'h18', 'h19', 'h3', 'h7', 'h8'], 'stamps after now mark no step: of them only the newest two stay');
});
