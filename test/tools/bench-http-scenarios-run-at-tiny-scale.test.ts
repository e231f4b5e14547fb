import t from 'tap';
import { benchHttpBulk, benchHttpCycle, benchHttpPush, benchHttpPushInterval } from '../../tools/bench-http.js';
import { runLoad, startRef } from '../../tools/bench-proc.js';
import { checkReport, tinyRun } from './bench-fixture.js';

/** Each scenario starts real server processes; the normal run covers the rest, TAPEQ_LONG=1 all. */
const longOnly = { skip: process.env.TAPEQ_LONG === '1' ? false : 'runs with TAPEQ_LONG=1 (npm run test:reliability)' };

t.setTimeout(300_000);
const run = tinyRun();

t.test('http-push-beside-bare-fastify-and-raw-fs', async (t) => {
  const report = await benchHttpPush(run);
  checkReport(t, report, ['bare fastify', 'raw fs', 'raw fs', 'tapeq']);
  const tapeq = report.rows[3];
  t.equal(tapeq?.errors, 0, 'every push answered 2xx');
  t.equal(report.rows[0]?.unit, tapeq?.unit, 'bare fastify and tapeq both count jobs/s, so the chart scales them together');
  t.ok(tapeq?.target !== undefined, 'the 0.75× target is judged');
  t.ok((tapeq?.serverCores ?? Number.NaN) >= 0, 'server CPU read from /proc');
  t.notOk(Number.isInteger(tapeq?.p50Ms), `p50 ${tapeq?.p50Ms} ms: per-response times, not whole ms`);
});

t.test('http-push-interval-plain-and-durable', longOnly, async (t) => {
  const report = await benchHttpPushInterval(run);
  checkReport(t, report, ['bare fastify', 'tapeq', 'tapeq']);
  t.same(report.rows.map((r) => r.errors), [0, 0, 0]);
});

t.test('http-bulk-counts-jobs-not-requests', longOnly, async (t) => {
  const report = await benchHttpBulk(run);
  checkReport(t, report, ['bare fastify', 'tapeq']);
  t.same(report.rows.map((r) => r.errors), [0, 0]);
});

t.test('http-cycle-completes-push-pull-ack', async (t) => {
  const report = await benchHttpCycle(run);
  checkReport(t, report, ['in-memory fastify queue', 'tapeq']);
  t.same(report.rows.map((r) => r.errors), [0, 0], 'every pull found a job and every ack succeeded');
});

t.test('error-answers-are-not-latency-samples', async (t) => {
  const server = await startRef('fastify');
  try {
    // Every push goes to a path the server does not have: all answers are 404.
    const result = await runLoad({ ...run.spec('push'), url: `${server.url}/nowhere` });
    t.ok(result.errors > 0, `${result.errors} errors`);
    t.equal(result.ops, 0);
    t.ok(Number.isNaN(result.p50Ms) && Number.isNaN(result.p99Ms), 'no 2xx answer, no latency');
  } finally {
    await server.stop();
  }
});

t.test('a-cycle-whose-pull-fails-counts-one-error', async (t) => {
  // Bare fastify has no pull route: each cycle's pull answers 404 and so does its ack to
  // /jobs/none/ack; that is one failed cycle, one error.
  const server = await startRef('fastify');
  try {
    const result = await runLoad({ ...run.spec('cycle'), url: server.url });
    const notFound = Number(/(\d+)× HTTP 404/.exec(result.errorDetail)?.[1] ?? Number.NaN);
    t.equal(result.ops, 0);
    t.ok(notFound > 10, `${notFound} answers 404`);
    t.ok(Math.abs(result.errors - notFound / 2) <= run.opts.connections, `${result.errors} errors: one per cycle, not ${notFound}`);
  } finally {
    await server.stop();
  }
});
