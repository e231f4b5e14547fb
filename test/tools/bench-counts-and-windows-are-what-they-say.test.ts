// What the bench numbers are divided by and what they count: an error is counted once, a target
// is judged on runs without errors on both sides, a fixed amount of work is timed to its last
// answer (not to the load generator's next 1 s tick), a CPU figure is divided by the wall time it
// was taken over, the chart says what the table says about errors and targets, and a server's
// memory is its process tree's.

import t from 'tap';
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';
import { cannonErrorCount, runSpec } from '../../tools/bench-loadgen.js';
import { benchMemory } from '../../tools/bench-recovery.js';
import { runLoad, startRef, startTapeq, tempDir } from '../../tools/bench-proc.js';
import { formatReport, renderSvg, withRatio, type Row } from '../../tools/bench-report.js';
import { tinyRun } from './bench-fixture.js';

t.setTimeout(120_000);
const run = tinyRun();

t.test('a-timeout-is-one-error-not-two', async (t) => {
  // autocannon counts each timeout in `errors` too (its onTimeout does errors++ and timeouts++).
  const result = { duration: 1, errors: 3, timeouts: 2, non2xx: 4, '2xx': 10, requests: { total: 17 } };
  t.equal(cannonErrorCount(result), 7, '4 non-2xx + 1 socket error + 2 timeouts');
});

t.test('a-target-is-not-met-against-a-reference-that-had-errors', async (t) => {
  // A reference whose rate counts successes only is too low when some of its requests failed,
  // which flatters the ratio.
  const ref: Row = { subject: 'bare fastify', measure: 'push', value: 1_000, unit: 'jobs/s', errors: 5 };
  const tapeq: Row = { subject: 'tapeq', measure: 'push', value: 900, unit: 'jobs/s', errors: 0 };
  const row = withRatio(tapeq, ref, 0.75);
  t.equal(row.target?.errors, 5, 'the reference\'s errors are the target\'s');
  t.equal(row.target?.pass, false);
});

t.test('a-fixed-amount-is-timed-to-its-last-answer', async (t) => {
  const server = await startRef('fastify');
  try {
    // 20 tiny bulk requests: done in well under a second; autocannon only notices at its next
    // once-a-second tick, and that idle tail must not be in the seconds the rate divides by.
    const result = await runLoad({ ...run.spec('fill'), url: server.url, connections: 2, bulkSize: 10, amount: 200, warmupSeconds: 0, seconds: 0 });
    t.equal(result.errors, 0);
    t.equal(result.ops, 200);
    t.ok(result.seconds < 0.9, `${result.seconds} s for 20 requests, not rounded up to autocannon's tick`);
    t.equal(result.opsPerSec, result.ops / result.seconds);
  } finally {
    await server.stop();
  }
});

t.test('sse-cpu-is-divided-by-the-window-it-was-taken-over', async (t) => {
  const data = await tempDir('tapeq-bench-sse-cpu-');
  const server = await startTapeq(data.dir);
  try {
    const result = await runLoad({ ...run.spec('sse', { connections: 2, ssePushPerSec: 50 }), url: server.url });
    // The CPU meter runs over the pushes and the 0.5 s drain after them; the rate's seconds are the
    // push window only, so the cores figure needs the longer window.
    t.ok(result.cpuWindowSeconds >= result.seconds + 0.45, `CPU window ${result.cpuWindowSeconds} s, push window ${result.seconds} s`);
  } finally {
    await server.stop();
    await data.remove();
  }
});

t.test('the-chart-shows-errors-and-failed-targets', async (t) => {
  const ref: Row = { subject: 'bare fastify', measure: 'push', value: 1_000, unit: 'jobs/s', errors: 0 };
  const tapeq = withRatio({ subject: 'tapeq', measure: 'push', value: 900, unit: 'jobs/s', errors: 3 }, ref, 0.75);
  const svg = renderSvg([{ scenario: 'http-push', rows: [ref, tapeq] }], 'title');
  t.match(svg, /900 jobs\/s \(0\.90× bare fastify\)[^<]*3 errors/, 'the bar of a run with errors says so');
  t.match(svg, /FAIL \(≥ 0\.75× bare fastify/, 'and that its target failed');
});

t.test('memory-rss-rows-count-the-snapshot-process-too', async (t) => {
  // tapeq serve forks its snapshot process at start (idle: tens of MB); the server's memory is both.
  const report = await benchMemory(run, 1);
  for (const row of report.rows.slice(0, 4)) {
    const alone = Number(/server process alone: ([\d.]+) MiB/.exec(row.measure)?.[1] ?? Number.NaN);
    t.ok(row.value > alone + 10, `${row.measure}: ${row.value} MiB for the tree, ${alone} MiB for the server alone`);
    t.equal(row.unit, 'MiB', 'RSS is read in KiB from /proc and divided by 1,024: MiB, not MB');
  }
});

t.test('rss-is-labelled-in-mib-the-unit-it-is-computed-in', async (t) => {
  // peakRssMb is VmHWM (KiB) ÷ 1,024: 2^20-byte units, 4.9% more than a decimal MB each.
  const row: Row = { subject: 'tapeq', measure: 'push', value: 1, unit: 'jobs/s', peakRssMb: 619 };
  const table = formatReport({ rows: [row], notes: [] });
  t.match(table, /\| peak RSS MiB \(process tree\) \|/);
  t.notMatch(table, /RSS MB/);
});

t.test('a-ws-prefill-that-was-refused-fails-the-run', async (t) => {
  // The PULL → ACK row says how many jobs were prefilled; a PUSHB answered ok:false means fewer
  // were, and the run must fail rather than measure a shorter queue under that label. A stand-in
  // server refuses every PUSHB and answers every PULL with no job.
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (socket) => {
    socket.on('message', (raw) => {
      const command = JSON.parse(String(raw)) as { cmd: string; reqId: string };
      const reply = command.cmd === 'PUSHB' ? { ok: false, error: 'refused', reqId: command.reqId } : { ok: true, job: null, reqId: command.reqId };
      socket.send(JSON.stringify(reply));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
  try {
    const spec = { ...run.spec('ws-cycle', { connections: 1, pipeline: 2, amount: 2_000, bulkSize: 1_000, warmupSeconds: 0 }), url };
    await t.rejects(runSpec(spec), /PUSHB failed: refused/);
  } finally {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  }
});
