// SPEC 8 "no endpoint outside the exempt list answers without a token when AUTH_TOKENS is set, on
// every transport (HTTP, WS upgrade, WS commands, SSE)", against the real `tapeq serve` with
// AUTH_TOKENS and METRICS_AUTH=true.
//
//   - every (method, path) the server documents in /openapi.json, minus seed 004's exempt list,
//     refuses each bad Authorization: none, empty, "Bearer" alone, wrong token, token in another
//     case, token without "Bearer", other schemes, a prefix/extension of a real token, two tokens;
//     every refusal is 401 {"ok":false,"error":"Unauthorized"} and nothing is appended;
//   - the exempt routes (GET /health /healthz /live /ready /heapstats, POST /gc, OPTIONS *)
//     answer without a token;
//   - the WebSocket upgrade with a bad header is refused with 401 (both paths); a header-less
//     socket gets "Unauthorized" for every command and no events until Auth succeeds, and Auth
//     with each bad token answers "Invalid token";
//   - both SSE paths refuse every bad header;
//   - a job lock token authorizes progress and logs of its own job while it is active with that
//     token, and nothing else (another job, other routes, after the ack).

import t from 'tap';
import { startTapeq, type TapeqProcess } from '../fixtures/process.js';
import { http, tempDir } from '../fixtures/reliability/common.js';
import { WsClient } from '../fixtures/reliability/ws-client.js';

const tokens = ['tok-Alpha-1', 'tok-Beta-2'];
const good = { authorization: `Bearer ${tokens[0]}` };
const unauthorized = { ok: false, error: 'Unauthorized' };

/** Authorization header values that must never grant access (undefined = no header). */
const badHeaders: Array<string | undefined> = [
  undefined,
  '',
  'Bearer',
  'Bearer ',
  'Bearer wrong-token',
  `Bearer ${tokens[0]?.toUpperCase()}`,
  `Bearer ${tokens[0]?.toLowerCase()}`,
  tokens[0],
  `Basic ${tokens[0]}`,
  `Token ${tokens[0]}`,
  `Bearer ${tokens[0]?.slice(0, -1)}`,
  `Bearer ${tokens[0]}x`,
  `Bearer ${tokens[0]},${tokens[1]}`,
  `Bearer ${tokens[0]} ${tokens[1]}`,
  `Bearer\t${tokens[0]}`,
];

const exempt = new Set(['GET /health', 'GET /healthz', 'GET /live', 'GET /ready', 'POST /gc', 'GET /heapstats']);

function describe(header: string | undefined): string {
  return header === undefined ? 'no header' : JSON.stringify(header);
}

async function totals(url: string): Promise<string> {
  const stats = (await http(url, 'GET', '/stats', { headers: good })).json.stats;
  const queues = (await http(url, 'GET', '/queues', { headers: good })).json;
  const workers = (await http(url, 'GET', '/workers', { headers: good })).json;
  return JSON.stringify({ pushed: stats.totalPushed, pulled: stats.totalPulled, done: stats.totalCompleted, failed: stats.totalFailed, queues, workers });
}

t.test('with AUTH_TOKENS set, nothing outside the exempt list answers without a valid token', async (t) => {
  const dataDir = await tempDir(t, 'auth');
  const broker: TapeqProcess = await startTapeq(dataDir, { AUTH_TOKENS: tokens.join(','), METRICS_AUTH: 'true' });
  t.teardown(() => broker.kill('SIGKILL'));
  const { url } = broker;
  const seeded = await http(url, 'POST', '/queues/authq/jobs', { headers: good, body: { data: { n: 1 } } });
  const jobId = seeded.json.id as string;

  const spec = await http(url, 'GET', '/openapi.json', { headers: good });
  t.equal(spec.status, 200, 'the route list comes from /openapi.json');
  const routes: Array<{ method: string; path: string }> = [];
  for (const [path, ops] of Object.entries(spec.json.paths as Record<string, Record<string, unknown>>)) {
    for (const method of Object.keys(ops)) routes.push({ method: method.toUpperCase(), path });
  }
  const docs = ['/openapi.json', '/docs'];
  const before = await totals(url);
  let refusals = 0;
  let checkedRoutes = 0;
  const leaks: string[] = [];
  for (const { method, path } of routes) {
    if (exempt.has(`${method} ${path}`)) continue;
    checkedRoutes++;
    const concrete = path.replace('{queue}', 'authq').replace('{id}', encodeURIComponent(jobId));
    const body = method === 'GET' || method === 'DELETE' ? undefined : {};
    for (const header of badHeaders) {
      const headers: Record<string, string> = header === undefined ? {} : { authorization: header };
      const res = await http(url, method, concrete, { headers, ...(body !== undefined ? { body } : {}), timeoutMs: 5_000 }).catch((e: Error) => ({ status: 0, json: e.message, text: e.message }));
      if (res.status === 401 && JSON.stringify(res.json) === JSON.stringify(unauthorized)) refusals++;
      else leaks.push(`${method} ${concrete} with ${describe(header)} → ${res.status} ${String(res.text).slice(0, 80)}`);
    }
  }
  t.same(leaks, [], `${checkedRoutes} documented routes × ${badHeaders.length} bad headers: all 401 with the envelope`);
  t.equal(await totals(url), before, 'nothing was appended by refused requests');

  for (const path of docs) {
    const res = await http(url, 'GET', path);
    t.equal(res.status, 401, `API docs ${path} refuse without a token`);
  }
  for (const route of exempt) {
    const [method, path] = route.split(' ') as [string, string];
    const res = await http(url, method, path);
    t.not(res.status, 401, `exempt ${route} answers without a token (${res.status})`);
  }
  const preflight = await http(url, 'OPTIONS', '/queues/authq/jobs', { headers: { origin: 'http://x.test', 'access-control-request-method': 'POST' } });
  t.equal(preflight.status, 204, 'OPTIONS preflight answers 204 without a token');

  // SSE, both paths.
  const sseLeaks: string[] = [];
  for (const path of ['/events', '/events/queues/authq']) {
    for (const header of badHeaders) {
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), 3_000);
      const res = await fetch(url + path, { headers: header === undefined ? {} : { authorization: header }, signal: controller.signal }).catch(() => null);
      clearTimeout(timer);
      if (res?.status !== 401) sseLeaks.push(`${path} with ${describe(header)} → ${res?.status ?? 'no answer'}`);
      await res?.body?.cancel().catch(() => undefined);
      controller.abort();
    }
  }
  t.same(sseLeaks, [], `both SSE paths refuse ${badHeaders.length} bad headers with 401`);

  // WebSocket upgrade with a bad header: refused with 401.
  const wsBase = url.replace('http:', 'ws:');
  const upgradeLeaks: string[] = [];
  for (const path of ['/ws', '/ws/queues/authq']) {
    for (const header of badHeaders) {
      if (header === undefined) continue;
      const outcome = await WsClient.open(wsBase + path, { authorization: header }).then(
        async (c) => {
          await c.close();
          return 'accepted';
        },
        (e: { status?: number; message: string }) => (e.status === 401 ? 'refused' : `error ${e.message}`),
      );
      if (outcome !== 'refused') upgradeLeaks.push(`${path} with ${describe(header)} → ${outcome}`);
    }
  }
  t.same(upgradeLeaks, [], 'the WebSocket upgrade refuses every bad Authorization header with 401');

  // A header-less socket: every command is refused until Auth succeeds; no events leak.
  const anon = await WsClient.open(`${wsBase}/ws`);
  const commands = [
    { cmd: 'PUSH', queue: 'authq', data: { sneaky: true } },
    { cmd: 'PUSHB', queue: 'authq', jobs: [{ data: 1 }] },
    { cmd: 'PULL', queue: 'authq' },
    { cmd: 'ACK', id: jobId },
    { cmd: 'FAIL', id: jobId, error: 'x' },
    { cmd: 'GETJOB', id: jobId },
    { cmd: 'PROGRESS', id: jobId, progress: 5 },
    { cmd: 'CANCEL', id: jobId },
    { cmd: 'push', queue: 'authq', data: 1 },
    { cmd: 'GetJob', id: jobId },
  ];
  for (const command of commands) {
    const reply = await anon.request(command);
    t.same({ ok: reply.ok, error: reply.error }, unauthorized, `WS ${command.cmd} before Auth is refused`);
  }
  // Each bad token on a socket of its own (a socket is closed after five failed Auth commands);
  // then four failed attempts on `anon`, which must leave it as refused as before.
  for (const bad of ['', ' ', 'wrong-token', tokens[0]?.toUpperCase(), `Bearer ${tokens[0]}`, `${tokens[0]}x`, `${tokens[0]},${tokens[1]}`, 42, null, [tokens[0]]]) {
    const probe = await WsClient.open(`${wsBase}/ws`);
    const reply = await probe.request({ cmd: 'Auth', token: bad });
    t.same({ ok: reply.ok, error: reply.error }, { ok: false, error: 'Invalid token' }, `WS Auth with ${JSON.stringify(bad)} is refused`);
    await probe.close();
  }
  for (let i = 0; i < 4; i++) await anon.request({ cmd: 'Auth', token: `guess-${i}` });
  t.same((await anon.request({ cmd: 'GETJOB', id: jobId })).error, 'Unauthorized', 'still refused after failed Auth attempts');
  await http(url, 'POST', '/queues/authq/jobs', { headers: good, body: { data: { n: 2 } } });
  await new Promise((r) => setTimeout(r, 300));
  t.same(anon.unsolicited, [], 'an unauthenticated socket receives no events');
  t.equal((await anon.request({ cmd: 'Auth', token: tokens[1] })).ok, true, 'Auth with a valid token succeeds');
  t.equal((await anon.request({ cmd: 'GETJOB', id: jobId })).ok, true, 'then commands work');
  await anon.close();
  t.equal(await totals(url) === before, false, 'the authorized push was counted (sanity)');

  // Job lock tokens: progress and logs of their own job, while active, nothing else.
  const other = (await http(url, 'POST', '/queues/authq/jobs', { headers: good, body: { data: { n: 3 } } })).json.id as string;
  let pulled = await http(url, 'GET', '/queues/authq/jobs', { headers: good });
  while (pulled.json.job !== null && pulled.json.job.id !== jobId) pulled = await http(url, 'GET', '/queues/authq/jobs', { headers: good });
  t.equal(pulled.json.job?.id, jobId, 'the job is active with a lock token');
  const lock = { authorization: `Bearer ${pulled.json.token as string}` };
  t.equal((await http(url, 'POST', `/jobs/${jobId}/progress`, { headers: lock, body: 40 })).status, 200, 'lock token: progress of its job');
  t.equal((await http(url, 'POST', `/queues/authq/jobs/${jobId}/progress`, { headers: lock, body: { progress: 50 } })).status, 200, 'lock token: queue-scoped progress');
  t.equal((await http(url, 'POST', `/jobs/${jobId}/logs`, { headers: lock, body: 'step' })).status, 200, 'lock token: log line of its job');
  t.equal((await http(url, 'GET', `/jobs/${jobId}/logs`, { headers: lock })).status, 200, 'lock token: read its logs');
  const misuse = [
    ['POST', `/jobs/${other}/progress`, 10],
    ['POST', `/jobs/${other}/logs`, 'x'],
    ['GET', `/jobs/${jobId}`, undefined],
    ['POST', `/jobs/${jobId}/ack`, {}],
    ['DELETE', `/jobs/${jobId}`, undefined],
    ['GET', '/stats', undefined],
    ['POST', '/queues/authq/jobs', { data: 1 }],
  ] as const;
  for (const [method, path, body] of misuse) {
    const res = await http(url, method, path, { headers: lock, ...(body !== undefined ? { body } : {}) });
    t.equal(res.status, 401, `lock token refused for ${method} ${path}`);
  }
  t.equal((await http(url, 'POST', `/jobs/${jobId}/ack`, { headers: good, body: {} })).status, 200, 'the job is acked');
  t.equal((await http(url, 'POST', `/jobs/${jobId}/progress`, { headers: lock, body: 90 })).status, 401, 'lock token refused once the job is no longer active');
  t.equal((await http(url, 'POST', `/jobs/${jobId}/logs`, { headers: lock, body: 'late' })).status, 401, 'and for logs too');
  t.comment(
    `auth: routes=${checkedRoutes} bad headers=${badHeaders.length} HTTP refusals=${refusals} leaks=${leaks.length + sseLeaks.length + upgradeLeaks.length} ` +
      `WS commands refused before Auth=${commands.length}`,
  );
});
