// GET /health's `log` and `snapshots` and their /prometheus metrics (src/api/prometheus.ts) tell
// the truth about a real server: the log's offsets, segment count and bytes equal what its files
// hold, every group-commit fdatasync is counted in <p>_log_sync_duration_ms (one more push, at
// least one more sync), and the snapshot metrics name the newest snapshot file written. A
// `serve --until` server, which writes nothing, shows none of them.

import { mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve } from '../../src/main.js';
import { listSnapshots } from '../../src/snapshot/store.js';

/** The unlabelled samples of a Prometheus text body, by name. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+) (\S+)$/.exec(line);
    if (match !== null) out.set(match[1] as string, Number(match[2]));
  }
  return out;
}

async function push(url: string, i: number): Promise<void> {
  const response = await fetch(`${url}/queues/q/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ data: { i, pad: 'x'.repeat(60) } }) });
  if (!response.ok) throw new Error(`push ${i}: ${response.status}`);
}

t.test('log-and-snapshot-metrics-match-the-files-the-server-wrote', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-log-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Snapshots every 30 records, and 300 ms after the last one whenever records came since: the
  // last push is covered soon after it, wherever the record trigger's snapshots fell.
  const config = loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1', SEGMENT_BYTES: '4096', SNAPSHOT_EVERY_RECORDS: '30', SNAPSHOT_INTERVAL_MS: '300' });
  const lines: string[] = [];
  const s = await serve(config, { logger: (line) => lines.push(line) });
  const url = `http://127.0.0.1:${s.port}`;
  try {
    for (let i = 0; i < 120; i++) await push(url, i);
    // The snapshot of the last push: written once its line is, and none follows while no record
    // comes.
    const last = `snapshot-${String(s.log.durableOffset).padStart(20, '0')}.snap written`;
    for (const deadline = Date.now() + 15_000; !lines.some((line) => line.includes(last)); await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (Date.now() > deadline) throw new Error(`no snapshot at offset ${s.log.durableOffset} within 15 s`);
    }

    const health = (await (await fetch(`${url}/health`)).json()) as any;
    const metrics = samples(await (await fetch(`${url}/prometheus`)).text());
    const logDir = join(dir, 'log');
    const segmentFiles = (await readdir(logDir)).filter((name) => name.endsWith('.log')).sort();
    t.ok(segmentFiles.length >= 3, `${segmentFiles.length} segments`);
    // Sealed segments end at their last record; the active one has zeros preallocated after it.
    let sealedBytes = 0;
    for (const name of segmentFiles.slice(0, -1)) sealedBytes += (await stat(join(logDir, name))).size;
    const active = s.log.segments().at(-1);
    if (active === undefined) throw new Error('no active segment');
    const log = { startOffset: 0, endOffset: 120, segments: segmentFiles.length, bytes: sealedBytes + active.bytes };
    t.same(health.log, log, '/health log');
    t.equal(metrics.get('bunqueue_log_start_offset'), log.startOffset);
    t.equal(metrics.get('bunqueue_log_end_offset'), log.endOffset);
    t.equal(metrics.get('bunqueue_log_segments'), log.segments);
    t.equal(metrics.get('bunqueue_log_size_bytes'), log.bytes);

    // One sync or more per acknowledged push here (each waits for its own), one more per roll.
    const syncs = metrics.get('bunqueue_log_sync_duration_ms_count') ?? 0;
    t.ok(syncs >= 120, `${syncs} syncs for 120 pushes`);
    t.ok((metrics.get('bunqueue_log_sync_duration_ms_sum') ?? 0) > 0, 'the syncs took time');
    t.equal(metrics.get('bunqueue_log_sync_duration_ms_bucket'), undefined, 'buckets are labelled');

    const newest = (await listSnapshots(join(dir, 'snapshots')))[0];
    t.equal(newest?.offset, 120, 'the newest snapshot file');
    t.equal(health.snapshots.coveredOffset, 120);
    t.equal(metrics.get('bunqueue_snapshot_last_offset'), 120);
    const written = lines.filter((line) => / written in \d+ ms/.test(line) && line.startsWith('tapeq: snapshot ')).length;
    t.equal(health.snapshots.runs, written, 'one run per snapshot written');
    t.equal(metrics.get('bunqueue_snapshot_runs_total'), written);
    t.equal(health.snapshots.failedRuns, 0);
    t.equal(metrics.get('bunqueue_snapshot_failed_runs_total'), 0);
    const finishedAt = Date.parse(health.snapshots.lastFinishedAt);
    t.ok(Math.abs(Date.now() - finishedAt) < 60_000, `last snapshot at ${health.snapshots.lastFinishedAt}`);
    t.equal(metrics.get('bunqueue_snapshot_last_completed_timestamp_seconds'), finishedAt / 1000);
    t.type(health.snapshots.lastMs, 'number');

    await push(url, 120);
    const after = samples(await (await fetch(`${url}/prometheus`)).text());
    t.ok((after.get('bunqueue_log_sync_duration_ms_count') ?? 0) > syncs, 'the next push is synced and counted');
    t.equal(after.get('bunqueue_log_end_offset'), 121);
  } finally {
    await s.close();
  }

  // The same data directory served as of offset 60: it writes nothing, so it shows none of them.
  const pit = await serve(loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1' }), { logger: () => undefined, until: { kind: 'offset', offset: 60 } });
  try {
    const url2 = `http://127.0.0.1:${pit.port}`;
    const health = (await (await fetch(`${url2}/health`)).json()) as any;
    t.equal(health.log, undefined);
    t.equal(health.snapshots, undefined);
    const metrics = await (await fetch(`${url2}/prometheus`)).text();
    t.notMatch(metrics, /_log_|_snapshot_/);
  } finally {
    await pit.close();
  }
});

t.test('a-snapshot-that-fails-is-counted-in-failed-runs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-snapshot-fails-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1', SNAPSHOT_EVERY_RECORDS: '10' });
  const lines: string[] = [];
  const s = await serve(config, { logger: (line) => lines.push(line) });
  const url = `http://127.0.0.1:${s.port}`;
  try {
    // A file where the snapshots directory was: no snapshot can be written into it.
    const snapshots = join(dir, 'snapshots');
    await rm(snapshots, { recursive: true, force: true });
    await writeFile(snapshots, 'not a directory');
    for (let i = 0; i < 12; i++) await push(url, i);
    for (const deadline = Date.now() + 15_000; !lines.some((line) => line.startsWith('tapeq: snapshot failed')); await new Promise((resolve) => setTimeout(resolve, 50))) {
      if (Date.now() > deadline) throw new Error(`no failed snapshot within 15 s: ${lines.join('\n')}`);
    }
    const health = (await (await fetch(`${url}/health`)).json()) as any;
    t.ok(health.snapshots.failedRuns >= 1, `${health.snapshots.failedRuns} failed`);
    t.equal(health.snapshots.runs, 0);
    t.equal(health.snapshots.lastFinishedAt, null);
    const metrics = samples(await (await fetch(`${url}/prometheus`)).text());
    // A retry (1 s after the failure, then 2 s, …) may fail between the two reads.
    t.ok((metrics.get('bunqueue_snapshot_failed_runs_total') ?? 0) >= health.snapshots.failedRuns, 'the counter as /health has it');
    t.equal(metrics.get('bunqueue_snapshot_last_completed_timestamp_seconds'), undefined, 'no last time before a first snapshot');
  } finally {
    await s.close();
  }
});
