// SPEC 3 "A success response for a state change means the record is in the log", proven against
// the real `tapeq serve` process killed with SIGKILL at random moments.
//
// Each cycle: start the broker on the same data dir → check it live (every job counted once, a
// sample of acknowledged jobs readable with the exact payload, acknowledged completions
// completed) → re-push the pushes whose answer was lost (client retry; custom jobIds make it
// idempotent) → run concurrent load (3 HTTP pushers, 1 WebSocket pusher using PUSH, 1 HTTP
// worker doing pull + ack) → SIGKILL at a random moment → offline checks of the stopped dir:
// `tapeq verify` passes (a torn tail left by the kill is the only accepted complaint), replay
// from offset 0 and snapshot + tail give the same digest, every acknowledged push is in the
// log with its exact payload, every acknowledged ack is a completed job, no id was pushed into
// the log twice, nothing unknown appeared.
//
// Fast: 5 cycles. TAPEQ_LONG=1: 50 cycles. SEED= replays the kill moments and sampling.

import { join } from 'node:path';
import t, { type Test } from 'tap';
import { JobState } from '../../src/record/types.js';
import { LONG, foldDataDir, http, payloadFor, payloadText, seededRng, sleep, tempDir, type Folded } from '../fixtures/reliability/common.js';
import { WsClient } from '../fixtures/reliability/ws-client.js';
import { runTapeq, startTapeq } from '../fixtures/process.js';

const cycles = LONG ? 50 : 5;
const queue = 'kill9';

interface Ledger {
  /** Every id a client ever sent a push for. */
  sent: Set<string>;
  /** Pushes answered 200 {ok:true, id}. */
  acked: Set<string>;
  /** Sent, but no answer arrived (the kill came first): outcome unknown, retried next cycle. */
  unknown: Set<string>;
  /** Acks answered 200: these jobs must be completed for good. */
  completed: Set<string>;
}

t.test('kill -9 at random moments loses no acknowledged job and duplicates none', async (t) => {
  const rng = seededRng(t, 'kill-9');
  const dataDir = await tempDir(t, 'kill9');
  const env = { SNAPSHOT_EVERY_RECORDS: '25', SNAPSHOT_INTERVAL_MS: '300', SEGMENT_BYTES: String(64 * 1024), LOCK_MS: '600000' };
  const ledger: Ledger = { sent: new Set(), acked: new Set(), unknown: new Set(), completed: new Set() };
  let previous: Folded | null = null;
  let tornTails = 0;
  let snapshotLoads = 0;
  let retried = 0;
  let cyclesRun = 0;

  for (let cycle = 0; cycle < cycles; cycle++) {
    const broker = await startTapeq(dataDir, env, { readyMs: 30_000 });
    try {
      if (previous !== null) await checkLive(t, broker.url, ledger, previous, rng, cycle);
      retried += await retryUnknown(t, broker.url, ledger, rng.seed);
      const stop = { now: false };
      const load = [
        httpPusher(broker.url, `c${cycle}-h0`, ledger, stop, rng.seed),
        httpPusher(broker.url, `c${cycle}-h1`, ledger, stop, rng.seed),
        httpPusher(broker.url, `c${cycle}-h2`, ledger, stop, rng.seed),
        wsPusher(broker.url, `c${cycle}-w`, ledger, stop, rng.seed),
        worker(broker.url, ledger, stop),
      ];
      await sleep(100 + rng.int(LONG ? 1_500 : 700));
      await broker.kill('SIGKILL');
      stop.now = true;
      await Promise.all(load);
    } finally {
      await broker.kill('SIGKILL');
    }

    const verify = await runTapeq(['verify', '--dir', join(dataDir, 'log')]);
    if (verify.code !== 0) {
      t.match(verify.stdout, /torn tail/, `cycle ${cycle}: verify fails only for a torn tail: ${verify.stdout}${verify.stderr}`);
      tornTails++;
    }
    const folded = await foldDataDir(dataDir);
    checkOffline(t, folded, ledger, cycle, rng.seed);
    if (folded.fromSnapshot !== null) snapshotLoads++;
    if (LONG) await compareReplayCli(t, dataDir, folded);
    previous = folded;
    cyclesRun++;
    if (t.passing() === false) break;
  }

  const final = previous as Folded;
  if (!LONG) await compareReplayCli(t, dataDir, final);
  t.comment(
    `kill-9: cycles=${cyclesRun}/${cycles} pushes acked=${ledger.acked.size} acks acked=${ledger.completed.size} sent=${ledger.sent.size} ` +
      `retried-after-kill=${retried} records=${final.records} lost=0 duplicates=0 (checked) torn-tails=${tornTails} ` +
      `cycles-loaded-from-snapshot=${snapshotLoads}`,
  );
});

t.test('tapeq verify finds the log under DATA_DIR like serve does', async (t) => {
  const dataDir = await tempDir(t, 'verify-dir');
  const broker = await startTapeq(dataDir);
  await http(broker.url, 'POST', '/queues/q/jobs', { body: { data: 1 } });
  await broker.kill('SIGTERM');
  const byEnv = await runTapeq(['verify'], { DATA_DIR: dataDir });
  t.equal(byEnv.code, 0, `DATA_DIR=<data dir> tapeq verify: ${byEnv.stdout.trim()}`);
});

/** After a restart: counts match the offline fold exactly; a sample of acked jobs reads back. */
async function checkLive(t: Test, url: string, ledger: Ledger, folded: Folded, rng: ReturnType<typeof seededRng>, cycle: number): Promise<void> {
  const counts = await http(url, 'GET', `/queues/${queue}/counts`);
  const total = Object.values(counts.json.counts as Record<string, number>).reduce((a, b) => a + b, 0) - (counts.json.counts.paused ?? 0);
  t.equal(total, folded.replay.jobs.size, `cycle ${cycle}: live job count = jobs in the replayed log`);
  const acked = [...ledger.acked];
  const sampleSize = LONG ? 150 : 50;
  const sample = acked.length <= sampleSize ? acked : Array.from({ length: sampleSize }, () => rng.pick(acked));
  let bad = 0;
  for (const id of sample) {
    const res = await http(url, 'GET', `/jobs/${encodeURIComponent(id)}`);
    const same = res.status === 200 && JSON.stringify(res.json.job.data) === payloadText(id, rng.seed);
    if (!same) {
      bad++;
      t.fail(`cycle ${cycle}: acknowledged job ${id} reads back: ${res.status} ${res.text.slice(0, 200)}`);
    }
    if (ledger.completed.has(id) && res.json?.job?.state !== 'completed') {
      bad++;
      t.fail(`cycle ${cycle}: acknowledged completion of ${id} survived: state ${String(res.json?.job?.state)}`);
    }
  }
  if (bad === 0) t.pass(`cycle ${cycle}: ${sample.length} sampled acknowledged jobs read back exactly`);
}

/** Re-sends the pushes whose answers were lost; the custom jobId makes the retry idempotent. */
async function retryUnknown(t: Test, url: string, ledger: Ledger, seed: number): Promise<number> {
  const ids = [...ledger.unknown];
  for (const id of ids) {
    const res = await http(url, 'POST', `/queues/${queue}/jobs`, { body: { jobId: id, data: payloadFor(id, seed) } });
    t.equal(res.status, 200, `retry of ${id} answered`);
    if (res.status === 200) {
      ledger.acked.add(id);
      ledger.unknown.delete(id);
    }
  }
  return ids.length;
}

function checkOffline(t: Test, folded: Folded, ledger: Ledger, cycle: number, seed: number): void {
  t.equal(folded.replayDigest, folded.loadedDigest, `cycle ${cycle}: digest(replay from 0) = digest(snapshot + tail)`);
  const { jobs } = folded.replay;
  let lost = 0;
  let changed = 0;
  for (const id of ledger.acked) {
    const job = jobs.get(id);
    if (job === undefined) lost++;
    else if (job.spec.data !== payloadText(id, seed)) changed++;
  }
  t.equal(lost, 0, `cycle ${cycle}: acknowledged pushes lost (of ${ledger.acked.size})`);
  t.equal(changed, 0, `cycle ${cycle}: acknowledged payloads changed`);
  let notCompleted = 0;
  for (const id of ledger.completed) if (jobs.get(id)?.state !== JobState.COMPLETED) notCompleted++;
  t.equal(notCompleted, 0, `cycle ${cycle}: acknowledged completions undone (of ${ledger.completed.size})`);
  const invented = [...jobs.values()].map((j) => j.id).filter((id) => !ledger.sent.has(id));
  t.same(invented, [], `cycle ${cycle}: no job the clients never sent`);
  t.equal(folded.byType.get('pushed') ?? 0, jobs.size, `cycle ${cycle}: one pushed record per job id (duplicates = 0)`);
  let contained = 0;
  for (const q of folded.replay.queues.values()) {
    contained += q.waiting.size + q.delayed.size + q.active.size + q.children.size + q.completed.size + q.failed.size;
  }
  t.equal(contained, jobs.size, `cycle ${cycle}: every job in exactly one container`);
}

async function compareReplayCli(t: Test, dataDir: string, folded: Folded): Promise<void> {
  const res = await runTapeq(['replay', '--digest'], { DATA_DIR: dataDir });
  if (res.code === 2 && /unknown command/.test(res.stderr)) {
    t.comment('tapeq replay --digest does not exist yet: compared the in-test folds only');
    return;
  }
  const digest = /\b[0-9a-f]{64}\b/.exec(res.stdout)?.[0];
  t.equal(digest, folded.replayDigest, `tapeq replay --digest = in-test fold from 0 (${res.stdout.trim()} ${res.stderr.trim()})`);
}

async function httpPusher(url: string, prefix: string, ledger: Ledger, stop: { now: boolean }, seed: number): Promise<void> {
  for (let i = 0; !stop.now && i < 100_000; i++) {
    const id = `${prefix}-${i}`;
    ledger.sent.add(id);
    ledger.unknown.add(id);
    try {
      const res = await http(url, 'POST', `/queues/${queue}/jobs`, { body: { jobId: id, data: payloadFor(id, seed) }, timeoutMs: 5_000 });
      if (res.status === 200 && res.json?.ok === true && res.json.id === id) {
        ledger.acked.add(id);
        ledger.unknown.delete(id);
      } else if (res.status < 500) {
        throw new Error(`push ${id} refused: ${res.status} ${res.text}`);
      }
    } catch (error) {
      if (!stop.now && !isConnectionError(error)) throw error;
      return;
    }
  }
}

async function wsPusher(url: string, prefix: string, ledger: Ledger, stop: { now: boolean }, seed: number): Promise<void> {
  let client: WsClient;
  try {
    client = await WsClient.open(`${url.replace('http:', 'ws:')}/ws`);
  } catch {
    return;
  }
  try {
    for (let i = 0; !stop.now && i < 100_000; i++) {
      const id = `${prefix}-${i}`;
      ledger.sent.add(id);
      ledger.unknown.add(id);
      const reply = await client.request({ cmd: 'PUSH', queue, jobId: id, data: payloadFor(id, seed) }, 5_000);
      if (reply.ok === true && reply['id'] === id) {
        ledger.acked.add(id);
        ledger.unknown.delete(id);
      }
    }
  } catch {
    // The kill closed the socket: the last push stays "unknown".
  } finally {
    client.socket.terminate();
  }
}

async function worker(url: string, ledger: Ledger, stop: { now: boolean }): Promise<void> {
  for (let i = 0; !stop.now && i < 100_000; i++) {
    try {
      const pulled = await http(url, 'GET', `/queues/${queue}/jobs`, { timeoutMs: 5_000 });
      const job = pulled.json?.job as { id: string } | null | undefined;
      if (job === null || job === undefined) {
        await sleep(5);
        continue;
      }
      const ack = await http(url, 'POST', `/jobs/${encodeURIComponent(job.id)}/ack`, { body: { result: { by: 'worker' }, token: pulled.json.token }, timeoutMs: 5_000 });
      if (ack.status === 200) ledger.completed.add(job.id);
    } catch {
      return;
    }
  }
}

function isConnectionError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'TypeError' || error.name === 'TimeoutError' || error.name === 'AbortError');
}
