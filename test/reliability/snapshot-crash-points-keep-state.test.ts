// SPEC 3 "Snapshots are written atomically (temp file, fsync, rename, fsync dir), carry the log
// offset they cover and a checksum; a bad snapshot falls back to an older one or to full replay",
// and the compaction that removes segments behind snapshots, at each crash point.
//
// A data dir holds a real broker workload in 4 KiB segments and two snapshots (S1 < S2 < end). For
// each crash point the dir is copied, damaged as the crash would leave it, and started the way
// `serve` starts (Log.open writable + loadState). In every case the started state's digest equals
// the full replay of the pristine log (nothing acknowledged disappears, nothing removed comes
// back), the snapshot used is the newest valid one, fallbacks are reported, and a second start
// gives the same digest. When no usable snapshot can extend the log, start fails with a clear
// RecoveryError instead of a partial state.
//
//   crash point                                     expected start
//   .tmp written, never renamed (whole or partial)  S2, .tmp removed and reported
//   renamed, dir not synced: new name lost / kept   S2 / S3 (both = full replay)
//   newest snapshot corrupt (bit flip, truncated)   S1, "unusable … trying older" reported
//   both snapshots corrupt                          full replay from offset 0
//   compaction: all / some segments unlinked        S2 (or S1 + tail)
//   compaction: .log unlinked, index files left     S2, leftovers harmless
//   segments unlinked and every snapshot corrupt    RecoveryError naming the missing range

import { cp, readFile, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import { Log } from '../../src/log/log.js';
import type { LogRecord } from '../../src/record/types.js';
import { compact } from '../../src/snapshot/retention.js';
import { RecoveryError, loadState } from '../../src/snapshot/recover-state.js';
import { snapshotFileName, writeSnapshot } from '../../src/snapshot/store.js';
import { apply, createState, exportState } from '../../src/state/index.js';
import { LONG, seededRng, tempDir } from '../fixtures/reliability/common.js';
import { writeWorkload } from '../fixtures/reliability/workload.js';

interface Started {
  digest: string;
  fromSnapshot: string | null;
  lines: string[];
}

/** What serve does before listening: open the log writable, load newest snapshot + tail. */
async function start(dataDir: string): Promise<Started> {
  const lines: string[] = [];
  const logger = (l: string): void => void lines.push(l);
  const log = await Log.open({ dir: join(dataDir, 'log'), segmentBytes: 4096, logger });
  try {
    const loaded = await loadState({ log, dir: join(dataDir, 'snapshots'), logger });
    return { digest: digestOf(loaded.state), fromSnapshot: loaded.fromSnapshot === null ? null : (loaded.fromSnapshot.split('/').pop() ?? null), lines };
  } finally {
    await log.close();
  }
}

function stateAt(records: LogRecord[], offset: number) {
  const state = createState();
  for (const r of records.slice(0, offset)) apply(state, r);
  return state;
}

async function flipByte(path: string, position: number): Promise<void> {
  const bytes = await readFile(path);
  const at = Math.min(position, bytes.length - 1);
  bytes[at] = (bytes[at] as number) ^ 0x10;
  await writeFile(path, bytes);
}

t.test('every snapshot and compaction crash point starts at the full-replay state', async (t) => {
  const rng = seededRng(t, 'snapshot-crash-points');
  const root = await tempDir(t, 'snapcrash');
  const pristine = join(root, 'pristine');
  const records = await writeWorkload(join(pristine, 'log'), rng.seed, LONG ? 3_000 : 600, { segmentBytes: 4096 });
  const end = records.length;
  const s1 = Math.floor(end * (0.3 + rng.next() * 0.2));
  const s2 = Math.floor(end * (0.6 + rng.next() * 0.2));
  const s3 = end - 1 - rng.int(Math.max(1, end - s2 - 1));
  const snapshots = join(pristine, 'snapshots');
  await writeSnapshot(snapshots, exportState(stateAt(records, s1)));
  await writeSnapshot(snapshots, exportState(stateAt(records, s2)));
  const full = digestOf(stateAt(records, end));
  const name = { s1: snapshotFileName(s1), s2: snapshotFileName(s2), s3: snapshotFileName(s3) };
  const s3Bytes = await (async () => {
    const scratch = join(root, 'scratch');
    return readFile(await writeSnapshot(scratch, exportState(stateAt(records, s3))));
  })();
  const segments = (await readdir(join(pristine, 'log'))).filter((n) => n.endsWith('.log')).sort();
  t.comment(`records=${end} segments=${segments.length} S1=${s1} S2=${s2} S3=${s3}`);

  const cases: Array<{ what: string; damage: (dir: string) => Promise<void>; from: string | null; report?: RegExp }> = [
    { what: 'no crash', damage: async () => undefined, from: name.s2 },
    {
      what: '.tmp fully written, never renamed',
      damage: (dir) => writeFile(join(dir, 'snapshots', `${name.s3}.tmp`), s3Bytes),
      from: name.s2,
      report: /removed unfinished snapshot/,
    },
    {
      what: '.tmp half written',
      damage: (dir) => writeFile(join(dir, 'snapshots', `${name.s3}.tmp`), s3Bytes.subarray(0, s3Bytes.length >> 1)),
      from: name.s2,
      report: /removed unfinished snapshot/,
    },
    { what: 'renamed, dir not synced: the new name was lost', damage: async () => undefined, from: name.s2 },
    { what: 'renamed, dir not synced: the new name survived', damage: (dir) => writeFile(join(dir, 'snapshots', name.s3), s3Bytes), from: name.s3 },
    {
      what: 'newest snapshot has a flipped payload byte',
      damage: (dir) => flipByte(join(dir, 'snapshots', name.s2), 48 + rng.int(64)),
      from: name.s1,
      report: /unusable.*trying older/,
    },
    {
      what: 'newest snapshot has a flipped header byte',
      damage: (dir) => flipByte(join(dir, 'snapshots', name.s2), rng.int(44)),
      from: name.s1,
      report: /unusable.*trying older/,
    },
    {
      what: 'newest snapshot truncated',
      damage: async (dir) => truncate(join(dir, 'snapshots', name.s2), 48 + rng.int(20)),
      from: name.s1,
      report: /unusable.*trying older/,
    },
    {
      what: 'both snapshots corrupt',
      damage: async (dir) => {
        await flipByte(join(dir, 'snapshots', name.s2), 60);
        await truncate(join(dir, 'snapshots', name.s1), 30);
      },
      from: null,
      report: /unusable.*trying older/,
    },
    {
      what: 'compaction finished: every segment below S1 unlinked',
      damage: async (dir) => {
        const log = await Log.open({ dir: join(dir, 'log'), segmentBytes: 4096, logger: () => undefined });
        const removed = await compact({ log, snapshotsDir: join(dir, 'snapshots'), retentionMs: 0, now: Number.MAX_SAFE_INTEGER });
        await log.close();
        if (removed.length === 0) throw new Error('compaction removed nothing: the case proves nothing');
      },
      from: name.s2,
    },
    {
      what: 'compaction crashed after unlinking the first segment only',
      damage: async (dir) => {
        for (const f of await readdir(join(dir, 'log'))) if (f.startsWith(segments[0] as string)) await rm(join(dir, 'log', f));
      },
      from: name.s2,
    },
    {
      what: 'compaction crashed between unlinking a .log and its index files',
      damage: (dir) => rm(join(dir, 'log', segments[0] as string)),
      from: name.s2,
    },
    {
      what: 'compaction done, then the newest snapshot went bad',
      damage: async (dir) => {
        for (const f of await readdir(join(dir, 'log'))) if (f.startsWith(segments[0] as string)) await rm(join(dir, 'log', f));
        await flipByte(join(dir, 'snapshots', name.s2), 70);
      },
      from: name.s1,
      report: /unusable.*trying older/,
    },
  ];

  let checked = 0;
  for (const [i, c] of cases.entries()) {
    const dir = join(root, `case-${i}`);
    await cp(pristine, dir, { recursive: true });
    await c.damage(dir);
    const first = await start(dir);
    const second = await start(dir);
    t.equal(first.digest, full, `${c.what}: state = full replay of the log`);
    t.equal(first.fromSnapshot, c.from, `${c.what}: started from ${c.from ?? 'offset 0'}`);
    if (c.report) t.match(first.lines.join('\n'), c.report, `${c.what}: reported (${first.lines.join(' | ').slice(0, 200)})`);
    t.equal(second.digest, full, `${c.what}: a second start reaches the same state`);
    const leftovers = (await readdir(join(dir, 'snapshots'))).filter((f) => f.endsWith('.tmp'));
    t.same(leftovers, [], `${c.what}: no .tmp left behind`);
    checked++;
  }

  const dir = join(root, 'unrecoverable');
  await cp(pristine, dir, { recursive: true });
  for (const f of await readdir(join(dir, 'log'))) if (f.startsWith(segments[0] as string)) await rm(join(dir, 'log', f));
  await flipByte(join(dir, 'snapshots', name.s2), 70);
  await flipByte(join(dir, 'snapshots', name.s1), 70);
  await t.rejects(start(dir), RecoveryError, 'segments removed and no usable snapshot: start refuses with RecoveryError');
  await start(dir).catch((error: unknown) =>
    t.match(String(error), /records \[0, \d+\)/, 'the error names the missing range'),
  );
  t.comment(`snapshot-crash-points: crash points checked=${checked + 1} records=${end} lost=0 resurrected=0 (digest = full replay)`);
});
