// The numbers of the monitoring endpoints, read from a real server process over its socket and
// checked against each other, against GET /queues/:q/counts and against /proc.

import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { connect } from 'node:net';
import t from 'tap';
import { startTapeq, tempDataDir } from '../fixtures/process.js';

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

t.test('prometheus-queue-gauges-show-paused-and-dependent-jobs-and-add-up-to-health', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
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
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
  const memory = async () => ((await (await fetch(`${tapeq.url}/health`)).json()) as { memory: Record<string, number> }).memory;
  let children: number[] = [];
  for (let tries = 0; children.length === 0 && tries < 100; tries++) {
    children = await childPids(tapeq.child.pid as number);
    if (children.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
  }
  t.equal(children.length, 1, 'the server has one child, its snapshot process');
  const child = children[0] as number;
  const reported = await memory();
  const measured = await vmRssMb(child);
  t.ok(Math.abs((reported.snapshotRss as number) - measured) <= 5, `snapshotRss ${reported.snapshotRss} MB ≈ the child's VmRSS ${measured.toFixed(1)} MB`);
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
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
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
