// SIGKILL mid-call: the job is not lost. After a restart its lock expires, the broker marks it
// stalled and requeues it, the dispatcher calls the endpoint again, and it completes exactly once.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { Log } from '../../src/log/log.js';
import { plainNode } from '../fixtures/process.js';
import { sleep, startEndpoint, text, until } from './endpoint.js';

const childScript = fileURLToPath(new URL('./fixtures/stack-child.js', import.meta.url));
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

async function startChild(dir: string): Promise<{ child: ChildProcess; api: string }> {
  const child = spawn(...plainNode([childScript, dir]), { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.on('exit', () => children.delete(child));
  const api = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`child not ready after 10 s: ${out}`)), 10_000);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      out += chunk;
      const m = /READY (\S+)/.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`child exited early (${code}): ${out}`)));
  });
  return { child, api };
}

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

t.test('sigkill-mid-call-job-stalls-after-restart-and-completes-exactly-once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tapeq-worker-crash-'));
  let answer = false;
  const ep = await startEndpoint((c, res) => {
    // The first call is held until the process that made it is dead; later calls answer.
    if (answer) text(res, 200, `done ${c.body.job.id}`);
  });
  t.teardown(async () => {
    for (const child of children) child.kill('SIGKILL');
    await ep.close();
    await rm(dir, { recursive: true, force: true });
  });

  const first = await startChild(dir);
  // Lock = timeout (1 s) + the dispatcher's margin, so the restart finds it expired soon; 1 s and
  // not less, so that the call after the restart is answered within it on a loaded machine (a
  // timed-out call would add a failed attempt to the history checked below).
  const reg = await post(`${first.api}/workers`, { queue: 'crash', endpoint: { url: ep.url, method: 'POST', timeout: 1_000 } });
  t.equal(reg.status, 200);
  const pushed = await post(`${first.api}/queues/crash/jobs`, { data: { n: 1 } });
  const id = pushed.json.id as string;
  await until('first call arrived', () => ep.calls.length === 1);
  first.child.kill('SIGKILL');
  await new Promise((resolve) => first.child.once('exit', resolve));
  answer = true;

  const second = await startChild(dir);
  await until('called again after restart', () => ep.calls.length === 2, 10_000);
  t.equal(ep.calls[1]?.body.job.id, id, 'the same job');
  t.not(ep.calls[1]?.body.token, ep.calls[0]?.body.token, 'with a new lock token');
  const deadline = Date.now() + 10_000;
  let state = '';
  while (state !== 'completed' && Date.now() < deadline) {
    const res = await fetch(`${second.api}/jobs/${id}/state`);
    state = ((await res.json()) as { state?: string }).state ?? '';
    if (state !== 'completed') await sleep(20);
  }
  t.equal(state, 'completed', 'the job completed after the restart');
  second.child.kill('SIGTERM');
  await new Promise((resolve) => second.child.once('exit', resolve));

  const log = await Log.open({ dir: join(dir, 'log'), readOnly: true, logger: () => undefined });
  const kinds: string[] = [];
  for await (const r of log.read(log.firstOffset, log.nextOffset)) {
    if ('jobId' in r.body && r.body.jobId === id) kinds.push(r.body.type);
  }
  await log.close();
  t.equal(kinds.filter((k) => k === 'completed').length, 1, 'exactly one completion in the log');
  t.equal(kinds.filter((k) => k === 'stalled').length, 1, 'one stall');
  t.strictSame(kinds, ['pulled', 'stalled', 'pulled', 'completed'], 'the job history in order');
  t.equal(ep.calls.length, 2, 'the endpoint was called twice in all');
});
