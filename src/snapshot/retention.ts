// Retention (compaction of history): which log segments may leave the data directory.
//
// The rule. A segment is removed — deleted, or moved to archiveDir when one is set — only when
//   1. every record in it is below the offset of the OLDEST valid snapshot kept in the snapshots
//      directory, so every snapshot we might fall back to can still be extended by the log, and
//      at least two snapshots are valid: the newest may prove bad at the next start (bit rot,
//      a lost write), and the one it falls back to must still have its tail; and
//   2. its last record is older than `now - retentionMs`, so history, `/jobs/:id/history`,
//      `logcat` and `export` keep at least retentionMs of records; and
//   3. it is not the active segment and only a prefix is removed, so offsets stay gap-free
//      (both enforced again by Log.dropSegmentsBefore).
// Consequently nothing at or after the second-newest valid snapshot is ever touched, and with
// fewer than two valid snapshots nothing is removed at all (a full replay needs every record).
// Point-in-time recovery needs a snapshot at or before its point once the log's beginning is
// gone, so after a removal it reaches back to the oldest kept snapshot, not to the oldest record.
// Pruning (keep.ts) therefore keeps, with SNAPSHOT_RECOVERY_POINTS > 0, a snapshot stamped before
// now - retentionMs and snapshots spread over the window: the oldest kept snapshot, below which
// this removes segments, is that anchor, and every point from it on can be rebuilt. The log can
// start a little before it and still not rebuild those first records' points: a segment leaves
// whole, so the one the anchor falls in keeps records below it, and a prune that drops the
// previous anchor leaves its segments until the next retention run. Those records are history
// (logcat, export, /jobs/:id/history) but no recovery point; `tapeq verify` names the offset
// recovery reaches back to.
//
//   segments   [seg 0][seg 1][seg 2][seg 3 ......][active]
//   snapshots                 ^oldest kept   ^newest
//   removable  [seg 0][seg 1]                      (if also older than the retention time)
//
// "Valid" means the file passes every header and checksum check (format.ts) and its schema is
// one this build reads (a newer build's snapshot verifies but cannot be loaded); the verdict is
// cached per (path, size, mtime) so a periodic run does not re-read unchanged snapshots, and a
// format-2 file is verified piece by piece (verifySnapshotFile), so this runs on the main thread
// holding at most snapshotBlockBytesMax of it, whatever its blocks' sizes, and pausing the event
// loop for one piece's checksum at most.
// Runs must not overlap each other (the composition root runs them one at a time on a timer).

import { retentionSnapshotsValidMin } from '../constants.js';
import { initChecksum } from '../log/checksum.js';
import { forgetVerdictsExcept, listSnapshots, verifiedHeader } from './store.js';

/** What retention needs from the log (the real Log satisfies it). */
export interface RetentionLogView {
  readonly firstOffset: number;
  readonly durableOffset: number;
  dropSegmentsBefore(offset: number, olderThanTs: number, archiveDir?: string): Promise<string[]>;
}

export interface CompactOptions {
  log: RetentionLogView;
  snapshotsDir: string;
  retentionMs: number;
  /** Move removed segments here instead of deleting them. */
  archiveDir?: string | null;
  /** The wall clock, passed in so a test can place it. */
  now: number;
}

/** Offset of the oldest valid snapshot the log can extend, or null when fewer than
 *  retentionSnapshotsValidMin are valid (the log may be the only fallback left). */
export async function oldestKeptSnapshotOffset(snapshotsDir: string, log: RetentionLogView): Promise<number | null> {
  await initChecksum();
  const entries = await listSnapshots(snapshotsDir);
  forgetVerdictsExcept(snapshotsDir, entries);
  let oldest: number | null = null;
  let valid = 0;
  for (const entry of entries) {
    if (entry.offset > log.durableOffset || entry.offset < log.firstOffset) continue;
    if ((await verifiedHeader(entry)) === null) continue;
    oldest = entry.offset;
    valid++;
  }
  return valid >= retentionSnapshotsValidMin ? oldest : null;
}

/** Applies the rule above; resolves with the names of the segments removed (or archived). */
export async function compact(options: CompactOptions): Promise<string[]> {
  const { log, snapshotsDir, retentionMs, archiveDir, now } = options;
  if (!(retentionMs >= 0)) throw new RangeError(`retentionMs must be ≥ 0, got ${retentionMs}`);
  const boundary = await oldestKeptSnapshotOffset(snapshotsDir, log);
  if (boundary === null) return [];
  const olderThanTs = now - retentionMs;
  return archiveDir === undefined || archiveDir === null
    ? log.dropSegmentsBefore(boundary, olderThanTs)
    : log.dropSegmentsBefore(boundary, olderThanTs, archiveDir);
}
