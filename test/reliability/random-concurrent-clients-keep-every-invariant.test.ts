// 20 seeded random clients (4 WebSocket sessions, 16 HTTP clients; see
// fixtures/reliability/random-clients.ts) hammer a real `tapeq serve` with every kind of command
// at once; then the broker is stopped with SIGTERM and the run is checked against the log:
//
//   load       no 5xx, no request or /ready poll failing outside a kill window, no ack with a
//              token the broker never issued succeeds, the broker never exits by itself and
//              stops cleanly (exit 0), nothing on stderr looks like an error
//   offline    `tapeq verify` passes; `tapeq replay --digest` and the replay summary are the same
//              from the newest snapshot + tail as from offset 0 (snapshots removed from a copy)
//   history    (restarted) every acknowledged push has its complete history with its `pushed`
//              record; every answered pull has its `pulled` record; no job is held by two lock
//              tokens at once; every ok ack has a `completed` record with its token, and the job is
//              still completed unless a later record removed it; no token is acked twice; no
//              incarnation of a job completes twice
//   counts     once timers are idle, per queue and state: /counts = /jobs/list (paged) = the
//              `tapeq replay` summary of the stopped log
//
// Fast (npm test): one 12 s pass, LOCK_MS=1500, SNAPSHOT_EVERY_RECORDS=400. TAPEQ_LONG=1: 60 s
// passes with the defaults, with AUTH_TOKENS, with LOG_SYNC=interval, and with three SIGKILLs +
// restarts (on LOG_SYNC=always, so no acknowledged push, pull or ack may be lost).
// TAPEQ_SEED=<n> (or SEED=<n>) replays every actor's choices; the interleaving stays free.
//
// Left out of the reviewer's script, as flaky by nature: 503 "replaying the log at startup"
// during a restart (the actors now wait for the restarted broker to be ready, so any 5xx is a
// finding); counts read while timers still move jobs (the counts are compared only once no job is
// active or delayed, which the script approximated with a fixed 5 s sleep).

import { cp, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { runTapeq, startTapeq, type TapeqProcess } from '../fixtures/process.js';
import { LONG, http, sleep, tempDir } from '../fixtures/reliability/common.js';
import { RandomClients, queueNames, type Ledger, type Target } from '../fixtures/reliability/random-clients.js';
import { mulberry32 } from '../fixtures/random.js';

interface Pass {
  name: string;
  loadMs: number;
  env: Record<string, string>;
  auth: string | null;
  kills: number;
}

const actorCount = 20;
const authToken = 'fuzz-token-0123456789';
const base = { LOCK_MS: '1500', SNAPSHOT_EVERY_RECORDS: LONG ? '2000' : '400' };
const passes: Pass[] = LONG
  ? [
      { name: 'default', loadMs: 60_000, env: base, auth: null, kills: 0 },
      { name: 'auth-tokens', loadMs: 60_000, env: { ...base, AUTH_TOKENS: authToken }, auth: authToken, kills: 0 },
      { name: 'log-sync-interval', loadMs: 60_000, env: { ...base, LOG_SYNC: 'interval' }, auth: null, kills: 0 },
      { name: 'kill-9', loadMs: 60_000, env: base, auth: null, kills: 3 },
    ]
  : [{ name: 'default', loadMs: 12_000, env: base, auth: null, kills: 0 }];

const seedText = process.env['TAPEQ_SEED'] ?? process.env['SEED'] ?? '';
const seed = seedText !== '' ? Number(seedText) >>> 0 : (Math.random() * 2 ** 32) >>> 0;

t.test('random concurrent clients keep every invariant', async (t) => {
  t.comment(`TAPEQ_SEED=${seed} (replay with TAPEQ_SEED=${seed}${LONG ? ' TAPEQ_LONG=1' : ''})`);
  for (const [index, pass] of passes.entries()) {
    await t.test(`pass ${pass.name}`, (t) => runPass(t, pass, (seed + index) >>> 0));
  }
});

async function runPass(t: Test, pass: Pass, passSeed: number): Promise<void> {
  const dataDir = await tempDir(t, `fuzz-${pass.name}`);
  const stderrs: (() => string)[] = [];
  const start = async (): Promise<TapeqProcess> => {
    const started = await startTapeq(dataDir, pass.env, { readyMs: 30_000 });
    t.teardown(() => started.kill('SIGKILL'));
    stderrs.push(started.stderr);
    return started;
  };
  let broker = await start();
  const target: Target = { url: broker.url, headers: pass.auth === null ? {} : { authorization: `Bearer ${pass.auth}` }, restarting: null, generation: 0 };
  const deadline = Date.now() + pass.loadMs;
  const clients = new RandomClients(target, passSeed, deadline);
  t.teardown(() => clients.stop());
  const killRng = mulberry32(passSeed ^ 0x9e3779b9);
  let kills = 0;
  const killer = async (): Promise<void> => {
    for (let k = 0; k < pass.kills; k++) {
      await sleep((pass.loadMs / (pass.kills + 1)) * (0.6 + killRng() * 0.8));
      if (Date.now() > deadline - 3_000) break;
      let release = (): void => undefined;
      target.restarting = new Promise((resolve) => (release = resolve));
      try {
        await broker.kill('SIGKILL');
        target.generation++;
        clients.forgetHeld();
        broker = await start();
        target.url = broker.url;
        kills++;
      } finally {
        target.restarting = null;
        release();
      }
    }
  };
  const load = await Promise.allSettled([clients.run(actorCount), killer()]);
  clients.stop();
  for (const outcome of load) if (outcome.status === 'rejected') throw outcome.reason;

  const { ledger } = clients;
  t.comment(
    `${pass.name}: pushed=${ledger.pushed.size} pulls=${ledger.pulls.length} acks=${ledger.acks.length} kills=${kills} ` +
      `statuses=${JSON.stringify(Object.fromEntries(ledger.statusCounts))}`,
  );
  if (pass.kills > 0) t.ok(kills >= 1, `kill -9 + restart happened mid-run (${kills} times)`);
  checkLoad(t, ledger, broker);
  t.equal(await broker.kill('SIGTERM'), 0, 'SIGTERM stops the broker cleanly (exit 0)');
  await checkStoppedDir(t, dataDir);

  broker = await start();
  let apiCounts: Record<string, unknown>;
  try {
    await waitIdle(t, broker.url, target.headers);
    await checkHistories(t, broker.url, target.headers, ledger);
    apiCounts = await checkCountsMatchLists(t, broker.url, target.headers);
  } finally {
    t.equal(await broker.kill('SIGTERM'), 0, 'the check-phase broker stops cleanly (exit 0)');
  }
  await checkReplaySummary(t, dataDir, apiCounts);
  const stderr = stderrs.map((text) => text()).join('');
  t.notMatch(stderr, /\n\s+at |error|fatal|uncaught/i, 'no error on any broker stderr');
}

/** A failed list shows its first few entries; the message says how many there were. */
function none(t: Test, what: string, found: unknown[], of?: number): void {
  t.same(found.slice(0, 5), [], `${what}: ${found.length}${of === undefined ? '' : ` of ${of}`}`);
}

function checkLoad(t: Test, ledger: Ledger, broker: TapeqProcess): void {
  // The run must have exercised the broker for the checks below to mean anything.
  t.ok(ledger.pushed.size >= 200, `pushes acknowledged: ${ledger.pushed.size}`);
  t.ok(ledger.pulls.length >= 50, `pulls answered with a job: ${ledger.pulls.length}`);
  t.ok(ledger.acks.some((a) => a.via === 'http') && ledger.acks.some((a) => a.via === 'ws'), 'acks succeeded over HTTP and WebSocket');
  none(t, '5xx answers', ledger.serverErrors);
  none(t, 'requests or /ready polls failing outside a kill window', ledger.unreachable);
  none(t, 'acks with a token never issued that succeeded', ledger.foreignAcks);
  t.same({ code: broker.child.exitCode, signal: broker.child.signalCode }, { code: null, signal: null }, 'the broker never exited by itself');
}

async function replayOf(dataDir: string): Promise<{ digest: string; summary: any }> {
  const digest = await runTapeq(['replay', '--dir', dataDir, '--digest']);
  const summary = await runTapeq(['replay', '--dir', dataDir]);
  if (digest.code !== 0 || summary.code !== 0) throw new Error(`tapeq replay failed: ${digest.stderr}${summary.stderr}`);
  return { digest: digest.stdout.trim(), summary: JSON.parse(summary.stdout) };
}

async function checkStoppedDir(t: Test, dataDir: string): Promise<void> {
  const verify = await runTapeq(['verify', '--dir', join(dataDir, 'log')]);
  t.equal(verify.code, 0, `tapeq verify passes: ${verify.stdout.trim().split('\n').at(-1)}${verify.stderr.trim()}`);
  const copy = await tempDir(t, 'fuzz-copy');
  await cp(dataDir, copy, { recursive: true });
  const fromSnapshot = await replayOf(copy);
  for (const entry of await readdir(copy)) if (entry !== 'log') await rm(join(copy, entry), { recursive: true, force: true });
  const fromZero = await replayOf(copy);
  t.match(fromSnapshot.summary.fromSnapshot, /snapshot-\d{20}\.snap$/, `replay loaded a snapshot (${fromSnapshot.summary.replayed} records of tail)`);
  t.equal(fromZero.summary.fromSnapshot, null, 'without snapshots, replay starts from offset 0');
  t.match(fromZero.digest, /^[0-9a-f]{64}$/, 'replay --digest prints a sha256');
  t.equal(fromSnapshot.digest, fromZero.digest, 'digest(snapshot + tail) = digest(replay from 0)');
  const { jobs, offset, queues } = fromZero.summary;
  t.same({ jobs: fromSnapshot.summary.jobs, offset: fromSnapshot.summary.offset, queues: fromSnapshot.summary.queues }, { jobs, offset, queues }, 'replay summary: snapshot + tail = from 0');
}

/** Waits until no job is active or delayed and the counts held still for one poll: no timer is due. */
async function waitIdle(t: Test, url: string, headers: Record<string, string>): Promise<void> {
  let last = '';
  const started = Date.now();
  while (Date.now() - started < 30_000) {
    const res = await http(url, 'GET', '/queues', { headers });
    const queues = (res.json?.queues ?? []) as { counts: Record<string, number> }[];
    const text = JSON.stringify(res.json?.queues);
    if (res.status === 200 && text === last && queues.every((q) => q.counts['active'] === 0 && q.counts['delayed'] === 0)) return;
    last = text;
    await sleep(500);
  }
  t.fail(`jobs still active or delayed after 30 s: ${last}`);
}

interface HistoryRecord {
  type: string;
  offset: number;
  jobId?: string;
  token?: string;
  job?: { id: string };
  jobs?: { jobId: string }[];
}

async function historiesOf(url: string, headers: Record<string, string>, ids: string[]): Promise<Map<string, { status: number; complete: boolean; records: HistoryRecord[] }>> {
  const out = new Map<string, { status: number; complete: boolean; records: HistoryRecord[] }>();
  const queue = [...ids];
  const fetcher = async (): Promise<void> => {
    for (let id = queue.pop(); id !== undefined; id = queue.pop()) {
      const res = await http(url, 'GET', `/jobs/${encodeURIComponent(id)}/history`, { headers });
      out.set(id, { status: res.status, complete: res.json?.complete === true, records: (res.json?.history ?? []) as HistoryRecord[] });
    }
  };
  await Promise.all(Array.from({ length: 8 }, fetcher));
  return out;
}

/** Whether a record ends the hold of the lock on `id` (the job left `active`). */
function releasesLock(r: HistoryRecord, id: string): boolean {
  if (r.type === 'removed') return (r.jobs ?? []).some((j) => j.jobId === id);
  return ['stalled', 'released', 'failed', 'completed', 'retried'].includes(r.type) && r.jobId === id;
}

async function checkHistories(t: Test, url: string, headers: Record<string, string>, ledger: Ledger): Promise<void> {
  const pulledIds = new Set(ledger.pulls.map((p) => p.id));
  const ids = new Set([...ledger.pushed, ...pulledIds, ...ledger.acks.map((a) => a.id)]);
  const histories = await historiesOf(url, headers, [...ids]);
  const recordsOf = (id: string): HistoryRecord[] => histories.get(id)?.records ?? [];

  const lost = [...ledger.pushed].filter((id) => {
    const h = histories.get(id);
    return h?.status !== 200 || !h.complete || !h.records.some((r) => r.type === 'pushed' && r.job?.id === id);
  });
  none(t, 'acknowledged pushes without their complete history and pushed record', lost, ledger.pushed.size);

  const doubleHolds: string[] = [];
  const doubleCompletes: string[] = [];
  for (const id of pulledIds) {
    let holder: string | null = null;
    let completes = 0;
    for (const r of recordsOf(id)) {
      if (r.type === 'pushed') [holder, completes] = [null, 0];
      if (r.type === 'completed' && r.jobId === id && ++completes > 1) doubleCompletes.push(`${id}@${r.offset}`);
      if (r.type === 'pulled' && r.jobId === id) {
        if (holder !== null) doubleHolds.push(`${id}@${r.offset}: ${holder} then ${r.token}`);
        holder = r.token ?? '?';
      } else if (releasesLock(r, id)) holder = null;
    }
  }
  none(t, 'jobs pulled while another token held them', doubleHolds, pulledIds.size);
  none(t, 'job incarnations completed twice', doubleCompletes, pulledIds.size);
  const unrecorded = ledger.pulls.filter((p) => !recordsOf(p.id).some((r) => r.type === 'pulled' && r.token === p.token));
  none(t, 'answered pulls without their pulled record', unrecorded, ledger.pulls.length);

  const tokens = new Set<string>();
  const ackedTwice: string[] = [];
  const withoutRecord: string[] = [];
  const undone: string[] = [];
  for (const ack of ledger.acks) {
    if (tokens.has(ack.token)) ackedTwice.push(`${ack.id} ${ack.token}`);
    tokens.add(ack.token);
    const records = recordsOf(ack.id);
    const completed = records.find((r) => r.type === 'completed' && r.jobId === ack.id && r.token === ack.token);
    if (completed === undefined) {
      withoutRecord.push(`${ack.id} ${ack.token}: ${records.map((r) => r.type).join(',')}`);
      continue;
    }
    const later = records.filter((r) => r.offset > completed.offset);
    if (later.some((r) => r.type === 'pushed' || r.type === 'removed' || r.type === 'queueObliterated')) continue;
    const job = await http(url, 'GET', `/jobs/${encodeURIComponent(ack.id)}`, { headers });
    if (job.json?.job?.state !== 'completed') undone.push(`${ack.id}: ${job.status} ${String(job.json?.job?.state)}`);
  }
  none(t, 'ok acks without a completed record carrying their token', withoutRecord, ledger.acks.length);
  none(t, 'acked jobs no longer completed with no later record removing them', undone, ledger.acks.length);
  none(t, 'tokens acked ok twice', ackedTwice, ledger.acks.length);
}

const listStates = ['waiting', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'paused'];

async function countsOf(url: string, headers: Record<string, string>, queue: string): Promise<Record<string, number>> {
  return (await http(url, 'GET', `/queues/${queue}/counts`, { headers })).json?.counts;
}

/** Per queue: /counts before and after = every state's paged /jobs/list. Returns the counts. */
async function checkCountsMatchLists(t: Test, url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const listed = (await http(url, 'GET', '/queues', { headers })).json?.queues as { name: string }[];
  const names = [...new Set([...listed.map((q) => q.name), ...queueNames])].sort();
  const mismatches: string[] = [];
  const api: Record<string, unknown> = {};
  for (const queue of names) {
    const before = await countsOf(url, headers, queue);
    for (const state of listStates) {
      let n = 0;
      for (let start = 0; start < 1_000_000; start += 100) {
        const res = await http(url, 'GET', `/queues/${queue}/jobs/list?statuses=${state}&start=${start}&length=100`, { headers });
        const jobs = (res.json?.jobs ?? []) as { id: string; state: string }[];
        if (res.status !== 200) mismatches.push(`${queue} list ${state}: ${res.status} ${res.text.slice(0, 200)}`);
        for (const job of jobs) if (job.state !== state && !(state === 'paused' && job.state === 'waiting')) mismatches.push(`${queue}: ${job.id} listed as ${state} is ${job.state}`);
        n += jobs.length;
        if (jobs.length < 100) break;
      }
      if (n !== before[state]) mismatches.push(`${queue} ${state}: counts ${before[state]}, listed ${n}`);
    }
    const after = await countsOf(url, headers, queue);
    if (JSON.stringify(after) !== JSON.stringify(before)) mismatches.push(`${queue}: counts moved while idle ${JSON.stringify(before)} → ${JSON.stringify(after)}`);
    api[queue] = after;
  }
  none(t, `counts = listed jobs in ${names.length} queues`, mismatches);
  return api;
}

async function checkReplaySummary(t: Test, dataDir: string, api: Record<string, unknown>): Promise<void> {
  const { summary } = await replayOf(dataDir);
  const nonEmpty = (counts: unknown): boolean => counts !== undefined && Object.values(counts as Record<string, number>).some((n) => n !== 0);
  const fromApi = Object.fromEntries(Object.entries(api).filter(([, c]) => nonEmpty(c)));
  const fromLog = Object.fromEntries(
    Object.entries(summary.queues as Record<string, { counts: unknown }>)
      .map(([name, q]) => [name, q.counts] as const)
      .filter(([, c]) => nonEmpty(c)),
  );
  t.ok(Object.keys(fromApi).length > 0, 'some queue still holds jobs');
  t.same(fromLog, fromApi, 'tapeq replay summary counts = the last /counts of every queue');
}
