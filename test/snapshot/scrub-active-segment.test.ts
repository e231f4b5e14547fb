// The scrub's read of the active segment (src/snapshot/scrub.ts): a run reads the segment still
// being written up to the end its group commit had synced when the run started, and no further.
// A byte flipped inside a synced record there is reported (server log, GET /health, /prometheus)
// with its file, byte position and record offset, and no longer once it is put back. Never read
// as damage: the zeros preallocated ahead of the writes, records written after the run took its
// end (under LOG_SYNC=interval, records written but not yet synced), and a segment that a roll
// sealed after the run took its end, or while runs go on under load. A file cut short before the
// synced end is damage. Real files; real servers on 127.0.0.1, or the scrub's own entry point
// (scrubInWorker with the job the server builds, scrubJobOf). Every wait is bounded.

import { mkdtemp, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Log } from '../../src/log/log.js';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { scrubInWorker, scrubJobOf, type ScrubJob } from '../../src/snapshot/scrub.js';
import { drafts } from '../log/helpers.js';
import { flip, health, push, scrubUntil, withScrubServer, type Served } from './scrub-helpers.js';

/** A server that snapshots only past a million records. */
const withServer = (env: Record<string, string>, body: (served: Served) => Promise<void>): Promise<void> =>
  withScrubServer({ SNAPSHOT_EVERY_RECORDS: '1000000' }, env, body);

function activeOf(job: ScrubJob): { baseOffset: number; bytes: number } {
  if (job.active === null) throw new Error('the job reads no active segment');
  return job.active;
}

/** The byte position and record offset a fault's problem names. */
function located(problem: string): { byte: number; offset: number } {
  const [, byte, offset] = /at byte (\d+) \(record offset (\d+)\)/.exec(problem) ?? [];
  return { byte: Number(byte), offset: Number(offset) };
}

t.test('a-flipped-byte-in-a-synced-record-of-the-active-segment-is-reported-with-its-byte-and-record-offset-and-cleared-once-put-back', async (t) => {
  // One 64 KiB segment: nothing rolls, so every record is in the active segment.
  await withServer({ SCRUB_INTERVAL_MS: '200', SEGMENT_BYTES: String(64 * 1024) }, async ({ s, url, lines }) => {
    for (let i = 0; i < 40; i++) t.ok((await push(url, i)).ok) || t.bailout('push refused');
    t.equal(s.log.segments().length, 1, 'only the active segment');
    const active = s.log.segments()[0];
    if (active === undefined) throw new Error('no segment');
    const file = join(s.log.dir, active.file);
    // Acknowledged under LOG_SYNC=always: synced.
    const acknowledgedBytes = active.bytes;
    const seen = (await health(url)).scrub.runs;
    const clean = await scrubUntil(url, 'a run after the pushes', (x) => x.runs >= seen + 2);
    t.equal(clean.faultCount, 0);
    t.equal(clean.segments, 0, 'no sealed segment');
    t.ok(clean.activeBytes >= acknowledgedBytes, `the active segment read up to byte ${clean.activeBytes} (acknowledged: ${acknowledgedBytes})`);
    t.ok((await stat(file)).size > clean.activeBytes, 'the preallocated zeros after the records are there, and not reported');
    t.ok(lines.some((line) => line.startsWith('tapeq: scrub: ok: 0 sealed segment(s), the active segment up to byte ')), 'the summary says what was read');

    const position = Math.floor((segmentHeaderBytes + acknowledgedBytes) / 2);
    await flip(file, position);
    const damaged = await scrubUntil(url, 'the fault', (x) => x.faultCount > 0);
    t.equal(damaged.faultCount, 1);
    t.equal(damaged.faults[0].file, file);
    t.match(damaged.faults[0].problem, /^corrupt record at byte \d+ \(record offset \d+\): /);
    const { byte, offset } = located(damaged.faults[0].problem);
    t.ok(byte <= position && position - byte < 200, `the damaged frame starts at ${byte}, just before the flipped byte ${position}`);
    t.ok(offset >= active.baseOffset && offset < s.log.nextOffset, `record ${offset} is in the segment`);
    t.ok(lines.some((line) => line === `tapeq: scrub: FAULT ${file}: ${damaged.faults[0].problem}`), 'the fault is in the server log');
    t.match(await (await fetch(`${url}/prometheus`)).text(), /\n\w+_scrub_faults 1\n/);
    t.equal((await health(url)).status, 'healthy', 'the live state is in memory: the server stays ready');
    t.ok((await push(url, 1_000)).ok, 'pushes are still acknowledged');

    await flip(file, position);
    const again = await scrubUntil(url, 'a clean run after the repair', (x) => x.faultCount === 0);
    t.same(again.faults, [], 'the fault stays until a run finds the file sound');
  });
});

t.test('the-preallocated-zeros-and-records-written-after-a-run-took-its-synced-end-are-never-read', async (t) => {
  // No timer: each run is started by hand, with the job the server's scrubber builds.
  await withServer({ SCRUB_INTERVAL_MS: '0', SEGMENT_BYTES: String(64 * 1024) }, async ({ s, dir, url }) => {
    const snapshotsDir = join(dir, 'snapshots');
    for (let i = 0; i < 20; i++) await push(url, i);
    const job = scrubJobOf(s.log, snapshotsDir);
    const end = activeOf(job).bytes;
    const file = join(s.log.dir, s.log.segments()[0]?.file ?? '');
    t.equal(end, s.log.segments()[0]?.bytes, 'every acknowledged record is synced');
    const size = (await stat(file)).size;
    t.ok(size > end, `zeros preallocated from byte ${end} to ${size}`);
    const first = await scrubInWorker(job);
    t.equal(first.faultCount, 0, 'the zeros are not read');
    t.equal(first.activeBytes, end);
    // Control: read on into the zeros, the first of them would be a frame of length 0.
    const past = await scrubInWorker({ ...job, active: { ...activeOf(job), bytes: size } });
    t.equal(past.faultCount, 1, 'a read past the synced end would find the zeros bad');
    t.match(past.faults[0]?.problem, new RegExp(`^corrupt record at byte ${end} \\(record offset \\d+\\): frame length out of range$`));

    // Records written after the run took its end; one of them is damaged, as a write under way
    // would read: the run that took the earlier end does not see it.
    for (let i = 20; i < 40; i++) await push(url, i);
    const later = s.log.segments()[0]?.bytes ?? 0;
    t.ok(later > end, `records up to byte ${later} written since`);
    const position = Math.floor((end + later) / 2);
    await flip(file, position);
    const before = await scrubInWorker(job);
    t.equal(before.faultCount, 0, 'bytes after the end a run started with are not read');
    t.equal(before.activeBytes, end);
    const now = await scrubInWorker(scrubJobOf(s.log, snapshotsDir));
    t.equal(now.faultCount, 1, 'the next run reads them and finds the damage');
    t.ok(located(now.faults[0]?.problem ?? '').byte >= end, 'in the records written after the first run started');
    await flip(file, position);
    t.equal((await scrubInWorker(scrubJobOf(s.log, snapshotsDir))).faultCount, 0, 'sound again once put back');
  });
});

t.test('under-log-sync-interval-records-written-but-not-yet-synced-are-not-read', async (t) => {
  // Five seconds between syncs: a push without `durable` is acknowledged once written, unsynced,
  // and a push with it waits for the next sync.
  await withServer({ SCRUB_INTERVAL_MS: '0', SEGMENT_BYTES: String(64 * 1024), LOG_SYNC: 'interval', LOG_SYNC_INTERVAL_MS: '5000' }, async ({ s, dir, url }) => {
    const snapshotsDir = join(dir, 'snapshots');
    for (let i = 0; i < 20; i++) await push(url, i);
    const written = s.log.segments()[0]?.bytes ?? 0;
    const job = scrubJobOf(s.log, snapshotsDir);
    const synced = activeOf(job).bytes;
    t.ok(synced < written, `written up to byte ${written}, synced up to ${synced}: the run reads to the synced end`);
    const file = join(s.log.dir, s.log.segments()[0]?.file ?? '');
    const position = Math.floor((Math.max(synced, segmentHeaderBytes) + written) / 2);
    await flip(file, position);
    const result = await scrubInWorker(job);
    t.equal(result.faultCount, 0, 'an unsynced record is not read');
    t.equal(result.activeBytes, synced);
    t.ok((await push(url, 20, true)).ok, 'a durable push: everything written before it is synced');
    const after = await scrubInWorker(scrubJobOf(s.log, snapshotsDir));
    t.equal(after.faultCount, 1, 'once synced, the damaged record is read and reported');
    t.ok(located(after.faults[0]?.problem ?? '').byte >= synced);
    await flip(file, position);
  });
});

t.test('a-roll-after-a-run-took-its-synced-end-reads-the-sealed-segment-up-to-that-end-without-a-false-report', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '0', SEGMENT_BYTES: '4096' }, async ({ s, dir, url }) => {
    const snapshotsDir = join(dir, 'snapshots');
    for (let i = 0; i < 10; i++) await push(url, i);
    const job = scrubJobOf(s.log, snapshotsDir);
    const { baseOffset, bytes } = activeOf(job);
    t.equal(s.log.segments().at(-1)?.baseOffset, baseOffset, 'the job names the active segment');
    // The segment the job calls active rolls, and so does the next: it is sealed, trimmed to its
    // records, before the run reads it.
    for (let i = 10; s.log.segments().length < job.bases.length + 3; i++) {
      if (i > 2_000) throw new Error('no roll after 2,000 pushes');
      await push(url, i);
    }
    const sealed = s.log.segments().find((x) => x.baseOffset === baseOffset);
    const file = join(s.log.dir, sealed?.file ?? '');
    t.equal((await stat(file)).size, sealed?.bytes, 'sealed: its zeros cut');
    t.ok((sealed?.bytes ?? 0) > bytes, `sealed at byte ${sealed?.bytes}, after the end the run took (${bytes})`);
    const result = await scrubInWorker(job);
    t.equal(result.faultCount, 0, 'no false report');
    t.equal(result.gone, 0);
    t.equal(result.activeBytes, bytes, 'read up to the end the run started with');
    t.equal(result.segments, job.bases.length);
    const next = scrubJobOf(s.log, snapshotsDir);
    t.ok(next.bases.includes(baseOffset), 'the next run reads it as a sealed segment');
    t.equal((await scrubInWorker(next)).faultCount, 0);
  });
});

t.test('runs-beside-pushes-that-roll-segments-report-nothing', async (t) => {
  // Runs every 50 ms while four clients push into 4 KiB segments: the active segment rolls a few
  // times a second, during runs as well as between them. The pushers pause between pushes, so
  // that sealed segments (each run reads them all) pile up slowly enough for runs to go on.
  await withServer({ SCRUB_INTERVAL_MS: '50', SEGMENT_BYTES: '4096' }, async ({ s, url, lines }) => {
    const runsFirst = (await health(url)).scrub.runs;
    const segmentsFirst = s.log.segments().length;
    let stop = false;
    let pushed = 0;
    const pusher = async (k: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        if ((await push(url, k * 1_000_000 + i)).ok) pushed++;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const pushers = [0, 1, 2, 3].map(pusher);
    // Rolls seen while a run was under way: two looks at /health found the same run running,
    // and the segment count grew between two counts taken between those looks.
    let rollsDuringRuns = 0;
    let scrub: any;
    try {
      let running: { runs: number; segments: number } | null = null;
      for (const deadline = Date.now() + 30_000; ; await new Promise((resolve) => setTimeout(resolve, 20))) {
        const segments = s.log.segments().length;
        scrub = (await health(url)).scrub;
        if (scrub.runs >= runsFirst + 4) break;
        if (Date.now() > deadline) throw new Error(`four runs under load not seen within 30 s; last: ${JSON.stringify(scrub)}`);
        if (running !== null && scrub.running === true && scrub.runs === running.runs && segments > running.segments) rollsDuringRuns++;
        running = scrub.running === true ? { runs: scrub.runs as number, segments: s.log.segments().length } : null;
      }
    } finally {
      stop = true;
      await Promise.all(pushers);
    }
    const rolls = s.log.segments().length - segmentsFirst;
    t.ok(rolls >= 5, `${rolls} rolls and ${pushed} pushes during the runs`);
    t.ok(rollsDuringRuns >= 1, `${rollsDuringRuns} roll(s) seen while a run was under way`);
    t.equal(scrub.failedRuns, 0);
    t.notOk(lines.some((line) => line.includes('scrub: FAULT') || line.includes('did not complete')), 'no run reported a fault or failed');
    t.ok(lines.filter((line) => line.startsWith('tapeq: scrub: ok: ')).length >= 4, 'every run was clean');
  });
});

t.test('an-active-segment-cut-short-of-its-synced-end-is-reported', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-scrub-active-cut-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const log = await Log.open({ dir, segmentBytes: 1024 * 1024, logger: () => {} });
  await log.append(drafts(0, 10), { durable: true }).durable;
  const job: ScrubJob = { logDir: dir, snapshotsDir: join(dir, 'no-snapshots'), logId: log.logId, bases: [], active: log.syncedEnd() };
  await log.close();
  const { bytes } = activeOf(job);
  const file = join(dir, log.segments()[0]?.file ?? '');
  // keepAlive (the third argument): no server holds this process open while the worker runs.
  t.equal((await scrubInWorker(job, undefined, true)).faultCount, 0, 'whole');
  // Cut inside the last frame: that frame runs past the end of the file.
  await truncate(file, bytes - 3);
  const inFrame = await scrubInWorker(job, undefined, true);
  t.equal(inFrame.faultCount, 1);
  t.match(inFrame.faults[0]?.problem, /^corrupt record at byte \d+ \(record offset 9\): frame runs past the end of the file$/);
  // Cut where that frame starts: every frame left is whole, but records the writer synced are gone.
  const lastFrame = located(inFrame.faults[0]?.problem ?? '').byte;
  await truncate(file, lastFrame);
  const atFrame = await scrubInWorker(job, undefined, true);
  t.equal(atFrame.faultCount, 1);
  t.equal(atFrame.faults[0]?.problem, `corrupt record at byte ${lastFrame} (record offset 9): the file ends at byte ${lastFrame}, before the end of its synced records at byte ${bytes}`);
});
