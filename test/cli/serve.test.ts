// `tapeq serve` as an operator starts it: what it refuses at startup (leaving no data directory it
// made), the data directory lock that keeps a second server off a log another one is writing, and
// the one port it listens on from the first moment.

import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { basename, join } from 'node:path';
import t from 'tap';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { startBroker } from '../fixtures/broker.js';
import { cliPath, freePort, plainNode, runTapeq, startTapeq, tempDataDir } from '../fixtures/process.js';
import { segmentFiles, writeLog } from '../log/helpers.js';

/** Runs `tapeq serve` until it exits or `ms` pass (then SIGKILL: code null), so a server that
 *  should have refused to start cannot hang the test. */
async function serveFor(env: Record<string, string>, ms: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(...plainNode([cliPath, 'serve']), {
    env: { ...process.env, HOST: '127.0.0.1', HTTP_PORT: String(await freePort()), ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stderr };
}

async function pushOk(url: string): Promise<boolean> {
  const r = await fetch(`${url}/queues/q/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":1}' });
  return r.status === 200;
}

t.test('a-second-server-on-the-same-data-dir-refuses-to-start-naming-the-holder', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const first = await startTapeq(dir);
  t.teardown(() => first.kill());
  const second = await serveFor({ DATA_DIR: dir }, 10_000);
  t.equal(second.code, 1, 'the second server exits 1 instead of writing the same log');
  t.match(second.stderr, new RegExp(`tapeq: data directory ${dir} is in use by process ${first.child.pid} `));
  t.notMatch(second.stderr, /\n\s+at /, 'one line, no stack trace');
  t.ok(await pushOk(first.url), 'the first server still acknowledges');
  t.equal(await first.kill('SIGTERM'), 0);
  await t.rejects(readFile(join(dir, 'LOCK')), { code: 'ENOENT' }, 'a clean stop releases the lock');
});

t.test('a-lock-left-by-a-killed-server-is-taken-over-on-the-next-start', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const first = await startTapeq(dir);
  const pid = first.child.pid;
  await first.kill('SIGKILL');
  t.ok(JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')).pid === pid, 'SIGKILL left the lock behind');
  const second = await startTapeq(dir);
  t.teardown(() => second.kill());
  t.match(second.stderr(), `tapeq: taking over the lock of process ${pid}, which is no longer running`);
  t.ok(await pushOk(second.url));
});

t.test('a-read-only-server-runs-beside-the-writer', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const writer = await startTapeq(dir);
  t.teardown(() => writer.kill());
  t.ok(await pushOk(writer.url));
  const reader = await startTapeq(dir, {}, { args: ['--until', '1'] });
  t.teardown(() => reader.kill());
  const job = (await (await fetch(`${reader.url}/queues/q/counts`)).json()) as { counts?: { waiting?: number } };
  t.equal(job.counts?.waiting, 1, 'serve --until takes no lock: it never writes');
});

t.test('a-read-only-servers-history-of-jobs-whose-segments-the-writer-retired-is-empty-and-incomplete', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const writer = await startBroker({ dir: join(dir, 'log'), segmentBytes: 4096 });
  t.teardown(() => writer.cleanup());
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) {
    const r = await writer.broker.push('q', { data: { i, pad: 'x'.repeat(200) } }, { actor: null });
    if (r.ok) ids.push(r.id);
  }
  const segments = writer.log.segments();
  t.ok(segments.length >= 3, `${segments.length} segments`);
  const [first, second] = [segments[0], segments[1]];
  if (first === undefined || second === undefined) throw new Error('too few segments');
  const inFirst = ids[0] as string;
  const inSecond = ids[second.baseOffset] as string;
  const reader = await startTapeq(dir, {}, { args: ['--until', String(writer.log.durableOffset)] });
  t.teardown(() => reader.kill());
  const history = async (id: string, query = ''): Promise<{ status: number; complete: string | null; body: string }> => {
    const r = await fetch(`${reader.url}/jobs/${id}/history${query}`);
    return { status: r.status, complete: r.headers.get('tapeq-history-complete'), body: await r.text() };
  };
  // The writer's retention removes every sealed segment while the read-only server runs, before
  // any lookup (the first one indexes every segment the server listed at its start).
  const retired = await writer.log.dropSegmentsBefore(writer.log.segments().at(-1)?.baseOffset ?? 0, Number.POSITIVE_INFINITY);
  t.ok(retired.includes(first.file) && retired.includes(second.file), 'the segments of both jobs are gone');
  for (const id of [inFirst, inSecond]) {
    const json = await history(id);
    t.same({ status: json.status, complete: json.complete, body: JSON.parse(json.body) }, { status: 200, complete: 'false', body: { ok: true, history: [], complete: false } }, `${id}: an empty, incomplete history`);
    t.same(await history(id, '?format=ndjson'), { status: 200, complete: 'false', body: '' }, `${id}: the NDJSON form too`);
  }
  t.equal((await fetch(`${reader.url}/jobs/${inSecond}`)).status, 200, 'the job itself is in the state at the point');
});

t.test('a-misspelt-variable-is-named-on-stderr-with-the-one-meant', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  // LOG_SYNC=bad makes it refuse at once; the warning comes before the configuration's problems.
  const r = await serveFor({ DATA_DIR: dir, AUTH_TOKEN: 'secret', LOG_SYNC: 'bad' }, 10_000);
  t.equal(r.code, 1);
  t.match(r.stderr, 'tapeq: WARNING AUTH_TOKEN is not a tapeq variable and is ignored: did you mean AUTH_TOKENS?');
  t.match(r.stderr, 'LOG_SYNC must be');
});

t.test('a-start-refused-for-a-damaged-record-says-what-can-be-done-after-the-refusal', async (t) => {
  // It printed the refusal and exited 1, with no word of --repair or recover.
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  await writeLog(join(dir, 'log'), 300, { segmentBytes: 4096 });
  const file = (await segmentFiles(join(dir, 'log')))[2] as string;
  const victim = join(dir, 'log', file);
  const buf = await readFile(victim);
  let position = segmentHeaderBytes;
  for (let i = 0; i < 7; i++) position += 8 + buf.readUInt32LE(position);
  buf[position + 20] = (buf[position + 20] as number) ^ 0x01;
  await writeFile(victim, buf);
  const bad = Number(file.slice(0, 20)) + 7;
  const r = await serveFor({ DATA_DIR: dir }, 10_000);
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  const refusal = lines.findIndex((l) => l.startsWith('tapeq: corrupt record'));
  t.equal(lines[refusal], `tapeq: corrupt record in ${victim} at byte ${position} (record offset ${bad}): checksum mismatch`, 'the refusal as before');
  t.equal(lines.length, refusal + 2, 'and one line more, the last');
  const next = lines[refusal + 1] ?? '';
  t.match(next, `tapeq: to go on: restore ${file} from a backup if one holds it; else copy the data directory first`);
  t.match(next, `\`tapeq serve --repair\` (cuts the log before offset ${bad}: the rest of that segment and every later one move to log/quarantine-<ms>/`);
  t.match(next, `\`tapeq recover --until ${bad} --out <new dir>\``);
  const out = join(dir, '..', `${basename(dir)}-recovered`);
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const recovered = await runTapeq(['recover', '--until', String(bad), '--out', out], { DATA_DIR: dir });
  t.equal(recovered.code, 0, `the recover it offers runs: ${recovered.stderr}`);
  t.equal(JSON.parse(recovered.stdout).until, bad);
});

t.test('what-the-log-says-at-start-is-named-as-every-server-line-is', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const first = await startTapeq(dir);
  t.ok(await pushOk(first.url));
  t.equal(await first.kill('SIGTERM'), 0, 'the first server stops cleanly');
  // A torn tail for the next start to cut and report.
  const segment = (await readdir(join(dir, 'log'))).find((name) => name.endsWith('.log')) as string;
  await writeFile(join(dir, 'log', segment), Buffer.from([40, 0, 0, 0, 1, 2, 3, 4, 9, 9]), { flag: 'a' });
  const second = await startTapeq(dir);
  t.teardown(() => second.kill());
  t.match(second.stderr(), `tapeq: log: cut torn tail of ${segment}`);
  const lines = second.stderr().split('\n').filter((line) => line !== '');
  t.same(lines.filter((line) => !line.startsWith('tapeq: ')), [], 'every line names tapeq');
});

/** Starts `tapeq serve` on `dir`, sends SIGTERM once its stderr shows `cue`, and waits for it to
 *  exit (SIGKILL after 30 s): its exit, all of its stderr, and the ms from the signal to the exit. */
async function sigtermOnCue(dir: string, cue: string): Promise<{ code: number | null; signal: string | null; stderr: string; exitMs: number }> {
  const child = spawn(...plainNode([cliPath, 'serve']), {
    env: { ...process.env, HOST: '127.0.0.1', HTTP_PORT: String(await freePort()), DATA_DIR: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      if (stderr.includes(cue)) resolve();
    });
  });
  const signalled = performance.now();
  child.kill('SIGTERM');
  const { code, signal } = await exited;
  clearTimeout(killer);
  return { code, signal, stderr, exitMs: performance.now() - signalled };
}

t.test('sigterm-while-waiting-on-a-foreign-lock-stops-the-start-at-once-leaving-nothing-behind', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  // A fresh lock of a server on another host holds the start for dataDirLockStaleMs (10 s): the
  // signal lands mid-startup, with LOCK's temp file written. Without a handler, SIGTERM killed the
  // process there and left LOCK.tmp-* in the data directory for good; with one that only waited
  // for the start, the server sat out the 10 s, took the lock over and started, only to drain.
  const foreign = `${JSON.stringify({ pid: 1, startTicks: null, pidNs: null, host: 'another-host.invalid', token: 't' })}\n`;
  await writeFile(join(dir, 'LOCK'), foreign);
  const { code, signal, stderr, exitMs } = await sigtermOnCue(dir, 'waiting up to');
  t.same({ code, signal }, { code: 0, signal: null }, 'exits 0, not killed by the signal');
  t.ok(exitMs < 8_000, `gone ${Math.round(exitMs)} ms after the signal, before the 10 s wait would have ended`);
  t.match(stderr, 'tapeq: SIGTERM received while starting: stopping the start');
  t.match(stderr, 'tapeq: stopped before it started');
  t.notMatch(stderr, 'taking over the lock', 'the foreign lock was not judged');
  t.same(await readdir(dir).then((names) => names.filter((n) => n.startsWith('LOCK'))), ['LOCK'], 'no LOCK.tmp-* left');
  t.equal(await readFile(join(dir, 'LOCK'), 'utf8'), foreign, "the other host's LOCK is left as it was");
});

t.test('sigterm-before-the-state-is-loaded-stops-the-start-without-listening', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const first = await startTapeq(dir);
  t.ok(await pushOk(first.url));
  t.equal(await first.kill('SIGTERM'), 0);
  // The signal as soon as the start names its port, before the log is open: the start goes on
  // to its next check, once the state is loaded, and stops there.
  const { code, signal, stderr } = await sigtermOnCue(dir, 'tapeq: starting on');
  t.same({ code, signal }, { code: 0, signal: null }, 'exits 0');
  t.match(stderr, 'tapeq: SIGTERM received while starting');
  t.match(stderr, 'tapeq: stopped before it started');
  t.notMatch(stderr, 'tapeq: listening on', 'a start signalled before its state was loaded never listens');
  t.same(await readdir(dir).then((names) => names.filter((n) => n.startsWith('LOCK'))), [], 'the lock is released');
  const again = await startTapeq(dir);
  t.teardown(() => again.kill());
  t.ok(await pushOk(again.url), 'the data directory starts again');
});

t.test('a-start-refused-for-its-port-leaves-no-new-data-dir-behind', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const address = taken.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const r = await serveFor({ DATA_DIR: join(dir, 'new', 'data'), HTTP_PORT: String(port) }, 10_000);
  t.equal(r.code, 1);
  t.match(r.stderr, `tapeq: cannot listen on 127.0.0.1:${port}: address already in use (EADDRINUSE)`);
  t.same(await readdir(dir), [], 'the port is held before DATA_DIR (nor its parent) is made');
});

t.test('a-start-that-fails-on-a-full-disk-removes-the-data-dir-it-made-and-no-other', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  // A full file system needs a mount, so root; elsewhere there is no full disk to point at.
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir]).status !== 0) {
    t.pass('skipped: mounting a tmpfs needs root');
    return;
  }
  t.teardown(() => spawnSync('umount', [dir]));
  // Directories take no blocks on a tmpfs: DATA_DIR is made, then the lock's first write fails.
  await writeFile(join(dir, 'filler'), Buffer.alloc(64 * 1024));
  await mkdir(join(dir, 'existing'));
  for (const dataDir of [join(dir, 'new', 'data'), join(dir, 'existing')]) {
    const r = await serveFor({ DATA_DIR: dataDir }, 10_000);
    t.equal(r.code, 1, dataDir);
    t.match(r.stderr, `tapeq: data directory ${dataDir}: its lock ${join(dataDir, 'LOCK')} cannot be written (ENOSPC)`);
    t.notMatch(r.stderr, /\n\s+at /, 'one line, no stack trace');
  }
  t.same((await readdir(dir)).sort(), ['existing', 'filler'], 'the new data dir and its parent are gone');
  t.same(await readdir(join(dir, 'existing')), [], 'the one that existed stays, and no LOCK temp file is left in it');
});

t.test('with-port-0-the-server-takes-over-the-port-its-startup-probe-was-given', async (t) => {
  const { dir, remove } = await tempDataDir();
  t.teardown(remove);
  // A fresh lock of a server on another host holds the start, with the probe listening, until
  // the test removes it.
  await writeFile(join(dir, 'LOCK'), `${JSON.stringify({ pid: 1, startTicks: null, pidNs: null, host: 'another-host.invalid', token: 't' })}\n`);
  const child = spawn(...plainNode([cliPath, 'serve']), {
    env: { ...process.env, HOST: '127.0.0.1', HTTP_PORT: '0', DATA_DIR: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const waiters: Array<() => void> = [];
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
      for (const wake of waiters.splice(0)) wake();
    }),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  // A failed assertion must not leave the server running.
  t.teardown(() => {
    clearTimeout(killer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
    for (const wake of waiters.splice(0)) wake();
  });
  const line = async (pattern: RegExp): Promise<RegExpMatchArray> => {
    for (;;) {
      const found = stderr.match(pattern);
      if (found !== null) return found;
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`no line ${pattern} before tapeq exited (${child.exitCode ?? child.signalCode}):\n${stderr}`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
  };
  const probePort = Number((await line(/tapeq: starting on http:\/\/127\.0\.0\.1:(\d+):/))[1]);
  await line(/waiting up to/);
  t.not(probePort, 0, 'the probe says the port it was given');
  t.equal((await fetch(`http://127.0.0.1:${probePort}/ready`)).status, 503, 'the probe answers on it while starting');
  await rm(join(dir, 'LOCK'));
  const serverPort = Number((await line(/tapeq: listening on http:\/\/127\.0\.0\.1:(\d+) /))[1]);
  t.equal(serverPort, probePort, 'the server listens where the probe was');
  t.equal((await fetch(`http://127.0.0.1:${probePort}/ready`)).status, 200, 'and a client of the probe finds it ready there');
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
