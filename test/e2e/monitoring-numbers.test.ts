// The numbers of the monitoring endpoints, read from a real server process over its socket and
// checked against each other, against GET /queues/:q/counts, against /proc, and against what a
// workload did (live, after a full replay and after a start from a snapshot).

import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { startTapeq, tempDataDir, type TapeqProcess } from '../fixtures/process.js';
import { SseClient, WsClient } from '../realtime/clients.js';

/** Sample values of `name` by queue label, from Prometheus text. */
function gauge(text: string, name: string): Map<string, number> {
  const values = new Map<string, number>();
  const pattern = new RegExp(`^${name}\\{queue="([^"]*)"\\} (\\S+)$`, 'gm');
  for (const match of text.matchAll(pattern)) values.set(match[1] as string, Number(match[2]));
  return values;
}

function total(values: Map<string, number>): number {
  let sum = 0;
  for (const value of values.values()) sum += value;
  return sum;
}

/** One server for the next three tests, which only read a running server: each uses queues or
 *  connections of its own, and the third does not look at the snapshot process the second kills.
 *  Sharing it saves two starts (a second or more each on a busy machine). */
let shared: Promise<TapeqProcess> | undefined;
function sharedServer(): Promise<TapeqProcess> {
  shared ??= (async () => {
    const data = await tempDataDir();
    const tapeq = await startTapeq(data.dir).catch(async (error: unknown) => {
      await data.remove();
      throw error;
    });
    t.teardown(async () => {
      await tapeq.kill('SIGKILL');
      await data.remove();
    });
    return tapeq;
  })();
  return shared;
}

t.test('prometheus-queue-gauges-show-paused-and-dependent-jobs-and-add-up-to-health', async (t) => {
  const tapeq = await sharedServer();
  const post = async (path: string, body: unknown): Promise<{ id?: string }> => {
    const res = await fetch(tapeq.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    t.equal(res.status, 200, path);
    return (await res.json()) as { id?: string };
  };
  await post('/queues/running/jobs', { data: 1 });
  for (let i = 0; i < 3; i++) await post('/queues/held/jobs', { data: i });
  await post('/queues/held/pause', {});
  const parent = await post('/queues/deps/jobs', { data: 'parent' });
  await post('/queues/deps/jobs', { data: 'child', dependsOn: [parent.id] });

  const text = await (await fetch(`${tapeq.url}/prometheus`)).text();
  const health = (await (await fetch(`${tapeq.url}/health`)).json()) as { queues: { waiting: number } };
  const waiting = gauge(text, 'bunqueue_queue_jobs_waiting');
  const paused = gauge(text, 'bunqueue_queue_jobs_paused');
  const children = gauge(text, 'bunqueue_queue_jobs_waiting_children');
  t.match(text, /# TYPE bunqueue_queue_jobs_paused gauge\n/);
  t.match(text, /# TYPE bunqueue_queue_jobs_waiting_children gauge\n/);
  t.equal(paused.get('held'), 3, 'the paused queue waiting jobs are in a gauge');
  t.equal(children.get('deps'), 1, 'the job waiting for its dependency is in a gauge');
  t.equal(total(waiting) + total(paused), health.queues.waiting, '/health waiting = waiting + paused gauges');
  for (const queue of ['running', 'held', 'deps']) {
    const { counts } = (await (await fetch(`${tapeq.url}/queues/${queue}/counts`)).json()) as { counts: Record<string, number> };
    t.same(
      [waiting.get(queue), paused.get(queue), children.get(queue)],
      [counts.waiting, counts.paused, counts['waiting-children']],
      `${queue}: gauges = counts`,
    );
  }
});

/** The pids of `pid`'s child processes (Linux: /proc/<pid>/task/<tid>/children). */
async function childPids(pid: number): Promise<number[]> {
  const tasks = await readdir(`/proc/${pid}/task`);
  const lists = await Promise.all(tasks.map((tid) => readFile(`/proc/${pid}/task/${tid}/children`, 'latin1')));
  return lists.join(' ').split(/\s+/).filter((s) => s !== '').map(Number);
}

const vmRssMb = async (pid: number): Promise<number> =>
  Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${pid}/status`, 'latin1'))?.[1]) / 1024;

t.test('health-memory-names-the-snapshot-process-resident-set-while-it-lives', async (t) => {
  const tapeq = await sharedServer();
  const memory = async () => ((await (await fetch(`${tapeq.url}/health`)).json()) as { memory: Record<string, number> }).memory;
  let children: number[] = [];
  for (let tries = 0; children.length === 0 && tries < 100; tries++) {
    children = await childPids(tapeq.child.pid as number);
    if (children.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(children.length, 1, 'the server has one child, its snapshot process');
  const child = children[0] as number;
  // The child may still be growing (it has just started): its VmRSS is read just before and just
  // after the server's answer, and the answer (whole MiB) must lie between them.
  const rssBefore = await vmRssMb(child);
  const reported = await memory();
  const rssAfter = await vmRssMb(child);
  const [low, high] = [Math.min(rssBefore, rssAfter) - 2, Math.max(rssBefore, rssAfter) + 2];
  const rss = reported.snapshotRss as number;
  t.ok(rss >= low && rss <= high, `snapshotRss ${rss} MB within the child's VmRSS read around it (${rssBefore.toFixed(1)} and ${rssAfter.toFixed(1)} MB)`);
  t.ok((reported.rss as number) >= 1, 'rss is the server process own');

  process.kill(child, 'SIGKILL');
  let after = await memory();
  for (let tries = 0; 'snapshotRss' in after && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    after = await memory();
  }
  t.notOk('snapshotRss' in after, 'absent once the snapshot process is gone');
  t.same(Object.keys(after).sort(), ['heapTotal', 'heapUsed', 'rss'], "the seed's three fields stay");
});

t.test('health-sse-count-drops-when-a-pipelined-stream-loses-its-connection', async (t) => {
  const tapeq = await sharedServer();
  const sse = async (): Promise<number> =>
    ((await (await fetch(`${tapeq.url}/health`)).json()) as { connections: { sse: number } }).connections.sse;
  // An event stream asked for behind a long poll on the same connection (HTTP/1.1 pipelining):
  // its response waits for the poll's, and the client hangs up before either is answered.
  const socket = connect(tapeq.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write('GET /queues/q/jobs?timeout=30000 HTTP/1.1\r\nHost: tapeq\r\n\r\nGET /events HTTP/1.1\r\nHost: tapeq\r\n\r\n');
  let open = 0;
  for (let tries = 0; open === 0 && tries < 100; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    open = await sse();
  }
  t.equal(open, 1, 'the pipelined stream counts while its connection is open');
  socket.destroy();
  let left = open;
  for (let tries = 0; left !== 0 && tries < 50; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    left = await sse();
  }
  t.equal(left, 0, 'no stream is counted once its connection is gone');
});

/** Every number the monitoring endpoints report about jobs, gathered for one comparison. */
async function monitoringNumbers(url: string, queues: string[]): Promise<Record<string, unknown>> {
  const get = async (path: string): Promise<any> => (await fetch(url + path)).json();
  const health = await get('/health');
  const stats = await get('/stats');
  const prometheus = await (await fetch(`${url}/prometheus`)).text();
  const perQueue: Record<string, unknown> = {};
  for (const queue of queues) {
    const list = await get(`/queues/${queue}/jobs/list?statuses=waiting,paused,active,delayed,completed,failed,waiting-children&length=100`);
    perQueue[queue] = {
      counts: (await get(`/queues/${queue}/counts`)).counts,
      listCounts: list.counts,
      listed: list.jobs.length,
      dlq: (await get(`/queues/${queue}/dlq`)).count,
    };
  }
  const sample = (name: string): number | undefined => {
    const line = new RegExp(`^${name} (\\S+)$`, 'm').exec(prometheus);
    return line === null ? undefined : Number(line[1]);
  };
  const totals = ['pushed', 'pulled', 'completed', 'failed'];
  return {
    health: { queues: health.queues, connections: health.connections },
    // uptime and the per-second rates depend on the clock, not on the workload.
    stats: Object.fromEntries(Object.entries(stats.stats).filter(([key]) => !['uptime', 'pushPerSec', 'pullPerSec'].includes(key))),
    collections: stats.collections,
    metrics: (await get('/metrics')).metrics,
    prometheusTotals: Object.fromEntries(totals.map((n) => [n, sample(`bunqueue_jobs_${n}_total`)])),
    prometheusQueues: Object.fromEntries(
      ['waiting', 'active', 'delayed', 'dlq', 'paused', 'waiting_children'].map((n) => [n, Object.fromEntries(gauge(prometheus, `bunqueue_queue_jobs_${n}`))]),
    ),
    prometheusCounts: Object.fromEntries(['push', 'pull', 'ack'].map((n) => [n, sample(`bunqueue_${n}_duration_ms_count`)])),
    queues: (await get('/queues')).queues.map((q: { name: string }) => q.name),
    perQueue,
  };
}

/** The lines of Prometheus text that break exposition format 0.0.4 or a histogram's rules. */
function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  const typed = new Map<string, string>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const histograms = new Map<string, { le: number[]; counts: number[]; count?: number }>();
  if (!text.endsWith('\n')) problems.push('no newline at the end');
  for (const line of text.slice(0, -1).split('\n')) {
    const help = new RegExp(`^# HELP (${name}) .+$`).exec(line);
    const type = new RegExp(`^# TYPE (${name}) (counter|gauge|histogram)$`).exec(line);
    const sample = new RegExp(`^(${name})(\\{(${name}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"(?:,${name}="(?:[^"\\\\\\n]|\\\\[\\\\"n])*")*)\\})? (\\S+)$`).exec(line);
    if (help !== null) continue;
    if (type !== null) {
      if (typed.has(type[1] as string)) problems.push(`second TYPE: ${line}`);
      typed.set(type[1] as string, type[2] as string);
      continue;
    }
    if (sample === null || Number.isNaN(Number(sample[4]))) {
      problems.push(`not a HELP, TYPE or sample line: ${line}`);
      continue;
    }
    const metric = sample[1] as string;
    const family = [metric, metric.replace(/_(bucket|sum|count)$/, '')].find((n) => typed.has(n));
    if (family === undefined) problems.push(`sample before its TYPE: ${line}`);
    else if (typed.get(family) === 'histogram') {
      const h = histograms.get(family) ?? { le: [], counts: [] };
      histograms.set(family, h);
      const le = /le="([^"]+)"/.exec(sample[3] ?? '')?.[1];
      if (metric.endsWith('_bucket') && le !== undefined) {
        h.le.push(le === '+Inf' ? Infinity : Number(le));
        h.counts.push(Number(sample[4]));
      }
      if (metric.endsWith('_count')) h.count = Number(sample[4]);
    }
  }
  for (const [family, h] of histograms) {
    const rising = h.le.every((le, i) => i === 0 || le > (h.le[i - 1] as number));
    const cumulative = h.counts.every((c, i) => i === 0 || c >= (h.counts[i - 1] as number));
    if (!rising || !cumulative || h.le.at(-1) !== Infinity || h.counts.at(-1) !== h.count) problems.push(`histogram ${family}: buckets ${h.le} ${h.counts}, count ${h.count}`);
  }
  return problems;
}

/** An HTTP call to the server at `url()` (it changes across restarts) that must answer 200. */
function caller(t: Test, url: () => string) {
  return async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(url() + path, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    t.equal(res.status, 200, `${method} ${path}`);
    return res.json();
  };
}

t.test('monitoring-numbers-are-the-workload-live-after-replay-and-from-a-snapshot', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  // Locks longer than the test: the active job stays active across the restarts.
  const env = { LOCK_MS: '600000' };
  let tapeq = await startTapeq(data.dir, env);
  t.teardown(() => tapeq.kill('SIGKILL'));
  const call = caller(t, () => tapeq.url);
  const push = async (queue: string, body: object): Promise<string> => (await call('POST', `/queues/${queue}/jobs`, body)).id;
  const pull = async (queue: string): Promise<{ id: string; data: string }> => (await call('GET', `/queues/${queue}/jobs`)).job;

  // mail: 6 plain jobs, 2 delayed, one that fails and retries (its backoff delays it), one that
  // fails into the DLQ; 2 completed (one cleaned), one active, one cancelled, one pulled over a
  // WebSocket that closes (released).
  const plain: string[] = [];
  for (let i = 0; i < 6; i++) plain.push(await push('mail', { data: `p${i}` }));
  for (let i = 0; i < 2; i++) await push('mail', { data: `d${i}`, delay: 600_000 });
  await push('mail', { data: 'retry', priority: 10, maxAttempts: 2, backoff: 600_000 });
  await push('mail', { data: 'dead', priority: 9, maxAttempts: 1 });
  for (const expected of ['retry', 'dead']) {
    const job = await pull('mail');
    t.equal(job.data, expected);
    await call('POST', `/jobs/${job.id}/fail`, { error: 'refused' });
  }
  const started = [await pull('mail'), await pull('mail'), await pull('mail')];
  t.same(started.map((j) => j.data), ['p0', 'p1', 'p2']);
  for (const job of started.slice(0, 2)) await call('POST', `/jobs/${job.id}/ack`, { result: 1 });
  await call('DELETE', `/jobs/${plain[5]}`);
  t.equal((await call('POST', '/queues/mail/clean', { grace: 0, state: 'completed', limit: 1 })).removed.length, 1);
  // held: a paused queue's waiting jobs; gone: obliterated with an active job; drained: emptied.
  for (let i = 0; i < 3; i++) await push('held', { data: i });
  await call('POST', '/queues/held/pause');
  for (let i = 0; i < 2; i++) await push('gone', { data: i });
  await pull('gone');
  await call('POST', '/queues/gone/obliterate', { force: true });
  for (let i = 0; i < 2; i++) await push('drained', { data: i });
  await push('drained', { data: 'later', delay: 600_000 });
  t.equal((await call('POST', '/queues/drained/drain')).removed, 3);

  // One WebSocket and one event stream stay open; one of each comes and goes (the WebSocket
  // pulls a job, which its close releases).
  const wsUrl = tapeq.url.replace('http://', 'ws://');
  const stays = await WsClient.connect(`${wsUrl}/ws/queues/mail`);
  t.teardown(() => stays.socket.terminate());
  const leaves = await WsClient.connect(`${wsUrl}/ws`);
  t.match(await leaves.command({ cmd: 'PULL', queue: 'mail' }), { ok: true, job: { data: 'p3' } }, 'the WebSocket holds p3');
  const streams = [await SseClient.connect(`${tapeq.url}/events`), await SseClient.connect(`${tapeq.url}/events/queues/mail`)];
  t.teardown(() => streams.forEach((stream) => stream.close()));
  await leaves.close();
  (streams[1] as SseClient).close();
  const settled = async (): Promise<Record<string, unknown>> => {
    for (let tries = 0; ; tries++) {
      const numbers = await monitoringNumbers(tapeq.url, ['mail', 'held', 'gone', 'drained']);
      const connections = (numbers.health as { connections: { ws: number; sse: number } }).connections;
      const mail = (numbers.perQueue as { mail: { counts: { active: number } } }).mail;
      if ((connections.ws <= 1 && connections.sse <= 1 && mail.counts.active === 1) || tries >= 100) return numbers;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };

  const mail = { waiting: 2, active: 1, delayed: 3, completed: 1, failed: 1, 'waiting-children': 0, paused: 0 };
  const held = { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 3 };
  const none = { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 };
  const totals = { totalPushed: 18, totalPulled: 7, totalCompleted: 2, totalFailed: 1 };
  const truth = (connections: { ws: number; sse: number }, latency: Record<string, number>) => ({
    health: { queues: { waiting: 5, active: 1, delayed: 3, completed: 1, dlq: 1 }, connections: { tcp: 0, ...connections } },
    stats: { queued: 5, processing: 1, delayed: 3, dlq: 1, completed: 1, ...totals },
    collections: { jobIndex: 11, completedJobs: 1, processingTotal: 1, queuedTotal: 5, temporalIndexTotal: 3 },
    metrics: totals,
    prometheusTotals: { pushed: 18, pulled: 7, completed: 2, failed: 1 },
    // drained has no job left but exists (until obliterated, as gone was): its gauges read 0.
    prometheusQueues: {
      waiting: { drained: 0, held: 0, mail: 2 },
      active: { drained: 0, held: 0, mail: 1 },
      delayed: { drained: 0, held: 0, mail: 3 },
      dlq: { drained: 0, held: 0, mail: 1 },
      paused: { drained: 0, held: 3, mail: 0 },
      waiting_children: { drained: 0, held: 0, mail: 0 },
    },
    prometheusCounts: latency,
    queues: ['drained', 'held', 'mail'],
    perQueue: {
      mail: { counts: mail, listCounts: mail, listed: 8, dlq: 1 },
      held: { counts: held, listCounts: held, listed: 3, dlq: 0 },
      gone: { counts: none, listCounts: none, listed: 0, dlq: 0 },
      drained: { counts: none, listCounts: none, listed: 0, dlq: 0 },
    },
  });
  t.same(await settled(), truth({ ws: 1, sse: 1 }, { push: 18, pull: 6, ack: 2 }), 'live');
  t.same(expositionProblems(await (await fetch(`${tapeq.url}/prometheus`)).text()), [], 'valid exposition text');

  const restartedAfterRecords = truth({ ws: 0, sse: 0 }, { push: 0, pull: 0, ack: 0 });
  t.equal(await tapeq.kill('SIGTERM'), 0);
  // This start replays the whole log, then snapshots it for the next one. Its snapshotter checks
  // both triggers once per SNAPSHOT_INTERVAL_MS, at most once a second: 200 ms starts that
  // snapshot sooner, and beside SNAPSHOT_EVERY_RECORDS=1 the interval trigger adds no other
  // (retention, run as often, finds nothing of the default 7 days old to remove).
  tapeq = await startTapeq(data.dir, { ...env, SNAPSHOT_EVERY_RECORDS: '1', SNAPSHOT_INTERVAL_MS: '200' });
  t.match(tapeq.stderr(), /snapshot: none, replayed \d+ records/);
  t.same(await settled(), restartedAfterRecords, 'after a full replay');
  const deadline = Date.now() + 10_000;
  while (!(await readdir(join(data.dir, 'snapshots')).catch(() => [])).some((f) => f.endsWith('.snap'))) {
    if (Date.now() > deadline) throw new Error('no snapshot written');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(await tapeq.kill('SIGTERM'), 0);
  tapeq = await startTapeq(data.dir, env);
  t.match(tapeq.stderr(), /snapshot: \S+snapshot-\d+\.snap, replayed 0 records/);
  t.same(await settled(), restartedAfterRecords, 'from the snapshot');
});

t.test('an-emptied-queue-keeps-zero-gauges-until-obliterated-live-after-replay-and-from-a-snapshot', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  let tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
  const call = caller(t, () => tapeq.url);
  const push = async (queue: string, body: object): Promise<string> => (await call('POST', `/queues/${queue}/jobs`, body)).id;
  const pull = async (queue: string): Promise<{ id: string }> => (await call('GET', `/queues/${queue}/jobs`)).job;

  // Every way a queue loses its last job, and one that never had any but was paused.
  await push('acked', { data: 1, removeOnComplete: true });
  await call('POST', `/jobs/${(await pull('acked')).id}/ack`, {});
  await push('dead', { data: 1, maxAttempts: 1, removeOnFail: true });
  await call('POST', `/jobs/${(await pull('dead')).id}/fail`, { error: 'no' });
  await push('purged', { data: 1, maxAttempts: 1 });
  await call('POST', `/jobs/${(await pull('purged')).id}/fail`, { error: 'no' });
  await call('POST', '/queues/purged/dlq/purge');
  await push('cancelled', { data: 1 }).then((id) => call('DELETE', `/jobs/${id}`));
  await push('drained', { data: 1, delay: 600_000 });
  t.equal((await call('POST', '/queues/drained/drain')).removed, 1);
  await push('cleaned', { data: 1 });
  await call('POST', `/jobs/${(await pull('cleaned')).id}/ack`, {});
  t.equal((await call('POST', '/queues/cleaned/clean', { grace: 0, state: 'completed' })).removed.length, 1);
  await call('POST', '/queues/resumed/pause');
  await call('POST', '/queues/resumed/resume');
  // Gone: obliterated once empty, and obliterated with its jobs.
  await push('gone-empty', { data: 1 }).then((id) => call('DELETE', `/jobs/${id}`));
  await call('POST', '/queues/gone-empty/obliterate');
  await push('gone-full', { data: 1 });
  await call('POST', '/queues/gone-full/obliterate');
  // Never used: a drain, a resume and a count of a name leave no queue behind.
  await call('POST', '/queues/never/drain');
  await call('POST', '/queues/never/resume');
  await call('GET', '/queues/never/counts');

  const idle = ['acked', 'cancelled', 'cleaned', 'dead', 'drained', 'purged', 'resumed'];
  const zeros = Object.fromEntries(idle.map((q) => [q, 0]));
  const observed = async (): Promise<{ queues: string[]; counts: unknown[]; gauges: Record<string, unknown> }> => {
    const listed = (await call('GET', '/queues')).queues as Array<{ name: string; counts: Record<string, number> }>;
    const text = await (await fetch(`${tapeq.url}/prometheus`)).text();
    t.same(expositionProblems(text), [], 'valid exposition text');
    return {
      queues: listed.map((q) => q.name),
      counts: [...new Set(listed.map((q) => JSON.stringify(q.counts)))],
      gauges: Object.fromEntries(
        ['waiting', 'active', 'delayed', 'dlq', 'paused', 'waiting_children'].map((n) => [n, Object.fromEntries(gauge(text, `bunqueue_queue_jobs_${n}`))]),
      ),
    };
  };
  const none = { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 };
  const truth = {
    queues: idle,
    counts: [JSON.stringify(none)],
    gauges: Object.fromEntries(['waiting', 'active', 'delayed', 'dlq', 'paused', 'waiting_children'].map((n) => [n, zeros])),
  };
  t.same(await observed(), truth, 'live: every emptied queue is listed with zero gauges, obliterated ones are not');

  t.equal(await tapeq.kill('SIGTERM'), 0);
  // As above: the snapshot for the next start, looked for every 200 ms rather than every second.
  tapeq = await startTapeq(data.dir, { SNAPSHOT_EVERY_RECORDS: '1', SNAPSHOT_INTERVAL_MS: '200' });
  t.match(tapeq.stderr(), /snapshot: none, replayed \d+ records/);
  t.same(await observed(), truth, 'after a full replay');
  const deadline = Date.now() + 10_000;
  while (!(await readdir(join(data.dir, 'snapshots')).catch(() => [])).some((f) => f.endsWith('.snap'))) {
    if (Date.now() > deadline) throw new Error('no snapshot written');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(await tapeq.kill('SIGTERM'), 0);
  tapeq = await startTapeq(data.dir);
  t.match(tapeq.stderr(), /snapshot: \S+snapshot-\d+\.snap, replayed 0 records/);
  t.same(await observed(), truth, 'from the snapshot');

  await call('POST', '/queues/drained/obliterate');
  t.notOk((await observed()).queues.includes('drained'), 'obliterating an idle queue ends its series');
  await push('drained', { data: 1 });
  t.ok((await observed()).queues.includes('drained'), 'a push brings it back');
});

t.test('push-and-pull-rates-count-traffic-while-the-wall-clock-is-behind-the-log', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const call = async (url: string, method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(url + path, {
      method,
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
    t.equal(res.status, 200, `${method} ${path}`);
    return res.json();
  };
  // The log is written on a machine whose clock runs an hour ahead, then served with the right
  // time: the broker's time (record timestamps never go backwards) stands still for an hour.
  const ahead = fileURLToPath(new URL('../fixtures/clock-ahead.js', import.meta.url));
  let tapeq = await startTapeq(data.dir, {}, { nodeArgs: ['--import', ahead] });
  t.teardown(() => tapeq.kill('SIGKILL'));
  const first = await call(tapeq.url, 'POST', '/queues/q/jobs', { data: 'ahead' });
  t.equal(await tapeq.kill('SIGTERM'), 0);
  tapeq = await startTapeq(data.dir);
  const job = (await call(tapeq.url, 'GET', `/jobs/${first.id}`)).job as { createdAt: number };
  t.ok(job.createdAt > Date.now() + 3_000_000, 'the log is an hour ahead of this clock');

  // Traffic until a reading counts it (a reading each round; the rates are those of the last
  // complete second, so they show once one second has passed with pushes and pulls in it).
  let stats: { pushPerSec: number; pullPerSec: number; totalPushed: number } | null = null;
  let pushed = 1;
  const ok = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(tapeq.url + path, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
    if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status}`);
    return res.json();
  };
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
    await ok('POST', '/queues/q/jobs', { data: pushed++ });
    await ok('GET', '/queues/q/jobs');
    stats = (await ok('GET', '/stats')).stats;
    if (stats !== null && stats.pushPerSec > 0 && stats.pullPerSec > 0) break;
  }
  t.ok(stats !== null && stats.pushPerSec > 0 && stats.pullPerSec > 0, `pushes and pulls are counted: ${JSON.stringify(stats)}`);
  t.ok(stats !== null && stats.pushPerSec <= pushed && stats.pullPerSec <= pushed, 'never more than were made');
  const last = (await call(tapeq.url, 'GET', '/queues/q/jobs/list?statuses=active&length=1')).jobs as Array<{ createdAt: number }>;
  t.ok((last[0]?.createdAt ?? 0) > Date.now() + 3_000_000, "this run's records still carry the log's time, an hour ahead");
});
