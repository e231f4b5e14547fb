// Which snapshots pruning keeps (store.ts deletes the others once the new one is durable).
//
// Always the newest `newest` valid ones: the one a start loads, and the one it falls back to.
// Point-in-time recovery needs more once retention has removed the log's first segments: a point
// T is rebuilt from a snapshot stamped at or before T, extended by the log. With a spread policy
// (windowMs = HISTORY_RETENTION_MS, points = SNAPSHOT_RECOVERY_POINTS > 0) pruning also keeps
//   - the anchor: the newest valid snapshot stamped at or before now - windowMs, from which every
//     point of the window can be rebuilt (retention removes only segments below the oldest kept
//     snapshot, so the anchor's tail stays); and
//   - the oldest valid snapshot of each step (windowMs / points wide, on fixed boundaries) within
//     the window: as time moves on, one of them becomes the next anchor, no more than about a step
//     older than the window's start, so the log retention keeps is the window plus about a step.
// So at most newest + points + 2 snapshots stay (the window meets at most points + 1 steps).
// The stamp of a snapshot is its header's: the timestamp of the last record it covers. The clock
// is the snapshot process's: one that jumps forward by the window or more while a prune runs
// makes the newest snapshots the anchor and drops the older ones, and recovery then reaches back
// only to them until a window has passed again.
//
//   time  ──────────────────────────────────────────────────────────────────────▶ now
//   steps   |   step k    |  step k+1   |  step k+2   |  step k+3   |  step k+4   |
//   window                     [now - windowMs ──────────────────────────────────]
//   kept                   ^anchor  ^oldest of k+1   ^k+2          ^k+3    ^k+4 ^^ newest two

export interface SpreadPolicy {
  /** How far back point-in-time recovery must reach: HISTORY_RETENTION_MS. */
  windowMs: number;
  /** Snapshots kept spread over the window (SNAPSHOT_RECOVERY_POINTS); 0 keeps no anchor either. */
  points: number;
}

export interface KeepCandidate {
  file: string;
  /** The header's timestamp: that of the last record the snapshot covers. */
  timestamp: number;
}

/** The files to keep among `valid` (valid snapshots, newest first). */
export function snapshotsToKeep(valid: readonly KeepCandidate[], newest: number, spread: SpreadPolicy | null, now: number): Set<string> {
  const keep = new Set(valid.slice(0, newest).map((c) => c.file));
  if (spread === null || spread.points === 0) return keep;
  const windowStart = now - spread.windowMs;
  const anchor = valid.find((c) => c.timestamp <= windowStart);
  if (anchor !== undefined) keep.add(anchor.file);
  if (spread.windowMs === 0) return keep;
  const step = Math.ceil(spread.windowMs / spread.points);
  const oldestOfStep = new Map<number, string>();
  // Newest first, so the last one set in a step is its oldest. A stamp after now (the clock went
  // back since) marks no step: otherwise each such snapshot could keep one more file.
  for (const c of valid) if (c.timestamp > windowStart && c.timestamp <= now) oldestOfStep.set(Math.floor(c.timestamp / step), c.file);
  for (const file of oldestOfStep.values()) keep.add(file);
  return keep;
}
