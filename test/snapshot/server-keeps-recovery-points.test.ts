// The server's snapshot process prunes with SNAPSHOT_RECOVERY_POINTS over HISTORY_RETENTION_MS
// (src/snapshot/keep.ts): while snapshots come every second or so, one stamped before the window
// stays, so `recover --until` can reach the window's start. With 0, only the two newest stay.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve } from '../../src/main.js';
import { listSnapshots, snapshotFileName, verifySnapshotFile } from '../../src/snapshot/store.js';

const windowMs = 1_500;

/** Pushes a burst every 200 ms for `ms`, and on (up to 15 s in all) until the snapshots directory
 *  holds `files` files (a snapshot follows every 30 records, checked each second; a slow machine
 *  writes fewer), then the snapshot files' stamps, newest first, and the time they were read. */
async function snapshotStamps(points: number, ms: number, files = 0): Promise<{ stamps: number[]; now: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-points-'));
  try {
    const config = loadConfig({
      DATA_DIR: dir,
      HTTP_PORT: '0',
      HOST: '127.0.0.1',
      SNAPSHOT_EVERY_RECORDS: '30',
      HISTORY_RETENTION_MS: String(windowMs),
      SNAPSHOT_RECOVERY_POINTS: String(points),
    });
    const lines: string[] = [];
    const s = await serve(config, { logger: (line) => lines.push(line) });
    try {
      const started = Date.now();
      const snapshots = join(dir, 'snapshots');
      const more = async (): Promise<boolean> =>
        Date.now() - started < ms || (Date.now() - started < 15_000 && (await listSnapshots(snapshots)).length < files);
      while (await more()) {
        for (let i = 0; i < 10; i++) await s.broker.push('q', { data: { i } }, { actor: null });
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // Read once the snapshot of the last push is written (and its prune done, which precedes the
      // line): no snapshot is under way then, and none follows.
      const last = snapshotFileName(s.log.durableOffset);
      for (let waitedMs = 0; !lines.some((line) => line.includes(`${last} written`)) && waitedMs < 15_000; waitedMs += 50) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const now = Date.now();
      const stamps: number[] = [];
      for (const entry of await listSnapshots(snapshots)) stamps.push((await verifySnapshotFile(entry.file)).timestamp);
      return { stamps, now };
    } finally {
      await s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

t.test('the-server-keeps-a-snapshot-from-before-the-retention-window', async (t) => {
  const spread = await snapshotStamps(2, 5_000, 3);
  t.ok(spread.stamps.some((ts) => ts <= spread.now - windowMs), `a snapshot stamped before the window (ages ${spread.stamps.map((ts) => spread.now - ts).join(', ')} ms)`);
  // Two files are enough when the older of the newest two is itself stamped before the window
  // (it is then the anchor too): a slow machine writes snapshots far enough apart for that.
  t.ok(spread.stamps.length >= 2 && spread.stamps.length <= 2 + 2 + 2, `${spread.stamps.length} snapshot files`);

  const none = await snapshotStamps(0, 3_000, 2);
  t.equal(none.stamps.length, 2, 'SNAPSHOT_RECOVERY_POINTS=0: the two newest only');
});
