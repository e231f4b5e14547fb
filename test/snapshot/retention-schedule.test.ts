// How the server (src/main.ts) runs retention: on a timer, one run at a time. A run can take
// longer than the timer's period (verifying a large new snapshot, archiving segments to another
// filesystem by copy), and Log.dropSegmentsBefore must not overlap itself.

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';

const actor = { name: 'tester', address: '127.0.0.1' };

async function snapshotCount(dir: string): Promise<number> {
  const names = await readdir(join(dir, 'snapshots')).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.snap')).length;
}

/** A server whose retention removes every segment the snapshots allow, at once: small segments,
 *  a snapshot as soon as there are new records, no retention window. The caller closes it. */
async function serveRetaining(t: Test): Promise<{ dir: string; running: Running }> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-retention-schedule-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = loadConfig({
    DATA_DIR: dir,
    HTTP_PORT: '0',
    HOST: '127.0.0.1',
    SEGMENT_BYTES: '4096',
    SNAPSHOT_INTERVAL_MS: '5',
    HISTORY_RETENTION_MS: '0',
  });
  return { dir, running: await serve(config, { logger: () => undefined }) };
}

/** Two snapshots (retention needs two valid ones before it removes anything) over a few segments. */
async function pushUntilTwoSnapshots(running: Running, dir: string): Promise<void> {
  for (let round = 1; round <= 2; round++) {
    for (let i = 0; i < 50; i++) await running.broker.push('q', { data: { round, i, pad: 'x'.repeat(100) } }, { actor });
    const deadline = Date.now() + 20_000;
    while ((await snapshotCount(dir)) < round && Date.now() < deadline) await sleep(20);
  }
}

t.test('retention-runs-never-overlap-when-one-outlasts-the-timer', async (t) => {
  const { dir, running } = await serveRetaining(t);
  t.teardown(() => running.close());

  let inFlight = 0;
  let inFlightMax = 0;
  let calls = 0;
  const drop = running.log.dropSegmentsBefore.bind(running.log);
  running.log.dropSegmentsBefore = async (offset, olderThanTs, archiveDir) => {
    calls++;
    inFlight++;
    inFlightMax = Math.max(inFlightMax, inFlight);
    try {
      await sleep(100); // a slow run: a copy into an archive on another filesystem
      return await drop(offset, olderThanTs, archiveDir);
    } finally {
      inFlight--;
    }
  };

  await pushUntilTwoSnapshots(running, dir);
  t.ok((await snapshotCount(dir)) >= 2, 'two snapshots written');
  // Retention removes only segments wholly below the older of the two newest snapshots; on a slow
  // machine both can fall in the first segment, and no snapshot follows without new records, so
  // a few more records come every 250 ms until one goes.
  const deadline = Date.now() + 10_000;
  let moreAt = Date.now() + 250;
  while ((calls < 3 || running.log.firstOffset === 0) && Date.now() < deadline) {
    if (running.log.firstOffset === 0 && Date.now() >= moreAt) {
      for (let i = 0; i < 10; i++) await running.broker.push('q', { data: { more: i, pad: 'x'.repeat(100) } }, { actor });
      moreAt = Date.now() + 250;
    }
    await sleep(20);
  }
  t.ok(calls >= 3, `retention ran (${calls} runs reached the log)`);
  t.equal(inFlightMax, 1, 'at most one retention run at a time');
  t.ok(running.log.firstOffset > 0, `segments below the older snapshot were removed (log starts at ${running.log.firstOffset})`);
});

t.test('the-close-waits-for-a-retention-run-under-way-before-closing-the-log', async (t) => {
  const { dir, running } = await serveRetaining(t);

  // Once two snapshots exist (retention removes nothing before), the next run to reach the log is
  // held at its start until the close has begun.
  let armed = false;
  let entered!: () => void;
  const runEntered = new Promise<void>((resolve) => (entered = resolve));
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  let runEndedOpen: boolean | null = null;
  let dropError: unknown = 'not run';
  const drop = running.log.dropSegmentsBefore.bind(running.log);
  let calls = 0;
  running.log.dropSegmentsBefore = async (offset, olderThanTs, archiveDir) => {
    if (!armed) return drop(offset, olderThanTs, archiveDir);
    if (++calls > 1) return [];
    entered();
    await held;
    try {
      const removed = await drop(offset, olderThanTs, archiveDir);
      dropError = null;
      return removed;
    } catch (error) {
      dropError = error;
      throw error;
    } finally {
      runEndedOpen = !logClosed;
    }
  };
  let logClosed = false;
  const closeLog = running.log.close.bind(running.log);
  running.log.close = async () => {
    logClosed = true;
    return closeLog();
  };

  await pushUntilTwoSnapshots(running, dir);
  armed = true;
  const deadline = Date.now() + 15_000;
  let reached = false;
  void runEntered.then(() => (reached = true));
  while (!reached && Date.now() < deadline) await sleep(20);
  t.ok(reached, 'a retention run reached the log after the second snapshot');

  let closed = false;
  const closing = running.close().then(() => (closed = true));
  await sleep(300);
  t.notOk(closed, 'the close is still waiting while the run is held');
  t.notOk(logClosed, 'the log is not closed under the run');
  release();
  await closing;
  t.equal(runEndedOpen, true, 'the run finished on an open log, before the close went on');
  t.equal(dropError, null, 'the held run reached the log and finished without an error');
  t.equal(calls, 1, 'no retention run started after the close began');
});
