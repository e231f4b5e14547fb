// The debug endpoints on the real server process, whose heap is small enough to snapshot quickly
// (snapshotting the test runner's own heap takes minutes on a busy machine).

import { readFileSync } from 'node:fs';
import t from 'tap';
import { startTapeq, tempDataDir } from '../fixtures/process.js';

t.test('heapstats-snapshot-counts-real-object-types', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  t.teardown(() => tapeq.kill('SIGKILL'));
  const res = await fetch(`${tapeq.url}/heapstats?snapshot=true`);
  t.equal(res.status, 200);
  const body = (await res.json()) as { topObjectTypes: Array<{ type: string; count: number }>; snapshotNodeCount: number };
  t.equal(body.topObjectTypes.length, 20);
  t.ok(body.snapshotNodeCount > 1000, `snapshot has ${body.snapshotNodeCount} nodes`);
  const types = body.topObjectTypes.map((x) => x.type);
  t.ok(types.includes('Object') || types.includes('Array'), 'constructor names from the snapshot string table');
  const counts = body.topObjectTypes.map((x) => x.count);
  t.same(counts, [...counts].sort((a, b) => b - a), 'sorted by count');
});

function rssMbOf(pid: number): number {
  const line = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (line === null) throw new Error('no VmRSS');
  return Number(line[1]) / 1024;
}

t.test('gc-compacts-the-heap-and-reports-the-memory-it-leaves', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  // Started as the README starts it, without --expose-gc: /gc finds V8's gc() itself.
  const tapeq = await startTapeq(data.dir, {});
  t.teardown(() => tapeq.kill('SIGKILL'));
  // Something to compact: 100,000 jobs pushed in bulks leave request garbage among the jobs.
  for (let i = 0; i < 100; i++) {
    const jobs = Array.from({ length: 1_000 }, (_, k) => ({ data: { n: i * 1_000 + k, pad: 'x'.repeat(100) } }));
    const push = await fetch(`${tapeq.url}/queues/gc/jobs/bulk`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jobs }) });
    t.equal(push.status, 200);
  }
  // Two requests together: the compaction settles for at least 200 ms, so they share one run.
  const responses = await Promise.all([1, 2].map(() => fetch(`${tapeq.url}/gc`, { method: 'POST' })));
  t.same(responses.map((r) => r.status), [200, 200]);
  const [body, other] = await Promise.all(responses.map((r) => r.json()));
  t.match(body, {
    ok: true,
    before: { heapUsed: Number, heapTotal: Number, rss: Number },
    after: { heapUsed: Number, heapTotal: Number, rss: Number },
  });
  // Had the second run on its own, its `before` would be the first one's smaller `after`.
  t.same(other, body, 'concurrent requests share one compaction and its figures');
  const { before, after } = body as { before: Record<string, number>; after: Record<string, number> };
  t.ok((after.heapUsed as number) < (before.heapUsed as number), `heapUsed ${before.heapUsed} → ${after.heapUsed} MB`);
  t.ok((after.heapTotal as number) <= (before.heapTotal as number), `heapTotal ${before.heapTotal} → ${after.heapTotal} MB`);
  const pid = tapeq.child.pid as number;
  const rss = rssMbOf(pid);
  t.ok(Math.abs(rss - (after.rss as number)) <= 8, `after.rss ${after.rss} MB is the process's RSS (${rss.toFixed(1)} MB in /proc)`);
  const stats = (await (await fetch(`${tapeq.url}/heapstats`)).json()) as {
    collections: { queuedTotal: number };
    payloads: { liveBytes: number; heldBytes: number };
  };
  t.equal(stats.collections.queuedTotal, 100_000, 'every job is still there');
  let dataBytes = 0;
  for (let n = 0; n < 100_000; n++) dataBytes += 2 + Buffer.byteLength(JSON.stringify({ n, pad: 'x'.repeat(100) }));
  t.equal(stats.payloads.liveBytes, dataBytes, 'the payload arena holds exactly the jobs\' data, each after a 2-byte length');
  t.ok(stats.payloads.heldBytes >= dataBytes && stats.payloads.heldBytes <= dataBytes + 2 * 1_048_576, `in ${stats.payloads.heldBytes} bytes of chunks`);
});

t.test('large-jobs-leave-no-heap-behind-once-they-are-gone', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir, {}, { nodeArgs: ['--expose-gc'] });
  t.teardown(() => tapeq.kill('SIGKILL'));
  const heapUsedAfterGc = async (): Promise<number> => {
    const res = await fetch(`${tapeq.url}/gc`, { method: 'POST' });
    return ((await res.json()) as { after: { heapUsed: number } }).after.heapUsed;
  };
  const empty = await heapUsedAfterGc();
  // 200 jobs of 256 KiB: 50 MB of data, far above the log's in-memory tail budget (16 MiB).
  const job = JSON.stringify({ data: { blob: 'x'.repeat(256 * 1024 - 20) } });
  const refused: number[] = [];
  for (let i = 0; i < 200; i++) {
    const res = await fetch(`${tapeq.url}/queues/big/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: job });
    if (res.status !== 200) refused.push(res.status);
    await res.arrayBuffer();
  }
  t.same(refused, [], 'every push accepted');
  const held = await heapUsedAfterGc();
  t.ok(held - empty >= 30, `the waiting jobs hold their data: ${empty} → ${held} MB`);
  const obliterate = await fetch(`${tapeq.url}/queues/big/obliterate`, { method: 'POST' });
  t.equal(obliterate.status, 200);
  const left = await heapUsedAfterGc();
  t.ok(left - empty <= 25, `once they are gone at most the tail budget stays: ${empty} → ${left} MB`);
});

t.test('heapstats-payloads-count-the-ids-of-restored-jobs-not-yet-touched', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const liveBytes = async (url: string): Promise<number> =>
    ((await (await fetch(`${url}/heapstats`)).json()) as { payloads: { liveBytes: number } }).payloads.liveBytes;
  let tapeq = await startTapeq(data.dir);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const res = await fetch(`${tapeq.url}/queues/q/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":"xy"}' });
    ids.push(((await res.json()) as { id: string }).id);
  }
  const entry = (text: string): number => 2 + Buffer.byteLength(text);
  const dataBytes = 3 * entry('"xy"');
  t.equal(await liveBytes(tapeq.url), dataBytes, 'pushed jobs: their data only');
  await tapeq.kill('SIGTERM');
  tapeq = await startTapeq(data.dir);
  const restarted = tapeq;
  t.teardown(() => restarted.kill('SIGKILL'));
  const idBytes = ids.reduce((sum, id) => sum + entry(id), 0);
  t.equal(await liveBytes(tapeq.url), dataBytes + idBytes, 'replayed waiting jobs: their data and their ids');
  const pulled = (await (await fetch(`${tapeq.url}/queues/q/jobs`)).json()) as { job: { id: string } };
  t.equal(await liveBytes(tapeq.url), dataBytes + idBytes - entry(pulled.job.id), 'a touched job keeps its id on the heap');
});
