// Load generator for the HTTP/WS/SSE benchmarks, forked by tools/bench-proc.ts `runLoad` so that
// it never shares an event loop with a server under test. It receives one LoadSpec over IPC, runs
// it (a warm-up first, not counted), and answers with one LoadResult, including the CPU seconds
// this process used during the measured part: on a 2-core machine a load generator that uses a
// whole core is a large part of the machine, and the reader must see that.
//
// HTTP is driven by autocannon (raw sockets, keep-alive, its own parser): Node's fetch tops out at
// a few thousand requests/s per process. WebSocket uses a client of its own (bench-ws-client.ts),
// SSE node:http directly.

import autocannon from 'autocannon';
import { request as httpRequest, Agent, type IncomingMessage } from 'node:http';
import { WsLoadClient, type ReplyHandler } from './bench-ws-client.js';

export type Workload = 'push' | 'bulk' | 'cycle' | 'fill' | 'ws-push' | 'ws-cycle' | 'sse';

export interface LoadSpec {
  workload: Workload;
  /** Base URL of the server, e.g. http://127.0.0.1:6790. */
  url: string;
  queue: string;
  connections: number;
  seconds: number;
  warmupSeconds: number;
  /** Jobs per request (bulk, fill) or per PUSHB frame (ws-cycle prefill). */
  bulkSize: number;
  /** fill: jobs to push in total; ws-cycle: jobs pushed before the pull+ack run. */
  amount: number;
  /** ws-*: commands in flight per connection. */
  pipeline: number;
  /** sse: pushes per second while the subscribers listen. */
  ssePushPerSec: number;
  /** push, bulk, cycle: send `"durable": true` with every job. */
  durable: boolean;
}

export interface LoadResult {
  workload: Workload;
  /** Wall seconds of the measured part. */
  seconds: number;
  /** Jobs pushed (push, bulk, fill, ws-push), cycles completed (cycle, ws-cycle), events received (sse). */
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Non-2xx answers, `ok:false` replies, socket errors and timeouts. */
  errors: number;
  /** CPU seconds (user + system) of this process during the measured part. */
  cpuSeconds: number;
  /** Wall seconds `cpuSeconds` were taken over: the measured part and what it waits for after
   *  `seconds` (sse: the drain; fill: autocannon's stop at its next tick). Cores = the ratio. */
  cpuWindowSeconds: number;
  note: string;
  /** What the errors were, when there were any (status codes, socket errors, timeouts). */
  errorDetail: string;
  /** sse: pushes per second achieved over the push window (each tick waits for its pushes, so
   *  under load it falls below `ssePushPerSec`). */
  pushesPerSec?: number;
}

/** A ~100-byte job payload (the `data` object serialises to 101 bytes). */
export const jobData = { email: 'someone@example.com', template: 'welcome', locale: 'en', n: 1, pad: 'x'.repeat(20) };
const dataJson = JSON.stringify(jobData);

export function percentile(sorted: Float64Array | number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

/** Latency samples (ms) in a growing Float64Array; percentiles sort a copy once at the end. */
class Samples {
  private values = new Float64Array(1 << 16);
  count = 0;
  add(ms: number): void {
    if (this.count === this.values.length) {
      const next = new Float64Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.count++] = ms;
  }
  percentiles(): { p50Ms: number; p99Ms: number } {
    const sorted = this.values.slice(0, this.count).sort();
    return { p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
  }
}

/** CPU seconds of this process from now on, and the wall seconds they were taken over. */
function cpuMeter(): () => { cpuSeconds: number; cpuWindowSeconds: number } {
  const start = process.cpuUsage();
  const wall = performance.now();
  return () => {
    const used = process.cpuUsage(start);
    return { cpuSeconds: (used.user + used.system) / 1e6, cpuWindowSeconds: (performance.now() - wall) / 1_000 };
  };
}

const jsonHeaders = { 'content-type': 'application/json' };

function jobText(spec: LoadSpec): string {
  return `{"data":${dataJson}${spec.durable ? ',"durable":true' : ''}}`;
}

/** Tells the parent the measured part starts now (it samples the server's CPU time). */
function markMeasured(): void {
  process.send?.({ phase: 'measure' });
}

/** Runs autocannon; `samples`, when given, gets each 2xx response's time (ms, sub-ms precision),
 *  because autocannon's own latency histogram floors to whole ms and counts error answers.
 *  `lastAnswerSeconds`: from the start to the last answer or failed request. autocannon ends a
 *  run (and its `duration`) only at its next once-a-second tick, so a run of a fixed `amount`
 *  would otherwise be timed with up to a second of idle after its last answer. */
async function cannon(opts: autocannon.Options, samples?: Samples): Promise<{ r: autocannon.Result; lastAnswerSeconds: number }> {
  const started = performance.now();
  let last = started;
  const instance = autocannon(opts);
  instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
    last = performance.now();
    if (samples !== undefined && statusCode >= 200 && statusCode < 300) samples.add(responseTimeMs);
  });
  instance.on('reqError', () => {
    last = performance.now();
  });
  const r = await instance;
  return { r, lastAnswerSeconds: (last - started) / 1_000 };
}

/** Failed requests of an autocannon run: non-2xx answers, socket errors and timeouts. autocannon
 *  counts each timeout in `errors` as well as in `timeouts`, so `errors` already holds them. */
export function cannonErrorCount(r: autocannon.Result): number {
  return r.non2xx + r.errors;
}

function cannonErrors(r: autocannon.Result): string {
  if (cannonErrorCount(r) === 0) return '';
  const codes = Object.entries(r.statusCodeStats ?? {})
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, { count }]) => `${count}× HTTP ${code}`);
  return [...codes, `${r.errors - r.timeouts} socket errors`, `${r.timeouts} timeouts`].join(', ');
}

// ---- HTTP via autocannon --------------------------------------------------------------------

async function httpPush(spec: LoadSpec): Promise<LoadResult> {
  const single = spec.workload === 'push';
  const jobJson = jobText(spec);
  const body = single ? jobJson : `{"jobs":[${Array.from({ length: spec.bulkSize }, () => jobJson).join(',')}]}`;
  const path = single ? `/queues/${spec.queue}/jobs` : `/queues/${spec.queue}/jobs/bulk`;
  const base = { url: `${spec.url}${path}`, method: 'POST' as const, headers: jsonHeaders, body, connections: spec.connections };
  if (spec.warmupSeconds > 0) await cannon({ ...base, duration: spec.warmupSeconds });
  markMeasured();
  const cpu = cpuMeter();
  const samples = new Samples();
  const fill = spec.workload === 'fill';
  const { r, lastAnswerSeconds } = await cannon(fill ? { ...base, amount: Math.ceil(spec.amount / spec.bulkSize) } : { ...base, duration: spec.seconds }, samples);
  const perRequest = single ? 1 : spec.bulkSize;
  const ops = r['2xx'] * perRequest;
  // A timed run counts the answers up to autocannon's stop (its `duration`); a fixed amount is
  // done at its last answer.
  const seconds = fill ? lastAnswerSeconds : r.duration;
  return {
    workload: spec.workload,
    seconds,
    ops,
    opsPerSec: ops / seconds,
    ...samples.percentiles(),
    errors: cannonErrorCount(r),
    errorDetail: cannonErrors(r),
    ...cpu(),
    note: `${r.requests.total} requests (${perRequest} job${perRequest > 1 ? 's' : ''} each), latency per 2xx request`,
  };
}

interface CycleContext {
  t0?: number;
  id?: string;
  token?: string | null;
}

/** push → pull → ack per connection; a cycle's latency runs from sending the push to the ack's
 *  answer. A cycle whose pull brought no job counts as one error: the pull (a non-2xx answer, or
 *  200 with no job) is counted, the ack that follows it (sent to /jobs/none/ack) is not. */
async function httpCycle(spec: LoadSpec): Promise<LoadResult> {
  let cycles = 0;
  let emptyPulls = 0;
  let orphanAcks = 0;
  let samples = new Samples();
  const q = spec.queue;
  const requests: autocannon.Request[] = [
    {
      method: 'POST',
      path: `/queues/${q}/jobs`,
      headers: jsonHeaders,
      body: jobText(spec),
      setupRequest: (req: autocannon.Request, ctx: CycleContext) => {
        ctx.t0 = performance.now();
        return req;
      },
    },
    {
      method: 'GET',
      path: `/queues/${q}/jobs`,
      onResponse: (status: number, body: string, ctx: CycleContext) => {
        const parsed = status === 200 ? (JSON.parse(body) as { job: { id: string } | null; token?: string | null }) : null;
        ctx.id = parsed?.job?.id;
        ctx.token = parsed?.token ?? null;
        // A non-2xx pull is already among autocannon's non2xx.
        if (status === 200 && ctx.id === undefined) emptyPulls += 1;
      },
    },
    {
      method: 'POST',
      headers: jsonHeaders,
      setupRequest: (req: autocannon.Request, ctx: CycleContext) => ({
        ...req,
        path: `/jobs/${ctx.id ?? 'none'}/ack`,
        body: ctx.token ? `{"token":"${ctx.token}"}` : '{}',
      }),
      onResponse: (status: number, _body: string, ctx: CycleContext) => {
        if (ctx.id === undefined && (status < 200 || status > 299)) orphanAcks += 1;
        if (status !== 200 || ctx.t0 === undefined) return;
        cycles += 1;
        samples.add(performance.now() - ctx.t0);
      },
    },
  ];
  const base = { url: spec.url, connections: spec.connections, requests };
  if (spec.warmupSeconds > 0) await cannon({ ...base, duration: spec.warmupSeconds });
  cycles = 0;
  emptyPulls = 0;
  orphanAcks = 0;
  samples = new Samples();
  markMeasured();
  const cpu = cpuMeter();
  const { r } = await cannon({ ...base, duration: spec.seconds });
  return {
    workload: spec.workload,
    seconds: r.duration,
    ops: cycles,
    opsPerSec: cycles / r.duration,
    ...samples.percentiles(),
    errors: cannonErrorCount(r) - orphanAcks + emptyPulls,
    errorDetail: cycleErrors(r, emptyPulls, orphanAcks),
    ...cpu(),
    note: `${spec.connections} consumers each push → pull → ack; latency per cycle (push sent → ack answered)`,
  };
}

function cycleErrors(r: autocannon.Result, emptyPulls: number, orphanAcks: number): string {
  const parts = [cannonErrors(r)].filter((p) => p !== '');
  if (orphanAcks > 0) parts.push(`${orphanAcks} of those HTTP answers are acks sent after a pull without a job (not counted again)`);
  if (emptyPulls > 0) parts.push(`${emptyPulls} pulls answered 200 without a job`);
  return parts.join(', ');
}

// ---- WebSocket ------------------------------------------------------------------------------

type Reply = { ok: boolean; job?: { id: string } | null; token?: string | null; error?: string };

/** Each connection runs `pipeline` lanes; a lane sends its next command when the last is answered. */
async function lanes(clients: WsLoadClient[], pipeline: number, untilMs: number, step: (c: WsLoadClient) => Promise<boolean>): Promise<void> {
  const lane = async (client: WsLoadClient): Promise<void> => {
    while (performance.now() < untilMs) if (!(await step(client))) return;
  };
  await Promise.all(clients.flatMap((c) => Array.from({ length: pipeline }, () => lane(c))));
}

/** Pipelined PUSH: each connection keeps `pipeline` commands in flight until `untilMs`, sending
 *  the next from the reply handler of the last (no promise per command), then waits for every
 *  answer. `judge` gets each reply. */
function pushWindows(clients: WsLoadClient[], head: string, pipeline: number, untilMs: number, judge: ReplyHandler): Promise<void> {
  return new Promise((resolve) => {
    let open = clients.length;
    for (const client of clients) {
      let done = false;
      const onReply: ReplyHandler = (text, sentAt) => {
        judge(text, sentAt);
        if (performance.now() < untilMs && client.send(head, onReply)) return;
        if (done || client.inFlight > 0) return;
        done = true;
        if (--open === 0) resolve();
      };
      for (let i = 0; i < pipeline; i++) client.send(head, onReply);
    }
  });
}

async function wsRun(spec: LoadSpec): Promise<LoadResult> {
  // Producers connect to a queue filter nobody pushes to, so the socket carries replies only.
  const wsUrl = `${spec.url.replace(/^http/, 'ws')}/ws/queues/${spec.queue}-idle`;
  const clients = await Promise.all(Array.from({ length: spec.connections }, () => WsLoadClient.open(wsUrl)));
  try {
    let ops = 0;
    let errors = 0;
    let firstError = '';
    let samples = new Samples();
    const failed = (what: string): void => {
      errors += 1;
      if (firstError === '') firstError = what.slice(0, 200);
    };
    const pushHead = `{"cmd":"PUSH","queue":"${spec.queue}","data":${dataJson}`;
    // A push is acknowledged by {"ok":true,"id":"…",…}; anything else is an error, not a job:
    // only acknowledged pushes count and are timed.
    const judgePush: ReplyHandler = (text, sentAt) => {
      if (!text.startsWith('{"ok":true,"id":"')) return failed(text);
      ops += 1;
      samples.add(performance.now() - sentAt);
    };
    const cycleStep = async (c: WsLoadClient): Promise<boolean> => {
      const t0 = performance.now();
      const pulled = await c.call<Reply>(`{"cmd":"PULL","queue":"${spec.queue}","timeout":0`);
      if (!pulled.ok) failed(pulled.error ?? 'PULL failed');
      const job = pulled.job;
      if (!job) return false;
      const acked = await c.call<Reply>(`{"cmd":"ACK","id":"${job.id}","token":"${pulled.token ?? ''}"`);
      if (!acked.ok) {
        failed(acked.error ?? 'ACK failed');
        return true;
      }
      ops += 1;
      samples.add(performance.now() - t0);
      return true;
    };
    const run = (untilMs: number): Promise<void> =>
      spec.workload === 'ws-push' ? pushWindows(clients, pushHead, spec.pipeline, untilMs, judgePush) : lanes(clients, spec.pipeline, untilMs, cycleStep);
    if (spec.workload === 'ws-cycle') await prefill(clients, spec);
    if (spec.warmupSeconds > 0) await run(performance.now() + spec.warmupSeconds * 1_000);
    ops = 0;
    errors = 0;
    firstError = '';
    samples = new Samples();
    markMeasured();
    const cpu = cpuMeter();
    const t0 = performance.now();
    await run(t0 + spec.seconds * 1_000);
    const seconds = (performance.now() - t0) / 1_000;
    const what = spec.workload === 'ws-push' ? 'PUSH' : 'PULL → ACK';
    return {
      workload: spec.workload,
      seconds,
      ops,
      opsPerSec: ops / seconds,
      ...samples.percentiles(),
      errors,
      errorDetail: errors > 0 ? `${errors} replies not ok, the first: ${firstError}` : '',
      ...cpu(),
      note: `${spec.connections} sockets × ${spec.pipeline} ${what} in flight; latency per ${spec.workload === 'ws-push' ? 'command' : 'cycle'}`,
    };
  } finally {
    for (const c of clients) c.close();
  }
}

async function prefill(clients: WsLoadClient[], spec: LoadSpec): Promise<void> {
  const first = clients[0];
  if (first === undefined) return;
  const batch = Array.from({ length: spec.bulkSize }, () => `{"data":${dataJson}}`).join(',');
  const inFlight: Promise<Reply>[] = [];
  const check = (reply: Reply | undefined): void => {
    if (reply && !reply.ok) throw new Error(`PUSHB failed: ${reply.error ?? '?'}`);
  };
  for (let pushed = 0; pushed < spec.amount; pushed += spec.bulkSize) {
    inFlight.push(first.call(`{"cmd":"PUSHB","queue":"${spec.queue}","jobs":[${batch}]`));
    if (inFlight.length >= 16) check(await inFlight.shift());
  }
  // The last batches too: the row says how many jobs were prefilled.
  for (const reply of await Promise.all(inFlight)) check(reply);
}

// ---- SSE fan-out ----------------------------------------------------------------------------

/** Wait after the last push for its events to reach every subscriber. */
const sseDrainMs = 500;

/** Opens `connections` SSE subscribers, pushes at up to `ssePushPerSec` (each ~10 ms tick sends
 *  its pushes and waits for their answers, so under load the achieved rate is lower and is
 *  reported), measures push timestamp → receipt. Rates are over the push window only: the 0.5 s
 *  drain after it lets the events of the last pushes arrive (they count, the drain time does not). */
async function sseFanout(spec: LoadSpec): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const responses: IncomingMessage[] = [];
  let events = 0;
  let samples = new Samples();
  const onEvent = (text: string): void => {
    const event = JSON.parse(text) as { eventType?: string; timestamp?: number };
    if (event.eventType !== 'pushed' || event.timestamp === undefined) return;
    events += 1;
    samples.add(Date.now() - event.timestamp);
  };
  try {
    await Promise.all(
      Array.from({ length: spec.connections }, () => subscribe(`${spec.url}/events/queues/${spec.queue}`, agent, onEvent, responses)),
    );
    const pushAgent = new Agent({ keepAlive: true, maxSockets: 8 });
    const pushOnce = (): Promise<void> => postJson(`${spec.url}/queues/${spec.queue}/jobs`, `{"data":${dataJson}}`, pushAgent);
    const run = async (seconds: number): Promise<{ pushed: number; pushSeconds: number }> => {
      // About 10 ms ticks, their length set so that perTick / tickMs is the offered rate exactly.
      const perTick = Math.max(1, Math.round(spec.ssePushPerSec / 100));
      const tickMs = (perTick * 1_000) / spec.ssePushPerSec;
      const started = performance.now();
      const until = started + seconds * 1_000;
      let pushed = 0;
      while (performance.now() < until) {
        const tick = performance.now();
        await Promise.all(Array.from({ length: perTick }, pushOnce));
        pushed += perTick;
        const wait = tickMs - (performance.now() - tick);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const pushSeconds = (performance.now() - started) / 1_000;
      await new Promise((r) => setTimeout(r, sseDrainMs));
      return { pushed, pushSeconds };
    };
    if (spec.warmupSeconds > 0) await run(spec.warmupSeconds);
    events = 0;
    samples = new Samples();
    markMeasured();
    const cpu = cpuMeter();
    const { pushed, pushSeconds } = await run(spec.seconds);
    pushAgent.destroy();
    const expected = pushed * spec.connections;
    const pushesPerSec = pushed / pushSeconds;
    return {
      workload: spec.workload,
      seconds: pushSeconds,
      ops: events,
      opsPerSec: events / pushSeconds,
      ...samples.percentiles(),
      errors: Math.max(0, expected - events),
      errorDetail: expected > events ? `${expected - events} events not received within ${sseDrainMs} ms of the last push` : '',
      ...cpu(),
      pushesPerSec,
      note:
        `${spec.connections} SSE subscribers, ${pushed} pushes in ${pushSeconds.toFixed(2)} s (${pushesPerSec.toFixed(0)}/s achieved, ` +
        `${spec.ssePushPerSec}/s offered); ${events}/${expected} events delivered; latency = receipt − record timestamp (ms clock)`,
    };
  } finally {
    for (const res of responses) res.destroy();
    agent.destroy();
  }
}

function subscribe(url: string, agent: Agent, onEvent: (data: string) => void, responses: IncomingMessage[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
      responses.push(res);
      if (res.statusCode !== 200) return reject(new Error(`SSE answered ${res.statusCode}`));
      let buffer = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf('\n\n');
        while (end >= 0) {
          const message = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          for (const line of message.split('\n')) if (line.startsWith('data: ')) onEvent(line.slice(6));
          end = buffer.indexOf('\n\n');
        }
      });
      res.on('error', () => {});
      resolve();
    });
    req.on('error', reject);
    req.end();
  });
}

function postJson(url: string, body: string, agent: Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', agent, headers: { ...jsonHeaders, 'content-length': Buffer.byteLength(body) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`push answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

export async function runSpec(spec: LoadSpec): Promise<LoadResult> {
  switch (spec.workload) {
    case 'push':
    case 'bulk':
    case 'fill':
      return httpPush(spec);
    case 'cycle':
      return httpCycle(spec);
    case 'ws-push':
    case 'ws-cycle':
      return wsRun(spec);
    case 'sse':
      return sseFanout(spec);
    default: {
      const never: never = spec.workload;
      throw new Error(`unknown workload ${String(never)}`);
    }
  }
}

if (process.send !== undefined) {
  process.once('message', (spec: LoadSpec) => {
    runSpec(spec).then(
      (result) => process.send?.({ ok: true, result }, () => process.exit(0)),
      (err: unknown) => process.send?.({ ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }, () => process.exit(1)),
    );
  });
}
