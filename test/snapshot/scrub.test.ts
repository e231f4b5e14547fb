// The scrub (src/snapshot/scrub.ts): a real server, its log sealed into small segments and
// snapshotted, re-reads its sealed segments and snapshots every SCRUB_INTERVAL_MS in a worker
// thread. A byte flipped at rest in a sealed segment or a snapshot is reported (server log, GET
// /health over HTTP, /prometheus) naming the file and, for a segment, the byte and record
// offset, while the server goes on acknowledging pushes; once the byte is put back, the next run
// clears it. Files removed during a run are passed over; SCRUB_INTERVAL_MS=0 runs nothing.

import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';
import { scrubInWorker } from '../../src/snapshot/scrub.js';
import { listSnapshots } from '../../src/snapshot/store.js';

interface Served {
  s: Running;
  dir: string;
  url: string;
  lines: string[];
}

async function withServer(env: Record<string, string>, body: (served: Served) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-scrub-'));
  const lines: string[] = [];
  const config = loadConfig({ DATA_DIR: dir, HTTP_PORT: '0', HOST: '127.0.0.1', SEGMENT_BYTES: '4096', SNAPSHOT_EVERY_RECORDS: '40', ...env });
  const s = await serve(config, { logger: (line) => lines.push(line) });
  try {
    await body({ s, dir, url: `http://127.0.0.1:${s.port}`, lines });
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function push(url: string, i: number): Promise<{ ok: boolean }> {
  const response = await fetch(`${url}/queues/q/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data: { i, pad: 'x'.repeat(60) } }),
  });
  return (await response.json()) as { ok: boolean };
}

async function health(url: string): Promise<any> {
  return (await fetch(`${url}/health`)).json();
}

/** Polls GET /health until `done` holds for its `scrub` (up to 15 s). */
async function scrubUntil(url: string, what: string, done: (scrub: any) => boolean): Promise<any> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const scrub = (await health(url)).scrub;
    if (done(scrub)) return scrub;
    if (Date.now() > deadline) throw new Error(`scrub: ${what} not seen within 15 s; last: ${JSON.stringify(scrub)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Flips one bit of the byte at `position` (again: puts it back). */
async function flip(file: string, position: number): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, position);
    b[0] = (b[0] as number) ^ 0x40;
    await fh.write(b, 0, 1, position);
  } finally {
    await fh.close();
  }
}

t.test('a-sound-log-scrubs-clean-and-every-sealed-segment-and-snapshot-is-read', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '200' }, async ({ s, url, lines }) => {
    for (let i = 0; i < 120; i++) t.ok((await push(url, i)).ok) || t.bailout('push refused');
    const sealed = s.log.segments().length - 1;
    t.ok(sealed >= 3, `${sealed} sealed segments`);
    // A run that started after the pushes reads every segment sealed by then.
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
  });
});

t.test('a-flipped-byte-in-a-sealed-segment-is-reported-with-its-byte-and-record-offset-and-pushes-go-on', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '200' }, async ({ s, url, lines }) => {
    for (let i = 0; i < 120; i++) await push(url, i);
    const segment = s.log.segments()[1];
    if (segment === undefined) throw new Error('no second segment');
    const file = join(s.log.dir, segment.file);
    const position = Math.floor(segment.bytes / 2);
    await flip(file, position);
    const scrub = await scrubUntil(url, 'the fault', (x) => x.faultCount > 0);
    t.equal(scrub.faultCount, 1);
    t.equal(scrub.faults[0].file, file);
    t.match(scrub.faults[0].problem, /^corrupt record at byte \d+ \(record offset \d+\): /);
    const [, byte, offset] = /at byte (\d+) \(record offset (\d+)\)/.exec(scrub.faults[0].problem) ?? [];
    t.ok(Number(byte) <= position, `the damaged frame starts at ${byte}, at or before the flipped byte ${position}`);
    t.ok(Number(offset) >= segment.baseOffset && Number(offset) < segment.nextOffset, `record ${offset} is in the segment`);
    t.ok(lines.some((line) => line === `tapeq: scrub: FAULT ${file}: ${scrub.faults[0].problem}`), 'the fault is in the server log');
    t.match(await (await fetch(`${url}/prometheus`)).text(), /\n\w+_scrub_faults 1\n/);
    const h = await health(url);
    t.equal(h.status, 'healthy', 'the live state is in memory: the server stays ready');
    t.ok((await push(url, 1_000)).ok, 'pushes are still acknowledged');

    await flip(file, position);
    const again = await scrubUntil(url, 'a clean run after the repair', (x) => x.faultCount === 0);
    t.same(again.faults, [], 'the fault stays until a run finds the file sound');
  });
});

t.test('a-damaged-snapshot-is-reported-by-its-file', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '200' }, async ({ dir, url }) => {
    for (let i = 0; i < 60; i++) await push(url, i);
    const deadline = Date.now() + 15_000;
    let snapshots = await listSnapshots(join(dir, 'snapshots'));
    while (snapshots.length === 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      snapshots = await listSnapshots(join(dir, 'snapshots'));
    }
    const snapshot = snapshots[0];
    if (snapshot === undefined) throw new Error('no snapshot written');
    const fh = await open(snapshot.file, 'r');
    const size = (await fh.stat()).size;
    await fh.close();
    await flip(snapshot.file, size - 8);
    const scrub = await scrubUntil(url, 'the snapshot fault', (x) => x.faults.some((f: any) => f.file === snapshot.file));
    t.match(scrub.faults.find((f: any) => f.file === snapshot.file).problem, /checksum|corrupt|mismatch/i);
  });
});

t.test('files-removed-before-the-run-reads-them-are-passed-over-not-faults', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '0' }, async ({ s, dir, url }) => {
    for (let i = 0; i < 60; i++) await push(url, i);
    const bases = s.log.segments().slice(0, -1).map((x) => x.baseOffset);
    const result = await scrubInWorker({ logDir: s.log.dir, snapshotsDir: join(dir, 'snapshots'), logId: s.log.logId, bases: [...bases, 99_999_999] });
    t.equal(result.gone, 1, 'the missing segment');
    t.equal(result.faultCount, 0);
    t.equal(result.segments, bases.length);
  });
});

t.test('scrub-interval-0-runs-no-scrub-and-shows-none', async (t) => {
  await withServer({ SCRUB_INTERVAL_MS: '0' }, async ({ url, lines }) => {
    for (let i = 0; i < 60; i++) await push(url, i);
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.notOk('scrub' in (await health(url)), 'no scrub in /health');
    t.notMatch(await (await fetch(`${url}/prometheus`)).text(), /_scrub_/);
    t.notOk(lines.some((line) => line.includes('scrub')));
  });
});
