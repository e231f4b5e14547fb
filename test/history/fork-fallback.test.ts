// Point-in-time recovery of a compacted log: the fork cannot replay from offset 0, so it carries
// a fallback snapshot beside the one at the cut, and a bad snapshot at the cut still loads.

import { mkdtemp, open, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import t from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import { writeFork } from '../../src/history/fork.js';
import { Log } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { writeStateSnapshot } from '../../src/snapshot/store.js';
import { startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

t.test('a-compacted-logs-fork-falls-back-to-the-copied-snapshot-when-the-one-at-the-cut-is-bad', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'tapeq-fork-fallback-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const snapshotsDir = join(root, 'src', 'snapshots');
  const f = await startBroker({ dir: join(root, 'src', 'log'), segmentBytes: 8192 });
  const pushSome = async (n: number, from: number): Promise<void> => {
    for (let i = 0; i < n; i++) await f.broker.push('q', { data: { i: from + i, pad: 'x'.repeat(200) } }, ctx);
  };
  await pushSome(150, 0);
  const older = await writeStateSnapshot(snapshotsDir, f.broker.state);
  await pushSome(150, 150);
  const newer = await writeStateSnapshot(snapshotsDir, f.broker.state);
  await pushSome(150, 300);
  const removed = await f.log.dropSegmentsBefore(f.broker.state.offset - 150, Number.POSITIVE_INFINITY);
  t.ok(removed.length > 0 && f.log.firstOffset > 0, `the source is compacted (its first offset ${f.log.firstOffset})`);
  t.ok(f.log.firstOffset <= f.broker.state.offset - 150, 'the newer snapshot is still replayable from the log');

  const until = f.broker.state.offset;
  const digest = digestOf(f.broker.state);
  const out = join(root, 'fork');
  const fork = await writeFork(f.log, f.broker.state, until, out, snapshotsDir);
  await f.cleanup();
  t.equal(fork.fallbackSnapshot, join(out, 'snapshots', basename(newer)), 'the newest source snapshot below the cut is copied');
  t.same((await readdir(join(out, 'snapshots'))).sort(), [basename(newer), basename(fork.snapshot)].sort(), 'two snapshots, no more');
  t.not(basename(older), basename(newer));

  // The snapshot at the cut goes bad: one byte in the middle of its payload.
  const fh = await open(fork.snapshot, 'r+');
  const { size } = await fh.stat();
  const byte = Buffer.alloc(1);
  await fh.read(byte, 0, 1, Math.floor(size / 2));
  byte[0] = (byte[0] as number) ^ 0xff;
  await fh.write(byte, 0, 1, Math.floor(size / 2));
  await fh.close();

  const log = await Log.open({ dir: join(out, 'log'), logger: () => undefined });
  t.teardown(() => log.close());
  const lines: string[] = [];
  const loaded = await loadState({ log, dir: join(out, 'snapshots'), logger: (line) => lines.push(line) });
  t.equal(loaded.fromSnapshot, fork.fallbackSnapshot, 'the fork loads from the fallback');
  t.equal(digestOf(loaded.state), digest, 'and reaches the state at the cut');
});

t.test('a-fork-of-a-log-that-starts-at-0-needs-no-fallback', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'tapeq-fork-nofallback-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const snapshotsDir = join(root, 'src', 'snapshots');
  const f = await startBroker({ dir: join(root, 'src', 'log') });
  for (let i = 0; i < 20; i++) await f.broker.push('q', { data: i }, ctx);
  await writeStateSnapshot(snapshotsDir, f.broker.state);
  await f.broker.push('q', { data: 'last' }, ctx);
  const fork = await writeFork(f.log, f.broker.state, f.broker.state.offset, join(root, 'fork'), snapshotsDir);
  await f.cleanup();
  t.equal(fork.fallbackSnapshot, null, 'the whole log replays from 0');
  t.equal((await readdir(join(root, 'fork', 'snapshots'))).length, 1);
});
