// SPEC 2.6 / 4 / 8: hostile input is bounded and rejected cleanly, never crashes the broker and
// never changes state. In-process `serve()` (the composition root, real sockets) so the test can
// see the log's offset: for every rejected request it checks that no record with an actor was
// appended (timer records, actor null, may run any time).
//
// Seeded random + mutated input against every documented endpoint and every WebSocket command:
// wrong types, 1e308, -0, "NaN", deep nesting (10k and 100k levels), __proto__ / constructor
// keys, odd queue names (../x, %2e%2e, NUL, unicode, 10k chars, slashes), odd ids, oversized
// bodies (> MAX_BODY_BYTES), invalid UTF-8, non-JSON, binary and oversized WS frames. Meanwhile
// three slowloris sockets trickle headers one byte per 100 ms and a prober checks /healthz.
// Asserted throughout: /healthz answers within 1 s, no 5xx (the fault-free broker has no reason
// for one), every 4xx is the {ok:false, error} envelope, WS replies are envelopes too and never
// "Internal server error", RSS (from /health) stays bounded, the process never dies.
//
// Fast: ~2,000 HTTP requests + 300 WS commands. TAPEQ_LONG=1: ~50,000 + 5,000.

import { connect, type Socket } from 'node:net';
import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { serve, type Running } from '../../src/main.js';
import { LONG, http, seededRng, sleep, tempDir, type Rng } from '../fixtures/reliability/common.js';
import { WsClient } from '../fixtures/reliability/ws-client.js';

const httpRequests = LONG ? 50_000 : 2_000;
const wsCommands = LONG ? 5_000 : 300;
const bodyBytesMax = 256 * 1024;

const nested = (depth: number, open: string, close: string, inner = '1'): string => open.repeat(depth) + inner + close.repeat(depth);

function oddQueue(rng: Rng): string {
  return rng.pick([
    'fz',
    'fz',
    'fz-2',
    '..%2Fx',
    '%2e%2e',
    '%2e%2e%2fetc',
    'a%00b',
    '%00',
    '%C3%B1%E9%98%9F%E5%88%97',
    '%F0%9F%92%A5',
    'a'.repeat(129),
    'a'.repeat(10_000),
    '%20',
    'con',
    'a%2Fb',
    '%FF%FE',
    "q'or'1'='1",
    '$%7Bjndi%7D',
  ]);
}

function oddId(rng: Rng, known: string[]): string {
  return rng.pick([...(known.length > 0 ? [rng.pick(known), rng.pick(known)] : []), 'nope', '..%2F..%2Fetc', '%00', 'x'.repeat(200), '-1', '%E2%80%AE', 'null']);
}

function oddValue(rng: Rng, depth = 0): unknown {
  const pick = rng.int(depth > 3 ? 12 : 16);
  switch (pick) {
    case 0: return 1e308;
    case 1: return -0;
    case 2: return 'NaN';
    case 3: return -1;
    case 4: return 2 ** 53 + 1;
    case 5: return '';
    case 6: return null;
    case 7: return true;
    case 8: return 'x'.repeat(rng.int(3) === 0 ? 5_000 : 10);
    case 9: return 0.5;
    case 10: return '\u0000\uFFFF\uD800';
    case 11: return -1e308;
    case 12: return [oddValue(rng, depth + 1), oddValue(rng, depth + 1)];
    case 13: return { a: oddValue(rng, depth + 1) };
    case 14: return JSON.parse('{"__proto__": {"polluted": 1}}');
    default: return { constructor: { prototype: { polluted: 1 } } };
  }
}

const pushFields = ['data', 'priority', 'delay', 'maxAttempts', 'backoff', 'ttl', 'timeout', 'uniqueKey', 'jobId', 'tags', 'groupId', 'lifo', 'removeOnComplete', 'removeOnFail', 'durable', 'dependsOn', 'repeat', 'name', 'opts', 'progress', 'message', 'result', 'error', 'token', 'grace', 'state', 'limit', 'id', 'jobs', 'queue', 'endpoint'];

function oddObject(rng: Rng): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const n = rng.int(4);
  for (let i = 0; i < n; i++) out[rng.pick(pushFields)] = oddValue(rng);
  if (rng.int(3) === 0) out['data'] = { ok: rng.int(100) };
  return out;
}

/** A body: JSON value, or raw bytes that are not (or not valid) JSON. */
function oddBody(rng: Rng): { body?: unknown; raw?: string | Uint8Array<ArrayBuffer> } {
  switch (rng.int(14)) {
    case 0: return { raw: nested(10_000, '[', ']') };
    case 1: return { raw: nested(100_000, '{"a":', '}') };
    case 2: return { raw: '{"data": 1,' };
    case 3: return { raw: Buffer.from([0x7b, 0x22, 0x64, 0x61, 0x74, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc3, 0x22, 0x7d]) as Uint8Array<ArrayBuffer> };
    case 4: return { raw: 'x'.repeat(bodyBytesMax + 1 + rng.int(1_000)) };
    case 5: return { raw: '{"__proto__": {"admin": true}, "data": 1}' };
    case 6: return { raw: '{"constructor": {"prototype": {"admin": true}}, "data": 1}' };
    case 7: return { raw: 'NaN' };
    case 8: return { body: [oddObject(rng), oddObject(rng)] };
    case 9: return { body: oddValue(rng) };
    case 10: return { raw: '\u0000' };
    default: return { body: oddObject(rng) };
  }
}

interface Endpoint {
  method: string;
  path: (rng: Rng, known: string[]) => string;
  body: boolean;
}

const q = (rng: Rng): string => oddQueue(rng);
const endpoints: Endpoint[] = [
  { method: 'POST', path: (r) => `/queues/${q(r)}/jobs`, body: true },
  { method: 'POST', path: (r) => `/queues/${q(r)}/jobs/bulk`, body: true },
  { method: 'GET', path: (r) => `/queues/${q(r)}/jobs?timeout=${r.pick(['-1', 'abc', '1e308', 'NaN', '0', '', '0x10', '1.5', '-0', '99999999'])}`, body: false },
  { method: 'GET', path: (r) => `/queues/${q(r)}/jobs/list?statuses=${r.pick(['waiting', 'bogus', '', 'waiting,,', '%00'])}&start=${r.pick(['0', '-1', 'x', '1e308'])}&length=${r.pick(['10', '101', '-5', 'NaN'])}`, body: false },
  { method: 'GET', path: (r, k) => `/queues/${q(r)}/jobs/${oddId(r, k)}`, body: false },
  { method: 'GET', path: (r, k) => `/jobs/${oddId(r, k)}`, body: false },
  { method: 'DELETE', path: (r, k) => `/jobs/${oddId(r, k)}`, body: false },
  { method: 'POST', path: (r, k) => `/jobs/${oddId(r, k)}/ack`, body: true },
  { method: 'POST', path: (r, k) => `/jobs/${oddId(r, k)}/fail`, body: true },
  { method: 'POST', path: (r, k) => `/jobs/${oddId(r, k)}/promote`, body: true },
  { method: 'POST', path: (r, k) => `/jobs/${oddId(r, k)}/retry`, body: true },
  { method: 'PUT', path: (r, k) => `/jobs/${oddId(r, k)}/priority`, body: true },
  { method: 'GET', path: (r, k) => `/jobs/${oddId(r, k)}/state`, body: false },
  { method: 'GET', path: (r, k) => `/jobs/${oddId(r, k)}/result`, body: false },
  { method: 'POST', path: (r, k) => `/jobs/${oddId(r, k)}/progress`, body: true },
  { method: 'POST', path: (r, k) => `/jobs/${oddId(r, k)}/logs`, body: true },
  { method: 'GET', path: (r, k) => `/jobs/${oddId(r, k)}/logs?start=${r.pick(['0', '-1', 'x'])}&length=${r.pick(['1', '1e9', ''])}`, body: false },
  { method: 'GET', path: (r, k) => `/jobs/${oddId(r, k)}/history`, body: false },
  { method: 'POST', path: (r, k) => `/queues/${q(r)}/jobs/${oddId(r, k)}/progress`, body: true },
  { method: 'POST', path: (r, k) => `/queues/${q(r)}/jobs/${oddId(r, k)}/logs`, body: true },
  { method: 'GET', path: () => '/queues', body: false },
  { method: 'GET', path: (r) => `/queues/${q(r)}/counts`, body: false },
  { method: 'POST', path: (r) => `/queues/${q(r)}/${r.pick(['pause', 'resume', 'drain', 'clean', 'obliterate', 'promote-jobs', 'dlq/retry', 'dlq/purge'])}`, body: true },
  { method: 'GET', path: (r) => `/queues/${q(r)}/${r.pick(['paused', 'dlq'])}`, body: false },
  { method: 'POST', path: () => '/workers', body: true },
  { method: 'DELETE', path: (r) => `/workers/${q(r)}`, body: false },
  { method: 'GET', path: () => '/workers', body: false },
  { method: 'GET', path: (r) => r.pick(['/health', '/stats', '/metrics', '/prometheus', '/ready', '/heapstats', '/nope', '/%00', '/queues/%2e%2e/%2e%2e']), body: false },
  { method: 'PATCH', path: (r) => `/queues/${q(r)}/jobs`, body: true },
  { method: 'GET', path: (r) => `/events/queues/${q(r)}?from=${r.pick(['-2', 'x', '1e308', '99999999999999999999'])}`, body: false },
];

/** A slowloris socket: one header byte per 100 ms, for at most `ms`; never completes a request. */
function slowloris(port: number, ms: number): { done: Promise<number>; socket: Socket } {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const text = `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${'a'.repeat(10_000)}`;
  const done = (async () => {
    let sent = 0;
    const until = Date.now() + ms;
    while (Date.now() < until && sent < text.length && !socket.destroyed) {
      socket.write(text[sent] as string);
      sent++;
      await sleep(100);
    }
    socket.destroy();
    return sent;
  })();
  return { done, socket };
}

t.test('hostile input never crashes the broker, never answers 5xx, never appends for a rejection', async (t) => {
  const rng = seededRng(t, 'hostile-input');
  const dataDir = await tempDir(t, 'fuzz');
  const config = loadConfig({ HOST: '127.0.0.1', HTTP_PORT: '0', DATA_DIR: dataDir, MAX_BODY_BYTES: String(bodyBytesMax), LOCK_MS: '600000' });
  const running: Running = await serve(config, { logger: () => undefined });
  t.teardown(() => running.close());
  const url = `http://127.0.0.1:${running.port}`;
  const known: string[] = [];
  for (let i = 0; i < 5; i++) known.push((await http(url, 'POST', '/queues/fz/jobs', { body: { data: { i } } })).json.id as string);

  const problems: string[] = [];
  const note = (line: string): void => {
    if (problems.length < 30) problems.push(line);
  };
  let stopProbe = false;
  let probeMaxMs = 0;
  let probes = 0;
  const rss: number[] = [];
  const prober = (async () => {
    for (let i = 0; i < 100_000 && !stopProbe; i++) {
      const started = Date.now();
      const res = await http(url, 'GET', '/healthz', { timeoutMs: 1_000 }).catch((e: Error) => ({ status: 0, text: e.message }));
      const ms = Date.now() - started;
      probeMaxMs = Math.max(probeMaxMs, ms);
      probes++;
      if (res.status !== 200) note(`/healthz did not answer within 1 s: ${res.status} ${res.text}`);
      if (i % 10 === 0) {
        const health = await http(url, 'GET', '/health', { timeoutMs: 2_000 }).catch(() => null);
        if (typeof health?.json?.memory?.rss === 'number') rss.push(health.json.memory.rss as number);
      }
      await sleep(100);
    }
  })();
  const lorises = Array.from({ length: 3 }, () => slowloris(running.port, LONG ? 30_000 : 4_000));

  const statuses = new Map<number, number>();
  let accepted = 0;
  let appendedOnRejection = 0;
  for (let i = 0; i < httpRequests; i++) {
    const endpoint = rng.pick(endpoints);
    const path = endpoint.path(rng, known);
    const body = endpoint.body && rng.int(6) !== 0 ? oddBody(rng) : {};
    const before = running.log.nextOffset;
    let res;
    try {
      res = await http(url, endpoint.method, path, { ...body, timeoutMs: 5_000 });
    } catch (error) {
      note(`${endpoint.method} ${path.slice(0, 80)}: no answer (${String(error)})`);
      continue;
    }
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 500) note(`${endpoint.method} ${path.slice(0, 80)} → ${res.status} ${res.text.slice(0, 160)}`);
    if (res.status >= 400) {
      const envelope = res.json?.ok === false && typeof res.json.error === 'string' && res.json.error !== '';
      if (!envelope) note(`${endpoint.method} ${path.slice(0, 80)} → ${res.status} without the envelope: ${res.text.slice(0, 120)}`);
      const after = running.log.nextOffset;
      if (after > before) {
        for await (const r of running.log.read(before, after)) {
          if (r.actor !== null) {
            appendedOnRejection++;
            note(`${endpoint.method} ${path.slice(0, 80)} → ${res.status} yet appended ${r.body.type} at ${r.offset}`);
          }
        }
      }
    } else {
      accepted++;
      if (typeof res.json?.id === 'string' && known.length < 200) known.push(res.json.id);
    }
    if (problems.length >= 30) break;
  }

  // WebSocket commands.
  const wsUrl = url.replace('http:', 'ws:');
  let ws = await WsClient.open(`${wsUrl}/ws`);
  let wsReplies = 0;
  let wsReopened = 0;
  const cmds = ['PUSH', 'PUSHB', 'PULL', 'ACK', 'FAIL', 'GETJOB', 'PROGRESS', 'CANCEL', 'Auth', 'push', 'nope', '', '__proto__', 'constructor'];
  for (let i = 0; i < wsCommands; i++) {
    if (ws.socket.readyState !== ws.socket.OPEN) {
      ws = await WsClient.open(`${wsUrl}${rng.pick(['/ws', '/ws/queues/fz'])}`);
      wsReopened++;
    }
    const roll = rng.int(20);
    if (roll === 0) {
      ws.sendRaw(rng.pick(['{', 'null', '[]', '"x"', nested(10_000, '[', ']'), Buffer.from([0xff, 0xfe, 0x00])]));
      continue;
    }
    if (roll === 1 && i % 50 === 1) {
      ws.sendRaw('x'.repeat(1024 * 1024 + 10));
      await ws.closed.catch(() => undefined);
      continue;
    }
    const command: Record<string, unknown> = { cmd: rng.pick(cmds), ...oddObject(rng) };
    if (rng.int(2) === 0) command['queue'] = decodeURIComponent(oddQueue(rng).replace(/%(?![0-9A-F]{2})/g, '%25').replace('%FF%FE', 'x'));
    if (rng.int(2) === 0) command['id'] = rng.pick([...known, 'nope', '', 1]);
    const before = running.log.nextOffset;
    const reply = await ws.request(command, 5_000).catch((e: Error) => ({ ok: false, error: `no reply: ${e.message}` }) as { ok: boolean; error?: string });
    wsReplies++;
    if (typeof reply.ok !== 'boolean') note(`WS ${String(command['cmd'])}: reply without ok: ${JSON.stringify(reply).slice(0, 120)}`);
    if (reply.ok === false) {
      if (typeof reply.error !== 'string' || reply.error === 'Internal server error' || reply.error.startsWith('no reply')) {
        note(`WS ${JSON.stringify(command).slice(0, 120)} → ${JSON.stringify(reply).slice(0, 120)}`);
      }
      const after = running.log.nextOffset;
      if (after > before) {
        for await (const r of running.log.read(before, after)) {
          if (r.actor !== null && r.body.type !== 'released') {
            appendedOnRejection++;
            note(`WS ${String(command['cmd'])} refused yet appended ${r.body.type}`);
          }
        }
      }
    }
    if (problems.length >= 30) break;
  }
  await ws.close();

  stopProbe = true;
  await prober;
  const trickled = await Promise.all(lorises.map((l) => l.done));
  const health = await http(url, 'GET', '/healthz', { timeoutMs: 1_000 });
  t.equal(health.status, 200, 'the broker is alive and answering at the end');
  t.same(problems, [], 'no 5xx, no missing envelope, no silent hang, no append for a rejection');
  t.equal(appendedOnRejection, 0, 'records appended by rejected requests');
  t.ok(probeMaxMs < 1_000, `/healthz always answered within 1 s (max ${probeMaxMs} ms over ${probes} probes)`);
  const firstRss = rss[0] ?? 0;
  const maxRss = Math.max(...rss, 0);
  t.ok(maxRss <= firstRss * 2 + 200, `RSS stayed bounded: first ${firstRss} MB, max ${maxRss} MB (${rss.length} samples)`);
  t.comment(
    `hostile-input: http requests=${[...statuses.values()].reduce((a, b) => a + b, 0)} accepted=${accepted} statuses=${JSON.stringify(Object.fromEntries(statuses))} ` +
      `ws commands=${wsReplies} ws reopened=${wsReopened} slowloris bytes=${trickled.join('/')} healthz max=${probeMaxMs} ms rss=${firstRss}→${maxRss} MB ` +
      `appended-on-rejection=${appendedOnRejection}`,
  );
});
