// SPEC 4/5 lock tokens and released jobs: workers that die never lose a job and never complete
// one twice. Real `tapeq serve` with LOCK_MS=500.
//
//   1. HTTP pull, then silence → the lock expires → stalled → requeued → pulled again with a new
//      token; the late ack with the stale token is 409 "Lock token mismatch" and changes nothing
//      (job view, /stats totals, history length when served); the new token completes it.
//   2. WebSocket PULL (lockMs 60 s), then the socket closes → the job is released at once (long
//      before its lock would expire) and a stale WS ACK is refused the same way.
//   3. A crowd of flaky workers (HTTP and WS; each job abandoned at most once, since the default
//      maxStalledCount is 1) until every job is done; stale acks are replayed after requeues.
//      Offline: every job has exactly one `completed` record (read from the log and via
//      `tapeq logcat --kind completed`), and no completed record carries a stale token.
//
// Fast: 30 jobs in part 3. TAPEQ_LONG=1: 300.

import { join } from 'node:path';
import t from 'tap';
import { openReadOnly } from '../../src/log/log.js';
import { runTapeq, startTapeq, type TapeqProcess } from '../fixtures/process.js';
import { LONG, http, seededRng, sleep, tempDir } from '../fixtures/reliability/common.js';
import { WsClient } from '../fixtures/reliability/ws-client.js';

const jobsInCrowd = LONG ? 300 : 30;
const lockMs = 500;

async function waitForState(url: string, id: string, state: string, withinMs: number): Promise<{ ms: number; job: any }> {
  const started = Date.now();
  for (let i = 0; i < 1_000 && Date.now() - started < withinMs; i++) {
    const res = await http(url, 'GET', `/jobs/${id}`);
    if (res.json?.job?.state === state) return { ms: Date.now() - started, job: res.json.job };
    await sleep(20);
  }
  throw new Error(`job ${id} did not become ${state} within ${withinMs} ms`);
}

async function snapshotOf(url: string, id: string) {
  const job = (await http(url, 'GET', `/jobs/${id}`)).json?.job;
  const stats = (await http(url, 'GET', '/stats')).json?.stats;
  const history = await http(url, 'GET', `/jobs/${id}/history`);
  const { uptime: _u, pushPerSec: _p, pullPerSec: _q, ...totals } = stats ?? {};
  return { job, totals, historyLength: history.status === 200 ? (history.json?.history?.length ?? null) : null };
}

t.test('workers that vanish: stalls requeue, closed sockets release, stale tokens change nothing, each job completes once', async (t) => {
  const rng = seededRng(t, 'vanished-consumers');
  const dataDir = await tempDir(t, 'vanish');
  const broker: TapeqProcess = await startTapeq(dataDir, { LOCK_MS: String(lockMs) });
  const staleTokens = new Set<string>();
  let staleRefused = 0;
  try {
    // 1. HTTP pull, then silence.
    const pushed = await http(broker.url, 'POST', '/queues/silent/jobs', { body: { data: { n: 1 } } });
    const id = pushed.json.id as string;
    const first = await http(broker.url, 'GET', '/queues/silent/jobs');
    t.equal(first.json.job.id, id, 'pulled');
    const token1 = first.json.token as string;
    const requeued = await waitForState(broker.url, id, 'waiting', lockMs * 10);
    t.equal(requeued.job.stalledCount, 1, `stalled and requeued ${requeued.ms} ms after the pull check began (lock ${lockMs} ms)`);
    const second = await http(broker.url, 'GET', '/queues/silent/jobs');
    t.equal(second.json.job?.id, id, 'pulled again');
    const token2 = second.json.token as string;
    t.not(token2, token1, 'with a new lock token');
    staleTokens.add(token1);
    const before = await snapshotOf(broker.url, id);
    const stale = await http(broker.url, 'POST', `/jobs/${id}/ack`, { body: { result: 'late', token: token1 } });
    t.equal(stale.status, 409, 'the late ack with the stale token is 409');
    t.same(stale.json, { ok: false, error: 'Lock token mismatch' }, 'with the exact error');
    const staleFail = await http(broker.url, 'POST', `/jobs/${id}/fail`, { body: { error: 'late', token: token1 } });
    t.equal(staleFail.status, 409, 'a late fail with the stale token is 409 too');
    staleRefused += 2;
    const after = await snapshotOf(broker.url, id);
    t.same(after, before, `nothing changed: job view, /stats totals${before.historyLength === null ? '' : ', history length'}`);
    t.equal((await http(broker.url, 'POST', `/jobs/${id}/ack`, { body: { result: 'ok', token: token2 } })).status, 200, 'the current token completes the job');
    t.equal((await http(broker.url, 'POST', `/jobs/${id}/ack`, { body: { result: 'again', token: token2 } })).status >= 400, true, 'a second ack is refused');

    // 2. WebSocket PULL, then the socket closes.
    const wsUrl = broker.url.replace('http:', 'ws:') + '/ws';
    const pushedWs = await http(broker.url, 'POST', '/queues/sockets/jobs', { body: { data: { n: 2 } } });
    const wsId = pushedWs.json.id as string;
    const ws = await WsClient.open(wsUrl);
    const pulled = await ws.request({ cmd: 'PULL', queue: 'sockets', lockMs: 60_000 });
    t.equal((pulled['job'] as { id: string }).id, wsId, 'pulled over WebSocket with a 60 s lock');
    const wsToken = pulled['token'] as string;
    staleTokens.add(wsToken);
    await ws.close();
    const released = await waitForState(broker.url, wsId, 'waiting', 5_000);
    t.ok(released.ms < 5_000, `released ${released.ms} ms after the close, long before its 60 s lock`);
    t.equal(released.job.stalledCount, 0, 'a release is not a stall');
    const ws2 = await WsClient.open(wsUrl);
    const again = await ws2.request({ cmd: 'PULL', queue: 'sockets' });
    t.equal((again['job'] as { id: string }).id, wsId, 'pulled again by another socket');
    const lateWs = await ws2.request({ cmd: 'ACK', id: wsId, token: wsToken });
    t.same({ ok: lateWs.ok, error: lateWs.error }, { ok: false, error: 'Lock token mismatch' }, 'a stale WS ACK is refused');
    staleRefused++;
    t.equal((await ws2.request({ cmd: 'ACK', id: wsId, token: again['token'] })).ok, true, 'the current token completes it');
    await ws2.close();

    // 3. A crowd of flaky workers.
    const ids: string[] = [];
    for (let i = 0; i < jobsInCrowd; i += 50) {
      const jobs = Array.from({ length: Math.min(50, jobsInCrowd - i) }, (_, k) => ({ data: { n: i + k } }));
      const res = await http(broker.url, 'POST', '/queues/crowd/jobs', { body: jobs });
      ids.push(...(res.json.ids as string[]));
    }
    const abandoned = new Map<string, string>();
    const completed = new Set<string>();
    const deadline = Date.now() + (LONG ? 120_000 : 30_000);
    const httpWorker = async (): Promise<void> => {
      for (let i = 0; i < 10_000 && completed.size < ids.length && Date.now() < deadline; i++) {
        const res = await http(broker.url, 'GET', '/queues/crowd/jobs?timeout=200');
        const job = res.json?.job as { id: string } | null;
        if (!job) continue;
        const token = res.json.token as string;
        if (!abandoned.has(job.id) && rng.next() < 0.3) {
          abandoned.set(job.id, token);
          continue;
        }
        const ack = await http(broker.url, 'POST', `/jobs/${job.id}/ack`, { body: { result: { by: 'http' }, token } });
        if (ack.status === 200) completed.add(job.id);
        const old = abandoned.get(job.id);
        if (old !== undefined && old !== token) {
          staleTokens.add(old);
          const late = await http(broker.url, 'POST', `/jobs/${job.id}/ack`, { body: { token: old } });
          if (late.status === 409) staleRefused++;
          else t.fail(`stale ack of ${job.id} answered ${late.status} ${late.text}`);
        }
      }
    };
    const wsWorker = async (): Promise<void> => {
      for (let round = 0; round < 200 && completed.size < ids.length && Date.now() < deadline; round++) {
        const client = await WsClient.open(wsUrl);
        try {
          for (let i = 0; i < 20 && completed.size < ids.length; i++) {
            const res = await client.request({ cmd: 'PULL', queue: 'crowd', timeout: 200, lockMs: 60_000 });
            const job = res['job'] as { id: string } | null;
            if (!job) continue;
            if (!abandoned.has(job.id) && rng.next() < 0.3) {
              abandoned.set(job.id, res['token'] as string);
              break; // the socket closes with the job: it must be released
            }
            const ack = await client.request({ cmd: 'ACK', id: job.id, token: res['token'], result: { by: 'ws' } });
            if (ack.ok) completed.add(job.id);
          }
        } finally {
          await client.close();
        }
      }
    };
    await Promise.all([httpWorker(), httpWorker(), wsWorker(), wsWorker()]);
    t.equal(completed.size, ids.length, `every crowd job completed (${completed.size}/${ids.length}, ${abandoned.size} abandoned once)`);
    t.comment(`vanished: crowd jobs=${ids.length} abandoned=${abandoned.size} acknowledged completions=${completed.size} stale tokens refused=${staleRefused}`);
  } finally {
    await broker.kill('SIGTERM');
  }

  // Offline: exactly one completed record per job, none with a stale token.
  const log = await openReadOnly(join(dataDir, 'log'));
  const completions = new Map<string, number>();
  let staleCompletions = 0;
  let pushedJobs = 0;
  try {
    for await (const batch of log.readBatches(log.firstOffset)) {
      for (const r of batch) {
        if (r.body.type === 'pushed') pushedJobs++;
        if (r.body.type !== 'completed') continue;
        completions.set(r.body.jobId, (completions.get(r.body.jobId) ?? 0) + 1);
        if (staleTokens.has(r.body.token)) staleCompletions++;
      }
    }
  } finally {
    await log.close();
  }
  const twice = [...completions].filter(([, n]) => n !== 1);
  t.equal(completions.size, pushedJobs, `every pushed job has a completed record (${completions.size}/${pushedJobs})`);
  t.same(twice, [], 'no job has two completed records');
  t.equal(staleCompletions, 0, 'no completed record carries a stale token');
  const logcat = await runTapeq(['logcat', '--dir', join(dataDir, 'log'), '--kind', 'completed']);
  const lines = logcat.stdout.split('\n').filter((l) => l.trim() !== '');
  t.equal(logcat.code, 0, 'tapeq logcat --kind completed runs');
  t.equal(lines.length, pushedJobs, `tapeq logcat counts ${lines.length} completed records for ${pushedJobs} jobs`);
  t.comment(`vanished: jobs=${pushedJobs} completed records=${lines.length} duplicates=${twice.length} stale completions=${staleCompletions}`);
});
