// Soak (long only): 10 minutes of mixed load on the real `tapeq serve`, restarted (SIGTERM) every
// 2.5 minutes, with snapshots every 5,000 records, 1 MiB segments and retention on, so snapshots,
// rolls and compaction all run many times. Load: HTTP pushes (single and bulk, removeOnComplete),
// HTTP workers (pull, ack or fail), a WebSocket producer/consumer, an SSE subscriber.
//
// Sampled every second: RSS (GET /health memory.rss, MB) and the latency of GET /healthz, which
// is the event-loop delay as a client sees it (tapeq exposes no loop-delay gauge). Samples taken
// in the first 20 s after each start are warm-up and not compared. Asserted: last-quarter mean ≤
// 1.5× first-quarter mean for RSS and for healthz p50, no 5xx, no failed /healthz, and at the end
// `tapeq verify` passes and replay from 0 = snapshot + tail (when retention removed the start of
// the log: snapshot + tail loads without error).
//
// Skipped unless TAPEQ_LONG=1. TAPEQ_SOAK_MS shortens the run (e.g. to try it out).

import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import { openReadOnly } from '../../src/log/log.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { runTapeq, startTapeq, type TapeqProcess } from '../fixtures/process.js';
import { LONG, foldDataDir, http, seededRng, sleep, tempDir } from '../fixtures/reliability/common.js';
import { WsClient } from '../fixtures/reliability/ws-client.js';

const soakMs = Number(process.env['TAPEQ_SOAK_MS'] ?? 10 * 60_000);
const restartEveryMs = soakMs / 4;
const warmupMs = Math.min(20_000, restartEveryMs / 4);

const env = {
  SNAPSHOT_EVERY_RECORDS: '5000',
  SNAPSHOT_INTERVAL_MS: '10000',
  SEGMENT_BYTES: String(1024 * 1024),
  HISTORY_RETENTION_MS: '0',
  LOCK_MS: '5000',
};

interface Sample {
  at: number;
  rssMb: number;
  healthzMs: number;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

t.test('a 10-minute soak with restarts keeps RSS and loop delay flat', { skip: LONG ? false : 'long only: run with TAPEQ_LONG=1 (npm run test:reliability)', timeout: soakMs + 180_000 }, async (t) => {
  const rng = seededRng(t, 'soak');
  const dataDir = await tempDir(t, 'soak');
  const samples: Sample[] = [];
  const errors: string[] = [];
  const counters = { pushed: 0, completed: 0, failed: 0, wsPushed: 0, sseEvents: 0, rounds: 0 };
  const started = Date.now();
  const endAt = started + soakMs;

  while (Date.now() < endAt) {
    const broker: TapeqProcess = await startTapeq(dataDir, env, { readyMs: 60_000 });
    const startedAt = Date.now();
    const stopAt = Math.min(endAt, startedAt + restartEveryMs);
    const live = () => Date.now() < stopAt;
    const loops = [
      producer(broker.url, live, rng.next, counters, errors),
      producer(broker.url, live, rng.next, counters, errors),
      worker(broker.url, live, rng.next, counters, errors),
      worker(broker.url, live, rng.next, counters, errors),
      wsLoop(broker.url, live, counters, errors),
      sseLoop(broker.url, live, counters),
      sampler(broker.url, live, startedAt, samples, errors),
    ];
    await Promise.all(loops);
    await broker.kill('SIGTERM');
    counters.rounds++;
  }

  const measured = samples.filter((s) => s.rssMb > 0);
  const quarter = Math.max(1, Math.floor(measured.length / 4));
  const first = measured.slice(0, quarter);
  const last = measured.slice(-quarter);
  const rssFirst = mean(first.map((s) => s.rssMb));
  const rssLast = mean(last.map((s) => s.rssMb));
  const delayFirst = median(first.map((s) => s.healthzMs));
  const delayLast = median(last.map((s) => s.healthzMs));
  t.same(errors.slice(0, 20), [], 'no 5xx, no failed probe, no unexpected refusal');
  t.ok(rssLast <= rssFirst * 1.5, `RSS flat: first-quarter mean ${rssFirst.toFixed(1)} MB, last-quarter mean ${rssLast.toFixed(1)} MB`);
  t.ok(delayLast <= Math.max(delayFirst * 1.5, delayFirst + 5), `loop delay flat: healthz p50 first quarter ${delayFirst} ms, last quarter ${delayLast} ms`);

  const verify = await runTapeq(['verify', '--dir', join(dataDir, 'log')]);
  t.equal(verify.code, 0, `tapeq verify: ${verify.stdout.trim()}`);
  const log = await openReadOnly(join(dataDir, 'log'));
  const firstOffset = log.firstOffset;
  await log.close();
  if (firstOffset === 0) {
    const folded = await foldDataDir(dataDir);
    t.equal(folded.replayDigest, folded.loadedDigest, 'digest(replay from 0) = digest(snapshot + tail)');
  } else {
    const ro = await openReadOnly(join(dataDir, 'log'));
    const lines: string[] = [];
    try {
      const loaded = await loadState({ log: ro, dir: join(dataDir, 'snapshots'), logger: (l) => void lines.push(l), readOnly: true });
      t.ok(digestOf(loaded.state).length === 64, `retention removed records [0, ${firstOffset}); snapshot + tail loads (${loaded.fromSnapshot})`);
    } catch (error) {
      const snapshots = await readdir(join(dataDir, 'snapshots')).catch(() => []);
      t.fail(`after retention the data dir does not load: ${String(error)}`, { snapshots, lines, segments: ro.segments().map((s) => s.file) });
    } finally {
      await ro.close();
    }
  }
  t.comment(
    `soak: ${Math.round((Date.now() - started) / 1000)} s process lifetimes=${counters.rounds} pushed=${counters.pushed} ws-pushed=${counters.wsPushed} ` +
      `completed=${counters.completed} failed=${counters.failed} sse-events=${counters.sseEvents} samples=${measured.length} ` +
      `rss ${rssFirst.toFixed(1)}→${rssLast.toFixed(1)} MB healthz p50 ${delayFirst}→${delayLast} ms log starts at ${firstOffset}`,
  );
});

async function producer(url: string, live: () => boolean, random: () => number, c: { pushed: number }, errors: string[]): Promise<void> {
  for (let i = 0; live() && i < 1_000_000; i++) {
    const bulk = random() < 0.2;
    const job = () => ({ data: { i, pad: 'p'.repeat(Math.floor(random() * 200)) }, removeOnComplete: true, maxAttempts: 2, backoff: 10 });
    const res = await http(url, 'POST', '/queues/soak/jobs', { body: bulk ? Array.from({ length: 10 }, job) : job(), timeoutMs: 10_000 }).catch((e: Error) => ({ status: 0, text: e.message }));
    if (res.status === 200) c.pushed += bulk ? 10 : 1;
    else if (live()) errors.push(`push → ${res.status} ${res.text.slice(0, 100)}`);
    await sleep(5);
    if (i % 20 === 19) {
      // Back-pressure: keep the backlog (and so the state) steady, or RSS would grow by design.
      const counts = await http(url, 'GET', '/queues/soak/counts').catch(() => null);
      if ((counts?.json?.counts?.waiting ?? 0) > 500) await sleep(500);
    }
  }
}

async function worker(url: string, live: () => boolean, random: () => number, c: { completed: number; failed: number }, errors: string[]): Promise<void> {
  for (let i = 0; live() && i < 1_000_000; i++) {
    const res = await http(url, 'GET', '/queues/soak/jobs?timeout=200', { timeoutMs: 10_000 }).catch((e: Error) => ({ status: 0, text: e.message, json: undefined }));
    const job = res.json?.job as { id: string } | null | undefined;
    if (res.status !== 200) {
      if (live()) errors.push(`pull → ${res.status} ${res.text.slice(0, 100)}`);
      continue;
    }
    if (!job) continue;
    const fail = random() < 0.1;
    const done = await http(url, 'POST', `/jobs/${job.id}/${fail ? 'fail' : 'ack'}`, { body: { token: res.json.token, ...(fail ? { error: 'soak' } : { result: i }) } }).catch((e: Error) => ({ status: 0, text: e.message }));
    if (done.status === 200) fail ? c.failed++ : c.completed++;
    else if (live() && done.status >= 500) errors.push(`${fail ? 'fail' : 'ack'} → ${done.status} ${done.text.slice(0, 100)}`);
  }
}

async function wsLoop(url: string, live: () => boolean, c: { wsPushed: number; completed: number }, errors: string[]): Promise<void> {
  let client: WsClient | null = null;
  try {
    client = await WsClient.open(url.replace('http:', 'ws:') + '/ws/queues/soak-ws');
    for (let i = 0; live() && i < 1_000_000; i++) {
      const pushed = await client.request({ cmd: 'PUSH', queue: 'soak-ws', data: { i }, removeOnComplete: true });
      if (pushed.ok) c.wsPushed++;
      const pulled = await client.request({ cmd: 'PULL', queue: 'soak-ws' });
      const job = pulled['job'] as { id: string } | null;
      if (job) {
        const ack = await client.request({ cmd: 'ACK', id: job.id, token: pulled['token'] });
        if (ack.ok) c.completed++;
      }
      await sleep(5);
    }
  } catch (error) {
    if (live()) errors.push(`websocket loop: ${String(error)}`);
  } finally {
    await client?.close();
  }
}

async function sseLoop(url: string, live: () => boolean, c: { sseEvents: number }): Promise<void> {
  const controller = new AbortController();
  const stop = setInterval(() => {
    if (!live()) controller.abort();
  }, 200);
  try {
    const res = await fetch(`${url}/events`, { signal: controller.signal });
    const reader = res.body?.getReader();
    for (let i = 0; reader && live() && i < 100_000_000; i++) {
      const { done, value } = await reader.read();
      if (done) break;
      c.sseEvents += Buffer.from(value).toString('utf8').split('\nid: ').length - 1;
    }
  } catch {
    // aborted at the end of the round, or the broker went away
  } finally {
    clearInterval(stop);
  }
}

async function sampler(url: string, live: () => boolean, startedAt: number, samples: Sample[], errors: string[]): Promise<void> {
  while (live()) {
    await sleep(1_000);
    if (Date.now() - startedAt < warmupMs || !live()) continue;
    const t0 = performance.now();
    const probe = await http(url, 'GET', '/healthz', { timeoutMs: 2_000 }).catch(() => null);
    const healthzMs = Math.round(performance.now() - t0);
    if (probe?.status !== 200) {
      errors.push(`healthz → ${probe?.status ?? 'no answer'}`);
      continue;
    }
    const health = await http(url, 'GET', '/health', { timeoutMs: 2_000 }).catch(() => null);
    samples.push({ at: Date.now(), rssMb: Number(health?.json?.memory?.rss ?? 0), healthzMs });
  }
}
