// `serve --repair` cuts the log at its first bad record; the state is then rebuilt from a
// snapshot at or before that record, or from offset 0. When retention has removed the log's
// beginning and no sound snapshot lies between the log's start and the cut, that rebuild is
// impossible: the repair must refuse before it moves anything (rebuildRefusal, recovery.ts's
// repairCheck), so the directory stays as it was and a copy of the damaged file can still be put
// back. Before, it quarantined the segments and set the newer snapshots aside, then failed.

import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve } from '../../src/main.js';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { rebuildRefusal } from '../../src/snapshot/recover-state.js';
import { listSnapshots, writeStateSnapshot } from '../../src/snapshot/store.js';
import { createState } from '../../src/state/index.js';

/** Every file under `dir` with its size, sorted: what "nothing moved" compares. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath ?? entry.path, entry.name);
    out.push(entry.isDirectory() ? `${path}/` : `${path} ${(await stat(path)).size}`);
  }
  return out.sort();
}

t.test('repair-that-could-not-rebuild-the-state-moves-nothing', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-repair-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const env = {
    DATA_DIR: dir,
    HTTP_PORT: '0',
    HOST: '127.0.0.1',
    SEGMENT_BYTES: '4096',
    SNAPSHOT_EVERY_RECORDS: '40',
    SNAPSHOT_INTERVAL_MS: '200',
    HISTORY_RETENTION_MS: '0',
    SNAPSHOT_RECOVERY_POINTS: '0',
    SCRUB_INTERVAL_MS: '0',
  };
  const s = await serve(loadConfig(env), { logger: () => {} });
  try {
    const url = `http://127.0.0.1:${s.port}`;
    const body = JSON.stringify({ data: { pad: 'x'.repeat(60) } });
    for (let i = 0; i < 400; i++) {
      const response = await fetch(`${url}/queues/q/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await response.arrayBuffer();
    }
    for (let waited = 0; s.log.firstOffset === 0 && waited < 15_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  } finally {
    await s.close();
  }
  // The first segment as the stopped server left it (retention may remove more until the close).
  const names = (await readdir(join(dir, 'log'))).filter((name) => /^\d{20}\.log$/.test(name)).sort();
  const firstFile = names[0];
  if (firstFile === undefined || Number(firstFile.slice(0, 20)) === 0) throw new Error('retention removed no segment within 15 s');
  const first = { file: firstFile, baseOffset: Number(firstFile.slice(0, 20)) };
  // The first record of the log's first segment is damaged; a snapshot exactly there (the state
  // before it) would make the cut rebuildable, so none may be left there.
  const snapshotsDir = join(dir, 'snapshots');
  for (const entry of await listSnapshots(snapshotsDir)) if (entry.offset === first.baseOffset) await rm(entry.file);
  t.ok((await listSnapshots(snapshotsDir)).every((e) => e.offset > first.baseOffset), 'every snapshot is past the damaged record');
  const fh = await open(join(dir, 'log', first.file), 'r+');
  const b = Buffer.alloc(1);
  const position = segmentHeaderBytes + 12;
  await fh.read(b, 0, 1, position);
  b[0] = (b[0] as number) ^ 0x40;
  await fh.write(b, 0, 1, position);
  await fh.close();

  // A snapshot write the close cut short leaves its `.tmp`, which any start removes as a dead
  // write's (store.ts): housekeeping, not what this test is about.
  for (const name of await readdir(snapshotsDir)) if (name.endsWith('.tmp')) await rm(join(snapshotsDir, name));
  const before = await tree(dir);
  await t.rejects(serve(loadConfig(env), { logger: () => {} }), { message: new RegExp(`corrupt record in .*${first.file} at byte ${segmentHeaderBytes} \\(record offset ${first.baseOffset}\\)`) }, 'a plain start refuses, naming the record');
  await t.rejects(
    serve(loadConfig(env), { logger: () => {}, repair: true }),
    { message: new RegExp(`record offset ${first.baseOffset}\\).*--repair refused, nothing was moved: the log would start at offset ${first.baseOffset} .*no sound snapshot at offset ${first.baseOffset} to ${first.baseOffset}`) },
    'the repair refuses and says why',
  );
  t.same(await tree(dir), before, 'no file was moved, cut or added');
});

t.test('rebuild-refusal-takes-offset-0-or-a-sound-snapshot-between-the-start-and-the-cut', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-rebuild-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  t.equal(await rebuildRefusal(dir, 50, 0), null, 'a log from offset 0 replays without a snapshot');
  t.match(await rebuildRefusal(dir, 50, 10), /no sound snapshot at offset 10 to 50/, 'no snapshot at all');
  const state = createState();
  state.offset = 30;
  const file = await writeStateSnapshot(dir, state);
  t.equal(await rebuildRefusal(dir, 50, 10), null, 'a snapshot inside [start, cut]');
  t.equal(await rebuildRefusal(dir, 30, 30), null, 'a snapshot exactly at the cut: the state before the bad record');
  t.match(await rebuildRefusal(dir, 29, 10), /no sound snapshot/, 'a snapshot after the cut holds records the cut sets aside');
  t.match(await rebuildRefusal(dir, 50, 31), /no sound snapshot/, 'a snapshot before the log starts cannot be extended');
  const fh = await open(file, 'r+');
  const size = (await fh.stat()).size;
  await fh.write(Buffer.from([0xff]), 0, 1, size - 3);
  await fh.close();
  t.match(await rebuildRefusal(dir, 50, 10), /no sound snapshot/, 'a damaged snapshot does not count');
});
