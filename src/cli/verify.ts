// `tapeq verify [--dir <path>]`: checks every segment header, every frame's length and checksum,
// that every record decodes, and that offsets run without a gap within and across segments; then
// every snapshot's checksums, that none covers records past the log's end (which the log then
// lost), and that a log retention cut (its first offset above 0) has a snapshot to replay from,
// without which `serve` cannot rebuild its state.
// Prints a summary and exits 0, or exits 1 naming the first bad record: file, byte position,
// record offset and what is wrong (a bad snapshot: its file and what is wrong). A torn tail
// (which the next `serve` would cut) counts as bad.
// Strictly read-only: opens files O_RDONLY and never truncates or rebuilds anything.

import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { dataDirOf, sourcePathsOf } from '../history/state-at.js';
import { errnoOf, messageOf } from '../log/errors.js';
import { LogError, openReadOnly, type Log } from '../log/log.js';
import { listSnapshots, verifySnapshotFile, type SnapshotEntry } from '../snapshot/store.js';
import { SnapshotCorruptError, type SnapshotHeader } from '../snapshot/format.js';

export async function verifyCommand(argv: string[]): Promise<number> {
  let dir: string;
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { dir: { type: 'string' } } });
    dir = dataDirOf(values.dir);
  } catch (err) {
    console.error(`tapeq verify: ${(err as Error).message}`);
    return 2;
  }
  try {
    const { dataDir, logDir, snapshotsDir } = await sourcePathsOf(dir);
    // Listed before the log is opened: a running server's snapshots cover durable records only,
    // so every one listed lies within the log this open reads.
    const snapshotEntries = await listSnapshots(snapshotsDir);
    const log = await openReadOnly(logDir);
    try {
      const cut = log.openReport.tailCut;
      // An empty last segment (a roll that stopped before its header) loses nothing: the next
      // start writes the header and cuts nothing (recovery.ts), so it is no torn tail.
      if (cut !== null && cut.bytes > 0) {
        console.log(
          `tapeq verify: FAILED ${join(log.dir, cut.segment)} byte ${cut.position}: torn tail of ${cut.bytes} bytes ` +
            `(record offset ${log.nextOffset}; the next start would cut it)`,
        );
        return 1;
      }
      let records = 0;
      for await (const batch of log.readBatches(log.firstOffset)) records += batch.length;
      // A directory of segments read alone (an archive, a copy) is no data directory to start.
      const mustStart = dataDir !== logDir;
      const snapshots = await verifySnapshots(snapshotEntries, snapshotsDir, log, mustStart);
      if (typeof snapshots === 'string') {
        console.log(`tapeq verify: FAILED ${snapshots}`);
        return 1;
      }
      const segments = log.segments();
      const bytes = segments.reduce((n, s) => n + s.bytes, 0);
      const range = records === 0 ? `no record; the next is offset ${log.nextOffset}` : `offsets ${log.firstOffset}..${log.nextOffset - 1}`;
      console.log(
        `tapeq verify: ok ${segments.length} segments, ${records} records (${range}), ${bytes} bytes, log ${log.logId}, ` +
          `${snapshots.count} snapshots${mustStart ? `; ${reachOf(log, snapshots.oldest)}` : ''}`,
      );
      return 0;
    } finally {
      await log.close();
    }
  } catch (err) {
    if (!(err instanceof LogError)) throw err;
    // A LogError's message names its file, byte and record offset where it has them.
    console.log(`tapeq verify: FAILED ${err.message}`);
    return 1;
  }
}

/** How far back `recover --until` can go: to offset 0 while the log starts there, else to the
 *  oldest sound snapshot it can extend (the time of the last record that snapshot covers). */
function reachOf(log: Log, oldest: SnapshotHeader | null): string {
  if (log.firstOffset === 0) return 'recover --until reaches back to offset 0';
  if (oldest === null) return 'recover --until: no snapshot left to start from';
  return `recover --until reaches back to offset ${oldest.offset} (${new Date(oldest.timestamp).toISOString()})`;
}

/** Verifies the snapshot files: the count and the oldest the log can extend, or `<file>:
 *  <problem>` for the first bad one, or (if `mustStart`) a log that cannot be replayed from offset
 *  0 and has no snapshot to start from. A snapshot a running server pruned since the listing is
 *  passed over; it prunes one only once newer valid ones are written, so one at or after the
 *  log's start still shows it can start. */
async function verifySnapshots(
  entries: SnapshotEntry[],
  snapshotsDir: string,
  log: Log,
  mustStart: boolean,
): Promise<{ count: number; oldest: SnapshotHeader | null } | string> {
  let count = 0;
  // The oldest sound snapshot the log can extend: where point-in-time recovery reaches back to.
  let oldest: SnapshotHeader | null = null;
  let startable = log.firstOffset === 0 || !mustStart;
  for (const entry of entries) {
    let header: SnapshotHeader;
    try {
      header = await verifySnapshotFile(entry.file);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') {
        startable ||= entry.offset >= log.firstOffset;
        continue;
      }
      if (err instanceof SnapshotCorruptError) return `${entry.file}: ${messageOf(err)}`;
      throw err;
    }
    const offset = header.offset;
    if (offset !== entry.offset) return `${entry.file}: file name says offset ${entry.offset} but the header says ${offset}`;
    if (offset > log.nextOffset) {
      // Listed before the open, so not a running server's newer snapshot: records are missing.
      const lost = `[${log.nextOffset}, ${offset})`;
      return `${entry.file}: the snapshot covers offsets up to ${offset} but the log ends at ${log.nextOffset}: the log lost records ${lost}`;
    }
    count++;
    if (entry.offset >= log.firstOffset && entry.offset <= log.nextOffset) {
      startable = true;
      oldest = header; // listed newest first
    }
  }
  if (startable) return { count, oldest };
  const first = log.firstOffset;
  return (
    `${snapshotsDir}: the log starts at offset ${first} (records [0, ${first}) are gone from it) and no snapshot at ` +
    `offset ${first} to ${log.nextOffset} holds the state to replay it from; serve cannot start`
  );
}
