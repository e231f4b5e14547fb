// The scrub (src/snapshot/scrub.ts): a real server, its log sealed into small segments and
// snapshotted, re-reads its sealed segments and snapshots every SCRUB_INTERVAL_MS in a worker
// thread. A byte flipped at rest in a sealed segment or a snapshot is reported (server log, GET
// /health over HTTP, /prometheus) naming the file and, for a segment, the byte and record
// offset, while the server goes on acknowledging pushes; once the byte is put back, the next run
// clears it. Files removed during a run are passed over, a file that cannot be read for another
// reason fails the run without a fault, the server's close ends a run, and SCRUB_INTERVAL_MS=0
// runs nothing.

import { mkdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { scrubInWorker } from '../../src/snapshot/scrub.js';
import { listSnapshots, verifiedHeader, type SnapshotEntry } from '../../src/snapshot/store.js';
import { flip, health, push, scrubUntil, withScrubServer, type Served } from './scrub-helpers.js';

/** A server whose log seals into 4 KiB segments and is snapshotted every 40 records. */
const withServer = (env: Record<string, string>, body: (served: Served) => Promise<void>): Promise<void> =>
  withScrubServer({ SEGMENT_BYTES: '4096', SNAPSHOT_EVERY_RECORDS: '40' }, env, body);

/** Waits (up to 15 s) for the first snapshot file and returns it. */
async function snapshotWritten(dir: string): Promise<SnapshotEntry> {
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 50))) {
    const first = (await listSnapshots(dir))[0];
    if (first !== undefined) return first;
  }
  throw new Error(`no snapshot in ${dir} within 15 s`);
}

t.test('a-sound-log-scrubs-clean-then-a-flipped-byte-in-a-sealed-segment-is-reported-with-its-byte-and-record-offset-and-pushes-go-on', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '200' }, async ({ s, url, lines }) => {
    for (let i = 0; i < 120; i++) t.ok((await push(url, i)).ok) || t.bailout('push refused');
    const sealed = s.log.segments().length - 1;
    t.ok(sealed >= 3, `${sealed} sealed segments`);
    await snapshotWritten(join(s.log.dir, '..', 'snapshots'));
    // A run that started after the pushes and the snapshot reads every segment sealed by then.
    const seen = (await health(url)).scrub.runs;
    const scrub = await scrubUntil(url, 'a run after the pushes', (x) => x.runs >= seen + 2);
    t.equal(scrub.faultCount, 0);
    t.same(scrub.faults, []);
    t.ok(scrub.segments >= sealed, `${scrub.segments} segments read`);
    t.ok(scrub.snapshots >= 1, `${scrub.snapshots} snapshots read`);
    t.ok(scrub.bytes > sealed * 2048, `${scrub.bytes} bytes`);
    t.equal(scrub.intervalMs, 200);
    t.equal(scrub.lastError, null);
    t.match(scrub.lastFinishedAt, /^\d{4}-\d\d-\d\dT/);
    const metrics = await (await fetch(`${url}/prometheus`)).text();
    t.match(metrics, /\n\w+_scrub_faults 0\n/);
    t.match(metrics, /\n\w+_scrub_runs_total \d+\n/);
    t.ok(lines.some((line) => line.startsWith('tapeq: scrub: ok: ')), 'a run logs its summary');

    // Damage at rest in a sealed segment.
    const segment = s.log.segments()[1];
    if (segment === undefined) throw new Error('no second segment');
    const file = join(s.log.dir, segment.file);
    const position = Math.floor(segment.bytes / 2);
    await flip(file, position);
    const damaged = await scrubUntil(url, 'the fault', (x) => x.faultCount > 0);
    t.equal(damaged.faultCount, 1);
    t.equal(damaged.faults[0].file, file);
    t.match(damaged.faults[0].problem, /^corrupt record at byte \d+ \(record offset \d+\): /);
    const [, byte, offset] = /at byte (\d+) \(record offset (\d+)\)/.exec(damaged.faults[0].problem) ?? [];
    t.ok(Number(byte) <= position, `the damaged frame starts at ${byte}, at or before the flipped byte ${position}`);
    t.ok(Number(offset) >= segment.baseOffset && Number(offset) < segment.nextOffset, `record ${offset} is in the segment`);
    t.ok(lines.some((line) => line === `tapeq: scrub: FAULT ${file}: ${damaged.faults[0].problem}`), 'the fault is in the server log');
    t.match(await (await fetch(`${url}/prometheus`)).text(), /\n\w+_scrub_faults 1\n/);
    const h = await health(url);
    t.equal(h.status, 'healthy', 'the live state is in memory: the server stays ready');
    t.ok((await push(url, 1_000)).ok, 'pushes are still acknowledged');

    await flip(file, position);
    const again = await scrubUntil(url, 'a clean run after the repair', (x) => x.faultCount === 0);
    t.same(again.faults, [], 'the fault stays until a run finds the file sound');
  });
});

t.test('a-damaged-snapshot-is-reported-by-its-file-and-retention-forgets-its-cached-verdict', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '400' }, async ({ dir, url }) => {
    for (let i = 0; i < 60; i++) await push(url, i);
    const snapshot = await snapshotWritten(join(dir, 'snapshots'));
    // Retention's verdict (store.ts) is cached by size and mtime: damage in place that keeps
    // both is what only a full read finds, and the scrub's fault must drop that verdict. The
    // mtime is set to a whole second before and after the damage, so that it is the same to the
    // nanosecond; all of it happens just after a run, 400 ms before the next one.
    const { size } = await stat(snapshot.file);
    const second = Math.floor(Date.now() / 1000) - 60;
    const runs = (await scrubUntil(url, 'a first run', (x) => x.runs >= 1)).runs;
    await scrubUntil(url, 'the next run', (x) => x.runs > runs);
    await utimes(snapshot.file, second, second);
    t.ok((await verifiedHeader(snapshot)) !== null, 'retention holds the snapshot valid');
    await flip(snapshot.file, size - 8);
    await utimes(snapshot.file, second, second);
    t.ok((await verifiedHeader(snapshot)) !== null, 'the cached verdict does not see damage that kept size and mtime');
    t.equal((await health(url)).scrub.runs, runs + 1, 'no run ended meanwhile');
    const scrub = await scrubUntil(url, 'the snapshot fault', (x) => x.faults.some((f: any) => f.file === snapshot.file));
    t.match(scrub.faults.find((f: any) => f.file === snapshot.file).problem, /checksum mismatch/);
    t.equal(await verifiedHeader(snapshot), null, "after the scrub's fault, retention reads the file again and finds it bad");
  });
});

t.test('a-run-that-cannot-read-a-file-fails-without-faults-and-the-last-findings-stand', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '200', SNAPSHOT_EVERY_RECORDS: '1000000' }, async ({ dir, url, lines }) => {
    for (let i = 0; i < 60; i++) await push(url, i);
    await scrubUntil(url, 'a completed run', (x) => x.runs >= 1);
    // A snapshots path the listing cannot read (not a directory: ENOTDIR) says nothing about
    // the files; the run must not report damage.
    const snapshots = join(dir, 'snapshots');
    await rm(snapshots, { recursive: true, force: true });
    await writeFile(snapshots, 'not a directory');
    const failed = await scrubUntil(url, 'a failed run', (x) => x.failedRuns >= 1);
    t.match(failed.lastError, /ENOTDIR/);
    t.equal(failed.faultCount, 0, 'no fault: the last completed run stands');
    t.ok(lines.some((line) => line.startsWith("tapeq: scrub: the run did not complete (the last completed run's findings stand): ")));
    t.match(await (await fetch(`${url}/prometheus`)).text(), /\n\w+_scrub_failed_runs_total [1-9]\d*\n/);
    await rm(snapshots);
    await mkdir(snapshots);
    const runs = failed.runs;
    const again = await scrubUntil(url, 'a completed run after the fix', (x) => x.runs > runs);
    t.equal(again.lastError, null);
  });
});

t.test('closing-the-server-during-a-run-ends-the-run-at-once', async (t) => {
  // Many small sealed segments make a run of seconds (each file's read is followed by a pause
  // three times as long); the server's close must not wait for it.
  await withServer({ SCRUB_INTERVAL_MS: '300', SNAPSHOT_EVERY_RECORDS: '1000000' }, async ({ s, url, lines }) => {
    const jobs = Array.from({ length: 100 }, (_, i) => ({ data: { i, pad: 'y'.repeat(200) } }));
    for (let i = 0; i < 30; i++) {
      const response = await fetch(`${url}/queues/q/jobs/bulk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
      t.equal(response.status, 200);
    }
    t.ok(s.log.segments().length > 200, `${s.log.segments().length} segments`);
    await scrubUntil(url, 'a run under way', (x) => x.running);
    const started = performance.now();
    await s.close();
    const ms = performance.now() - started;
    t.ok(ms < 3_000, `closed in ${Math.round(ms)} ms`);
    t.notOk(lines.some((line) => line.includes('did not complete')), 'a run ended by the close is not a failed run');
  });
});

t.test('scrub-interval-0-runs-no-scrub-and-files-removed-before-a-run-reads-them-are-passed-over', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '0' }, async ({ s, dir, url, lines }) => {
    for (let i = 0; i < 60; i++) await push(url, i);
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.notOk('scrub' in (await health(url)), 'no scrub in /health');
    t.notMatch(await (await fetch(`${url}/prometheus`)).text(), /_scrub_/);
    t.notOk(lines.some((line) => line.includes('scrub')));

    // A run by hand over this log, with a segment listed that is gone (retention removed it).
    const bases = s.log.segments().slice(0, -1).map((x) => x.baseOffset);
    const result = await scrubInWorker({ logDir: s.log.dir, snapshotsDir: join(dir, 'snapshots'), logId: s.log.logId, bases: [...bases, 99_999_999], active: null });
    t.equal(result.gone, 1, 'the missing segment');
    t.equal(result.faultCount, 0);
    t.equal(result.segments, bases.length);
  });
});
