// The real `tapeq serve` process: state survives a clean restart, SIGTERM drains (a waiting long
// poll is answered, the process exits 0 after syncing the log), and a second signal exits at once.

import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runTapeq, startTapeq, tempDataDir } from '../fixtures/process.js';

const json = { 'content-type': 'application/json' };

async function post(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'POST', headers: json, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

t.test('state-survives-a-clean-restart-and-ready-turns-200', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const first = await startTapeq(data.dir);
  const pushed = await post(`${first.url}/queues/mail/jobs`, { data: { to: 'a@example.com' }, priority: 3 });
  t.equal(pushed.status, 200);
  const id: string = pushed.body.id;
  t.equal(await first.kill('SIGTERM'), 0, 'exits 0 on SIGTERM');
  t.match(first.stderr(), /stopped cleanly/);

  const second = await startTapeq(data.dir);
  t.teardown(() => second.kill('SIGKILL'));
  const got = await (await fetch(`${second.url}/jobs/${id}`)).json();
  t.same(got.job.data, { to: 'a@example.com' }, 'the job came back from the log');
  t.equal(got.job.state, 'waiting');
  t.match(second.stderr(), /replayed 1 records|snapshot: snapshot-/);
});

t.test('sigterm-answers-a-waiting-long-poll-and-exits-0', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const tapeq = await startTapeq(data.dir);
  const poll = fetch(`${tapeq.url}/queues/empty/jobs?timeout=20000`).then((r) => r.json());
  await new Promise((r) => setTimeout(r, 200));
  const exited = tapeq.kill('SIGTERM');
  t.same(await poll, { ok: true, job: null, token: null }, 'the long poll is answered, not dropped');
  t.equal(await exited, 0);
});

/** A push-worker endpoint that holds the first call it gets until `answer()`; `called` resolves
 *  when that call arrives. Closed at the end of the test. */
async function holdingEndpoint(t: Test): Promise<{ url: string; called: Promise<void>; answer: () => void }> {
  let arrived!: () => void;
  const called = new Promise<void>((resolve) => (arrived = resolve));
  let answer = (): void => undefined;
  const endpoint: Server = createServer((req, res) => {
    req.resume();
    answer = () => res.end('done');
    arrived();
  });
  await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    endpoint.closeAllConnections();
    endpoint.close();
  });
  const address = endpoint.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}/job`, called, answer: () => answer() };
}

t.test('second-signal-exits-at-once-while-a-push-worker-call-holds-shutdown', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const endpoint = await holdingEndpoint(t);
  const tapeq = await startTapeq(data.dir);
  const registered = await post(`${tapeq.url}/workers`, { queue: 'slow', endpoint: { url: endpoint.url, method: 'POST', timeout: 30000 } });
  t.equal(registered.status, 200);
  await post(`${tapeq.url}/queues/slow/jobs`, { data: 1 });
  await endpoint.called;

  const started = Date.now();
  const exited = tapeq.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  t.equal(tapeq.child.exitCode, null, 'the first SIGTERM waits for the running call');
  tapeq.child.kill('SIGTERM');
  t.equal(await exited, 1, 'the second signal exits at once with code 1');
  t.ok(Date.now() - started < 10_000, 'long before the 30 s endpoint timeout');
  t.match(tapeq.stderr(), /again, exiting now/);
});

t.test('while-push-workers-drain-ready-is-503-and-pulls-get-no-job', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const endpoint = await holdingEndpoint(t);
  const tapeq = await startTapeq(data.dir);
  await post(`${tapeq.url}/workers`, { queue: 'slow', endpoint: { url: endpoint.url, method: 'POST', timeout: 30000 } });
  await post(`${tapeq.url}/queues/other/jobs`, { data: 'stays' });
  await post(`${tapeq.url}/queues/slow/jobs`, { data: 1 });
  await endpoint.called;

  const exited = tapeq.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const ready = await fetch(`${tapeq.url}/ready`);
  t.equal(ready.status, 503, 'the listener is still open and says not ready');
  t.same(await ready.json(), { ok: false, ready: false });
  t.same(await (await fetch(`${tapeq.url}/queues/other/jobs`)).json(), { ok: true, job: null, token: null }, 'no job is handed out');
  endpoint.answer();
  t.equal(await exited, 0, 'exits 0 once the call is answered');
});

t.test('a-port-in-use-is-one-line-not-a-stack-trace', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const taken: Server = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => taken.close());
  const address = taken.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const r = await runTapeq(['serve'], { DATA_DIR: data.dir, HOST: '127.0.0.1', HTTP_PORT: String(port) });
  t.equal(r.code, 1);
  t.match(r.stderr, `tapeq: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)`);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('serve-until-on-a-dir-without-a-log-is-one-line-not-a-stack-trace', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  const r = await runTapeq(['serve', '--until', '5'], { DATA_DIR: data.dir, HOST: '127.0.0.1', HTTP_PORT: '0' });
  t.equal(r.code, 1);
  t.match(r.stderr, /^tapeq: no log directory at /m);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('a-data-dir-on-a-read-only-file-system-is-one-line-not-a-stack-trace', async (t) => {
  const data = await tempDataDir();
  t.teardown(data.remove);
  // A read-only mount needs root; elsewhere there is no read-only path to point at.
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,ro', 'tmpfs', data.dir]).status === 0;
  if (!mounted) {
    t.pass('skipped: mounting a read-only tmpfs needs root');
    return;
  }
  t.teardown(() => spawnSync('umount', [data.dir]));
  const r = await runTapeq(['serve'], { DATA_DIR: join(data.dir, 'data'), HOST: '127.0.0.1', HTTP_PORT: '0' });
  t.equal(r.code, 1);
  t.match(r.stderr, `tapeq: cannot use ${join(data.dir, 'data')}: cannot be created`);
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});
