// SPEC 3 "A failed fsync or a full disk stops acknowledgements (5xx / 507 with the standard error
// envelope), flips /ready to 503, and is never retried-and-reported-as-success."
//
// In-process (the composition of main.ts, with a Log whose fsHooks inject the fault):
//   - fdatasync fails (EIO): every push covered by that sync answers 5xx with the envelope,
//     /ready goes 503, later pushes and pulls fail too, no event is streamed for them; after a
//     restart on the same dir every acknowledged job is there, each refused one is either absent
//     or intact (its write reached the OS; a 5xx promises nothing either way), and replay from 0
//     = snapshot + tail.
//   - write fails with ENOSPC: 507 "No space left on device…", /ready 503; after a restart the
//     refused jobs are absent.
//   - LOG_SYNC=interval: a push with "durable": true whose sync fails is refused.
// Real process on a 2 MiB tmpfs (skipped with the reason when mount is not permitted): fill the
// disk, pushes answer 507, /ready 503; after space returns and a restart the state is consistent.

import { execFileSync } from 'node:child_process';
import { mkdir, open, rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { buildServer } from '../../src/api/server.js';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { Broker } from '../../src/broker/broker.js';
import { loadConfig } from '../../src/config.js';
import { Log, type FsHooks } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { runTapeq, startTapeq } from '../fixtures/process.js';
import { foldDataDir, http, payloadFor, payloadText, seededRng, sleep, tempDir } from '../fixtures/reliability/common.js';

interface InProcess {
  url: string;
  log: Log;
  close(): Promise<void>;
}

/** main.ts's serve() with injectable fs hooks: open log → load → broker → server. */
async function startInProcess(dataDir: string, hooks: FsHooks, env: Record<string, string> = {}): Promise<InProcess> {
  const config = loadConfig({ HOST: '127.0.0.1', HTTP_PORT: '0', DATA_DIR: dataDir, ...env });
  const logger = (): void => undefined;
  const log = await Log.open({ dir: join(dataDir, 'log'), sync: config.logSync, syncIntervalMs: config.logSyncIntervalMs, fsHooks: hooks, logger });
  const loaded = await loadState({ log, dir: join(dataDir, 'snapshots'), logger });
  const broker = new Broker({ log, state: loaded.state, lockMsDefault: config.lockMs, logger });
  const app = await buildServer({ broker, config, realtime: realtimePlugin({ broker, log, config }) });
  await app.listen({ port: 0, host: '127.0.0.1' });
  broker.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    async close() {
      broker.beginShutdown();
      await app.close();
      await broker.close();
      await log.close().catch(() => undefined);
    },
  };
}

function injected(code: string): Error {
  return Object.assign(new Error(`${code}: injected by the test`), { code });
}

async function push(url: string, id: string, seed: number, extra: Record<string, unknown> = {}) {
  return http(url, 'POST', '/queues/fault/jobs', { body: { jobId: id, data: payloadFor(id, seed), ...extra } });
}

function isEnvelope(json: unknown): boolean {
  const j = json as { ok?: unknown; error?: unknown } | undefined;
  return j?.ok === false && typeof j.error === 'string' && j.error.length > 0;
}

async function checkAfterRestart(t: Test, dataDir: string, acked: string[], refused: string[], seed: number, refusedMustBeAbsent: boolean, what: string) {
  const folded = await foldDataDir(dataDir);
  t.equal(folded.replayDigest, folded.loadedDigest, `${what}: digest(replay from 0) = digest(snapshot + tail)`);
  const lost = acked.filter((id) => folded.replay.jobs.get(id)?.spec.data !== payloadText(id, seed));
  t.same(lost, [], `${what}: every acknowledged job is in the log with its payload (${acked.length})`);
  const claimed = refused.filter((id) => folded.replay.jobs.has(id));
  const mangled = claimed.filter((id) => folded.replay.jobs.get(id)?.spec.data !== payloadText(id, seed));
  t.same(mangled, [], `${what}: a refused job that reached the OS anyway is intact`);
  if (refusedMustBeAbsent) t.same(claimed, [], `${what}: refused jobs whose write failed are absent`);
  const reopened = await startInProcess(dataDir, {});
  try {
    t.equal((await http(reopened.url, 'GET', '/ready')).status, 200, `${what}: a restart is ready again`);
    const counts = await http(reopened.url, 'GET', '/queues/fault/counts');
    t.equal(counts.json.counts.waiting, acked.length + claimed.length, `${what}: live count = acknowledged + refused-but-written`);
    const res = await push(reopened.url, `${what}-after`, seed);
    t.equal(res.status, 200, `${what}: pushes are acknowledged again after the restart`);
  } finally {
    await reopened.close();
  }
  return { claimed: claimed.length };
}

t.test('a failed fdatasync refuses every request it covers and everything after', async (t) => {
  const rng = seededRng(t, 'fsync-fault');
  const dataDir = await tempDir(t, 'fsync');
  let failSync = false;
  let syncFailures = 0;
  const hooks: FsHooks = {
    datasync: async (_file, real) => {
      if (failSync) {
        syncFailures++;
        throw injected('EIO');
      }
      return real();
    },
  };
  const broker = await startInProcess(dataDir, hooks);
  const acked: string[] = [];
  const refused: string[] = [];
  try {
    for (let i = 0; i < 20; i++) {
      const res = await push(broker.url, `ok-${i}`, rng.seed);
      t.equal(res.status, 200);
      acked.push(`ok-${i}`);
    }
    const offsetBefore = broker.log.durableOffset;
    failSync = true;
    const batch = await Promise.all(Array.from({ length: 8 }, (_, i) => push(broker.url, `covered-${i}`, rng.seed)));
    for (const [i, res] of batch.entries()) {
      refused.push(`covered-${i}`);
      t.ok(res.status >= 500 && res.status < 600, `push covered by the failed sync answers 5xx (${res.status})`);
      t.ok(isEnvelope(res.json), `… with the error envelope: ${res.text}`);
    }
    t.equal(broker.log.durableOffset, offsetBefore, 'the durable offset did not move');
    failSync = false;
    const ready = await http(broker.url, 'GET', '/ready');
    t.equal(ready.status, 503, '/ready answers 503 after the fault');
    t.same(ready.json, { ok: false, ready: false });
    const health = await http(broker.url, 'GET', '/health');
    t.match(health.json, { ok: true, status: 'unhealthy' }, '/health no longer says healthy');
    const later = await push(broker.url, 'later', rng.seed);
    refused.push('later');
    t.ok(later.status >= 500 && isEnvelope(later.json), `a later push is refused too (${later.status} ${later.text})`);
    const pulled = await http(broker.url, 'GET', '/queues/fault/jobs');
    t.ok(pulled.status >= 500 && isEnvelope(pulled.json), `a pull (which appends) is refused (${pulled.status})`);
    const probe = await http(broker.url, 'GET', `/jobs/covered-0`);
    t.comment(`after the fault, GET of a refused job answers ${probe.status} (live state may include records that never became durable)`);
    t.ok(syncFailures >= 1, `the injected fault ran (${syncFailures} failed syncs, never retried as success)`);
  } finally {
    await broker.close();
  }
  const { claimed } = await checkAfterRestart(t, dataDir, acked, refused, rng.seed, false, 'fsync EIO');
  t.comment(`fsync-fault: acked=${acked.length} refused=${refused.length} refused-but-written-before-the-sync=${claimed} lost=0`);
});

t.test('a write that hits ENOSPC answers 507 and the refused jobs are absent after restart', async (t) => {
  const rng = seededRng(t, 'enospc-fault');
  const dataDir = await tempDir(t, 'enospc');
  let full = false;
  const hooks: FsHooks = {
    write: (_file, _bytes, real) => {
      if (full) throw injected('ENOSPC');
      return real();
    },
  };
  const broker = await startInProcess(dataDir, hooks);
  const acked: string[] = [];
  const refused: string[] = [];
  try {
    for (let i = 0; i < 10; i++) {
      t.equal((await push(broker.url, `ok-${i}`, rng.seed)).status, 200);
      acked.push(`ok-${i}`);
    }
    full = true;
    const res = await push(broker.url, 'nospace', rng.seed);
    refused.push('nospace');
    t.equal(res.status, 507, `a full disk answers 507 (${res.text})`);
    t.ok(isEnvelope(res.json) && /No space left on device/.test(res.json.error), 'with the error envelope naming the cause');
    full = false;
    t.equal((await http(broker.url, 'GET', '/ready')).status, 503, '/ready answers 503');
    const again = await push(broker.url, 'after-space-returned', rng.seed);
    refused.push('after-space-returned');
    t.equal(again.status, 507, 'the fault is final: still 507 after space returns, until a restart');
  } finally {
    await broker.close();
  }
  await checkAfterRestart(t, dataDir, acked, refused, rng.seed, true, 'write ENOSPC');
});

t.test('LOG_SYNC=interval: a durable push whose sync fails is refused', async (t) => {
  const rng = seededRng(t, 'interval-fault');
  const dataDir = await tempDir(t, 'interval');
  let failSync = false;
  const hooks: FsHooks = { datasync: async (_file, real) => (failSync ? Promise.reject(injected('EIO')) : real()) };
  const broker = await startInProcess(dataDir, hooks, { LOG_SYNC: 'interval', LOG_SYNC_INTERVAL_MS: '5' });
  try {
    t.equal((await push(broker.url, 'ok-0', rng.seed, { durable: true })).status, 200, 'a durable push is acknowledged after its sync');
    failSync = true;
    const res = await push(broker.url, 'durable-1', rng.seed, { durable: true });
    t.ok(res.status >= 500 && isEnvelope(res.json), `a durable push whose sync failed answers 5xx (${res.status} ${res.text})`);
    t.equal((await http(broker.url, 'GET', '/ready')).status, 503, '/ready answers 503');
  } finally {
    await broker.close();
  }
  await checkAfterRestart(t, dataDir, ['ok-0'], ['durable-1'], rng.seed, false, 'interval sync EIO');
});

t.test('a real disk fills up: 507, /ready 503, consistent after space returns and a restart', async (t) => {
  const rng = seededRng(t, 'tmpfs-full');
  const root = await tempDir(t, 'tmpfs');
  const mountPoint = join(root, 'mnt');
  await mkdir(mountPoint);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountPoint], { stdio: 'pipe', timeout: 10_000 });
  } catch (error) {
    t.plan(0, `skipped: cannot mount a 2 MiB tmpfs here (needs root and mount permission): ${String(error).split('\n')[0]}`);
    return;
  }
  t.teardown(() => {
    try {
      execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe', timeout: 10_000 });
    } catch {
      // already unmounted
    }
  });
  const dataDir = join(mountPoint, 'data');
  const filler = join(mountPoint, 'filler');
  const broker = await startTapeq(dataDir, { SNAPSHOT_EVERY_RECORDS: '100000000' });
  const acked: string[] = [];
  const refused: string[] = [];
  let first507 = '';
  try {
    for (let i = 0; i < 20; i++) {
      if ((await push(broker.url, `ok-${i}`, rng.seed)).status === 200) acked.push(`ok-${i}`);
    }
    // Fill the disk (4 KiB at a time until ENOSPC), then free ~48 KiB for a few more records.
    const fh = await open(filler, 'w');
    let filled = 0;
    try {
      for (let i = 0; i < 1_024; i++) filled += (await fh.write(Buffer.alloc(4 * 1024, 1))).bytesWritten;
    } catch {
      // ENOSPC: the filler took what was left
    } finally {
      await fh.close();
    }
    await truncate(filler, Math.max(0, filled - 48 * 1024));
    const pad = 'x'.repeat(4 * 1024);
    // The active segment holds up to a MiB of zeros written ahead of its records (preallocation),
    // which the next records fill before the disk's last bytes are needed.
    for (let i = 0; i < 400; i++) {
      const id = `big-${i}`;
      const res = await http(broker.url, 'POST', '/queues/fault/jobs', { body: { jobId: id, data: { ...payloadFor(id, rng.seed), pad } } });
      if (res.status === 200) {
        acked.push(id);
        continue;
      }
      refused.push(id);
      first507 = `${res.status} ${res.text}`;
      t.equal(res.status, 507, `the full disk answers 507: ${res.text.slice(0, 200)}`);
      t.ok(isEnvelope(res.json), 'with the error envelope');
      break;
    }
    t.ok(first507 !== '', 'the disk filled up before 400 pushes of 4 KiB');
    t.equal((await http(broker.url, 'GET', '/ready')).status, 503, '/ready answers 503');
    const later = await push(broker.url, 'later', rng.seed);
    refused.push('later');
    t.ok(later.status >= 500 && isEnvelope(later.json), `later pushes are refused (${later.status})`);
    t.ok((await http(broker.url, 'GET', '/healthz')).status === 200, 'the process stays alive');
  } finally {
    await broker.kill('SIGKILL');
  }
  await rm(filler, { force: true });
  const restarted = await startTapeq(dataDir, { SNAPSHOT_EVERY_RECORDS: '100000000' });
  try {
    t.equal((await http(restarted.url, 'GET', '/ready')).status, 200, 'after space returns, a restart is ready');
    t.match(restarted.stderr(), /state loaded/, 'the restart replayed the log');
    for (const id of acked) {
      const res = await http(restarted.url, 'GET', `/jobs/${id}`);
      if (res.status !== 200) t.fail(`acknowledged ${id} lost after disk full: ${res.status}`);
    }
    t.equal((await push(restarted.url, 'after-restart', rng.seed)).status, 200, 'pushes are acknowledged again');
  } finally {
    await restarted.kill('SIGTERM');
  }
  await sleep(10);
  const verify = await runTapeq(['verify', '--dir', join(dataDir, 'log')]);
  t.equal(verify.code, 0, `tapeq verify after the restart: ${verify.stdout.trim()}`);
  const folded = await foldDataDir(dataDir);
  t.equal(folded.replayDigest, folded.loadedDigest, 'digest(replay from 0) = digest(snapshot + tail)');
  const claimedRefused = refused.filter((id) => folded.replay.jobs.has(id));
  t.comment(`tmpfs-full: acked=${acked.length} lost=0 refused=${refused.length} refused-present-after-restart=${claimedRefused.length} (${claimedRefused.join(',')}) first refusal: ${first507.slice(0, 120)}`);
});
