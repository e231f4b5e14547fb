import { readFileSync } from 'node:fs';
import t from 'tap';
import { benchWorkersReport, machineLine } from '../../tools/bench.js';
import { benchMemory, benchRecovery } from '../../tools/bench-recovery.js';
import { minorFaultsOf, processTree, startTapeq, tempDir } from '../../tools/bench-proc.js';
import { formatReport, ratioOf, renderSvg } from '../../tools/bench-report.js';
import { benchWs } from '../../tools/bench-ws.js';
import { checkReport, tinyRun } from './bench-fixture.js';

/** Each scenario starts real server processes; the normal run covers the rest, TAPEQ_LONG=1 all. */
const longOnly = { skip: process.env.TAPEQ_LONG === '1' ? false : 'runs with TAPEQ_LONG=1 (npm run test:reliability)' };

t.setTimeout(300_000);
const run = tinyRun();

t.test('ws-push-beside-the-bare-websocket-reference-pull-ack-and-sse-fanout', async (t) => {
  const report = await benchWs(run, { wsConnections: 1, pipeline: 4, cycleJobs: 200, sseSubscribers: 3, ssePushPerSec: 50 });
  checkReport(t, report, ['bare fastify', 'tapeq', 'tapeq', 'tapeq']);
  t.equal(report.rows[0]?.errors, 0, 'the bare WebSocket route answered every PUSH ok');
  t.equal(report.rows[1]?.errors, 0, 'every WS PUSH answered ok');
  t.match(report.rows[1]?.ratio?.text ?? '', /× bare fastify$/, 'tapeq WS push is shown as a ratio of the same-run reference');
  t.equal(report.rows[2]?.errors, 0, 'every WS PULL and ACK answered ok');
  t.match(report.rows[3]?.measure ?? '', /^SSE fan-out: 3 subscribers, \d+ pushes\/s achieved \(50 offered\)$/, 'the achieved push rate is measured');
  t.equal(report.rows[3]?.key, 'SSE fan-out: 3 subscribers, 50 pushes/s offered', 'rounds match the row by what was offered');
});

t.test('workers-beside-direct-calls', longOnly, async (t) => {
  const report = await benchWorkersReport(run, 200);
  checkReport(t, report, ['direct calls', 'tapeq']);
  t.match(report.notes[1] ?? '', /^Both sides warm up first \(20 jobs .*--seconds and --jobs do not apply\.$/);
});

t.test('recovery-replay-and-snapshot-reach-ready-with-their-page-faults-priced', async (t) => {
  const report = await benchRecovery(run);
  checkReport(t, report, ['tapeq', 'tapeq', 'tapeq', 'tapeq', 'raw memory']);
  t.match(report.rows[1]?.measure ?? '', /full replay of 500 jobs \(server's own log open \+ load: \d+ ms; [\d,]+ minor page faults\)/);
  t.match(report.rows[2]?.measure ?? '', /from a snapshot of 500 jobs/);
  const faults = /; ([\d,]+) minor page faults/.exec(report.rows[2]?.measure ?? '')?.[1] ?? '0';
  t.ok(Number(faults.replaceAll(',', '')) > 1_000, 'a Node process faults in thousands of pages before it is ready');
  // 500 jobs fit in the active segment, which the scrub reads up to its synced end (here, all of it).
  t.match(report.rows[3]?.measure ?? '', /^scrub: 0 sealed segments, the active one and 1 snapshot of 500 jobs, \d+ MiB \([\d.]+ MiB\/s while working, [\d.]+ CPU s\)$/);
  t.ok((report.rows[3]?.value ?? 0) > 0, 'the scrub took some time');
  t.match(report.notes[2] ?? '', /^The scrub row is one run of the server's scrub/);
  const memory = report.rows[4];
  t.equal(memory?.unit, 'µs/fault');
  t.ok((memory?.value ?? 0) > 0 && (memory?.value ?? 0) < 10_000, 'a first write to fresh memory is priced in microseconds');
  t.match(report.notes[1] ?? '', /^Minor page faults .* µs per fault .* s of the [\d.]+ s and [\d.]+ s of the [\d.]+ s starts/);
});

t.test('minor-faults-are-read-from-the-right-proc-field', async (t) => {
  const fromProc = minorFaultsOf(process.pid);
  const fromNode = process.resourceUsage().minorPageFault;
  t.ok(fromProc > 0 && Math.abs(fromProc - fromNode) <= 1_000, `/proc says ${fromProc}, getrusage ${fromNode}`);
});

t.test('memory-after-gc-with-waiting-jobs', longOnly, async (t) => {
  const report = await benchMemory(run);
  t.equal(report.rows.length, 7);
  t.match(report.rows[1]?.measure ?? '', /right after pushing 500 jobs, before POST \/gc/);
  t.match(report.rows[2]?.measure ?? '', /after 60 s idle, before POST \/gc \(process tree; the server process alone: [\d.]+ MiB; the tree's lowest meanwhile: \d+ MiB, at \d+ s\)/);
  t.ok((report.rows[2]?.value ?? 0) > 10, 'idle RSS in MiB');
  t.match(report.rows[3]?.measure ?? '', /after POST \/gc, 500 waiting jobs/);
  t.ok((report.rows[3]?.value ?? 0) > 10, 'RSS in MiB');
  t.equal(report.rows[6]?.errors, 0, 'every bulk push answered 2xx');
  t.match(report.rows[6]?.measure ?? '', /^fill rate: bulk push, 500 jobs\/request, 1 connection$/, 'the fill row says what it ran');
});

t.test('report-renders-markdown-and-svg', async (t) => {
  const rows = [
    { subject: 'bare fastify', measure: 'push', value: 1000, unit: 'jobs/s' },
    { subject: 'tapeq', measure: 'push <&>', value: 800, unit: 'jobs/s', ratio: ratioOf(0.8, '{x}× bare fastify') },
  ];
  const md = formatReport({ rows, notes: ['a note'] });
  t.match(md, /\| tapeq \| push <&> \| 800 \| jobs\/s \|/);
  t.match(md, /- a note/);
  const svg = renderSvg([{ scenario: 'http-push', rows }], machineLine());
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /push &lt;&amp;&gt;/, 'labels are escaped');
  t.equal((svg.match(/<rect /g) ?? []).length, 3, 'background + one bar per row');
});

t.test('svg-bars-compared-by-a-ratio-share-a-scale', async (t) => {
  const ref = { subject: 'bare fastify', measure: 'push', value: 20_000, unit: 'jobs/s' };
  const tapeq = { subject: 'tapeq', measure: 'push', value: 10_000, unit: 'jobs/s', ratio: ratioOf(0.5, '{x}× bare fastify') };
  const svg = renderSvg([{ scenario: 'http-push', rows: [ref, tapeq] }], 'title');
  const widths = [...svg.matchAll(/<rect x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  t.equal(widths.length, 2);
  t.equal((widths[0] ?? 0) / (widths[1] ?? 1), 2, '20,000 jobs/s is drawn twice as long as 10,000 jobs/s');
  t.match(svg, /10,000 jobs\/s \(0\.50× bare fastify\)/, 'the ratio is printed beside the tapeq bar');
});

t.test('server-cpu-and-peak-rss-cover-the-forked-snapshot-process', async (t) => {
  const data = await tempDir('tapeq-bench-tree-');
  const server = await startTapeq(data.dir);
  try {
    let tree = processTree(server.pid);
    for (let i = 0; i < 100 && tree.length < 2; i++) {
      await new Promise((r) => setTimeout(r, 50));
      tree = processTree(server.pid);
    }
    t.ok(tree.length >= 2, `tapeq serve and its snapshot process: ${tree.join(', ')}`);
    const mainHwmKb = Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1]);
    t.ok(server.peakRssMb() > mainHwmKb / 1024 + 10, 'peak RSS adds the child\'s VmHWM to the server\'s');
    t.ok(server.cpuSeconds() > 0, 'CPU seconds of the tree');
  } finally {
    await server.stop();
    await data.remove();
  }
});

t.test('tapeq-under-test-inherits-no-tapeq-variable-but-gets-the-scenario-env', async (t) => {
  const before = process.env.AUTH_TOKENS;
  process.env.AUTH_TOKENS = 'caller-secret';
  const data = await tempDir('tapeq-bench-env-');
  try {
    const server = await startTapeq(data.dir, { LOG_SYNC: 'interval' });
    try {
      const environ = readFileSync(`/proc/${server.pid}/environ`, 'utf8').split('\0');
      t.notOk(environ.some((e) => e.startsWith('AUTH_TOKENS=')), 'the caller\'s AUTH_TOKENS is not passed on');
      t.ok(environ.includes('LOG_SYNC=interval'), 'the scenario\'s own variable is');
      const res = await fetch(`${server.url}/queues/env/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{}}' });
      t.equal(res.status, 200, 'no token needed: the server runs without auth');
      await res.arrayBuffer();
    } finally {
      await server.stop();
    }
  } finally {
    if (before === undefined) delete process.env.AUTH_TOKENS;
    else process.env.AUTH_TOKENS = before;
    await data.remove();
  }
});
