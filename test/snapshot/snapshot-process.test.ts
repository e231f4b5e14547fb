// The snapshot process's life: forked again after it dies, a snapshot retried once when its
// process is killed midway, no .tmp left by a killed write, its nice level, its exit with the
// server, a death while idle reported. Split from snapshotter.test.ts, which it would otherwise
// push past the per-file timeout on a busy machine.

import t from 'tap';
import { readFile, readdir } from 'node:fs/promises';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadState } from '../../src/snapshot/recover-state.js';
import { snapshotProcessNice } from '../../src/constants.js';
import { Snapshotter } from '../../src/snapshot/snapshotter.js';
import { replayLog } from '../fixtures/broker.js';
import { procStatFields, startTapeq, tempDataDir } from '../fixtures/process.js';
import { digestOf } from './workload.js';
import { alive, append, logWith, sleep, snapshotProcesses, startedSnapshotter, until, untilQuick } from './snapshotter-fixture.js';

const lines: string[] = [];
const logger = (line: string) => lines.push(line);

t.test('a-snapshot-process-that-dies-between-snapshots-is-forked-again-for-the-next', async (t) => {
  const { snapshots, snapshotter, pid: first } = await startedSnapshotter(t, 2_000);
  process.kill(first, 'SIGKILL');
  t.equal(await until(async () => (alive(first) ? undefined : true)), true, 'the first snapshot process is gone');
  t.equal(await snapshotter.snapshotNow(), join(snapshots, 'snapshot-00000000000000002000.snap'));
  const second = (await snapshotProcesses(process.pid))[0];
  t.ok(second !== undefined && second !== first, `a new snapshot process (${second}) built it`);
});

t.test('a-snapshot-whose-process-is-killed-midway-is-retried-once-in-a-new-process', async (t) => {
  // The kill lands at the first look for the process, within about 0.1 s of its fork, while Node
  // is still starting in it; a snapshot of 30,000 records keeps a fresh process busy about 1 s (7
  // to 20 times the kill's delay here, and both slow down alike on a loaded machine). The retried
  // snapshot and the two digests below grow with the log: 100,000 records took 3 s more here.
  const { log, snapshots } = await logWith(t, 30_000);
  const seen: string[] = [];
  const snapshotter = new Snapshotter({ dir: snapshots, log, everyRecords: 1e9, intervalMs: 1e9, logger: (line) => seen.push(line) });
  t.teardown(() => snapshotter.close());
  const running = snapshotter.snapshotNow();
  const pid = await until(async () => (await snapshotProcesses(process.pid))[0]);
  process.kill(pid, 'SIGKILL');
  t.equal(await running, join(snapshots, 'snapshot-00000000000000030000.snap'), 'the snapshot was still written');
  t.match(seen.join('\n'), /snapshot process exited on SIGKILL before finishing; retrying the snapshot in a new snapshot process/);
  const found = await loadState({ log, dir: snapshots, logger });
  t.equal(found.replayed, 0);
  t.equal(digestOf(found.state), digestOf(await replayLog(log)));
});

t.test('a-snapshot-killed-while-writing-leaves-no-tmp-file-once-the-next-one-is-written', async (t) => {
  const { log, snapshots } = await logWith(t, 100_000);
  const seen: string[] = [];
  const snapshotter = new Snapshotter({ dir: snapshots, log, everyRecords: 1e9, intervalMs: 1e9, logger: (line) => seen.push(line) });
  t.teardown(() => snapshotter.close());
  const running = snapshotter.snapshotNow();
  // Killed while its .tmp file is being written, and so is the retry: the snapshot fails (as an
  // out-of-memory kill in a big state would, again and again).
  const tmp = await untilQuick(() => readdirSync(snapshots).find((n) => n.endsWith('.tmp')));
  const killed = await snapshotProcesses(process.pid);
  for (const pid of killed) process.kill(pid, 'SIGKILL');
  // The retry's process, not the killed one while it is still listed: killing that one again
  // would leave the retry to finish the snapshot.
  const retry = await until(async () => (await snapshotProcesses(process.pid)).find((pid) => !killed.includes(pid)), 1);
  process.kill(retry, 'SIGKILL');
  await t.rejects(running, /before finishing/);
  t.ok(tmp !== undefined && (await readdir(snapshots)).includes(tmp), `the killed write left ${tmp}`);
  await append(log, 100_000, 1_000);
  t.equal(await snapshotter.snapshotNow(), join(snapshots, 'snapshot-00000000000000101000.snap'));
  t.strictSame((await readdir(snapshots)).filter((n) => n.endsWith('.tmp')), [], 'no unfinished snapshot stays on the disk the log shares');
});

t.test('every-thread-of-the-snapshot-process-runs-at-its-nice-level-and-ctrl-c-does-not-stop-it', async (t) => {
  const { snapshots, snapshotter, pid } = await startedSnapshotter(t, 2_000);
  // Its threads are reniced once its code runs, the main one last: wait until it is.
  const niceOf = async (tid: string) => {
    return Number(procStatFields(await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8'))[16]);
  };
  await until(async () => ((await niceOf(String(pid))) === snapshotProcessNice ? true : undefined));
  const tids = await readdir(`/proc/${pid}/task`);
  t.ok(tids.length > 1, `${tids.length} threads`);
  for (const tid of tids) t.equal(await niceOf(tid), snapshotProcessNice, `thread ${tid}`);
  process.kill(pid, 'SIGINT');
  await sleep(200);
  t.ok(alive(pid), 'SIGINT is for the server, not for it');
  t.equal(await snapshotter.snapshotNow(), join(snapshots, 'snapshot-00000000000000002000.snap'));
  t.strictSame(await snapshotProcesses(process.pid), [pid], 'the same process built it');
});

t.test('the-snapshot-process-exits-when-its-server-is-killed', async (t) => {
  const data = await tempDataDir();
  t.teardown(() => data.remove());
  const server = await startTapeq(data.dir);
  const pid = await until(async () => (await snapshotProcesses(server.child.pid as number))[0]);
  t.ok(alive(pid), `the server started its snapshot process (${pid})`);
  await server.kill('SIGKILL');
  t.equal(await until(async () => (alive(pid) ? undefined : true)), true, 'it exited when its IPC channel closed');
});

t.test('a-snapshot-process-that-dies-while-idle-is-reported', async (t) => {
  const { log, snapshots } = await logWith(t, 10);
  const seen: string[] = [];
  const snapshotter = new Snapshotter({ dir: snapshots, log, everyRecords: 1e9, intervalMs: 1e9, logger: (line) => seen.push(line) });
  t.teardown(() => snapshotter.close());
  snapshotter.start();
  const pid = await until(async () => (await snapshotProcesses(process.pid))[0]);
  process.kill(pid, 'SIGKILL');
  const line = await until(async () => seen.find((l) => l.includes('while idle')));
  t.equal(line, 'tapeq: snapshot process exited on SIGKILL while idle; the next snapshot starts a new one');
});
