// A real tapeq stack for push-worker tests: a Log in a temp dir, the replayed state, a Broker, the
// HTTP API listening on 127.0.0.1:<ephemeral> and a WorkerDispatcher. Workers are registered
// through the real POST /workers route, so registration validation and records are exercised too.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildServer } from '../../src/api/server.js';
import { Broker } from '../../src/broker/broker.js';
import type { JobView } from '../../src/broker/types.js';
import { loadConfig } from '../../src/config.js';
import { Log } from '../../src/log/log.js';
import type { LogRecord } from '../../src/record/types.js';
import { loadState } from '../../src/snapshot/recover-state.js';
import { WorkerDispatcher } from '../../src/workers/dispatcher.js';
import { startEndpoint, until, type Endpoint, type Handler } from './endpoint.js';

export interface Stack {
  dir: string;
  log: Log;
  broker: Broker;
  dispatcher: WorkerDispatcher;
  app: FastifyInstance;
  /** Base URL of the tapeq HTTP API. */
  api: string;
  lines: string[];
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; json: any }>;
  registerWorker(body: unknown): Promise<void>;
  push(queue: string, body: unknown): Promise<string>;
  job(id: string): JobView;
  /** Every record in the log so far, oldest first. */
  records(): Promise<LogRecord[]>;
  /** Stops the dispatcher (running calls finish), the server, the broker and the log. */
  close(): Promise<void>;
}

/** `authToken` sets AUTH_TOKENS to it; `request` then sends it unless the caller passes its own. */
export async function startStack(opts: { dir?: string; lockMsDefault?: number; authToken?: string } = {}): Promise<Stack> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'tapeq-workers-')));
  const lines: string[] = [];
  const logger = (line: string) => lines.push(line);
  const env: Record<string, string> = { DATA_DIR: dir, HOST: '127.0.0.1', HTTP_PORT: '0', LOG_SYNC: 'interval' };
  if (opts.authToken !== undefined) env.AUTH_TOKENS = opts.authToken;
  const config = loadConfig(env);
  const auth: Record<string, string> = opts.authToken === undefined ? {} : { authorization: `Bearer ${opts.authToken}` };
  const log = await Log.open({ dir: join(dir, 'log'), sync: 'interval', syncIntervalMs: 2, logger });
  const loaded = await loadState({ log, dir: join(dir, 'snapshots'), logger });
  const broker = new Broker({ log, state: loaded.state, lockMsDefault: opts.lockMsDefault ?? 30_000, logger });
  const app = await buildServer({ broker, config });
  await app.listen({ port: 0, host: '127.0.0.1' });
  broker.start();
  const dispatcher = new WorkerDispatcher({ broker, logger });
  dispatcher.start();
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  const api = `http://127.0.0.1:${port}`;

  const request: Stack['request'] = async (method, path, body, given) => {
    const headers = given ?? auth;
    const res = await fetch(api + path, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, json: text === '' ? null : JSON.parse(text) };
  };
  let closed = false;
  return {
    dir,
    log,
    broker,
    dispatcher,
    app,
    api,
    lines,
    request,
    async registerWorker(body) {
      const res = await request('POST', '/workers', body);
      if (res.status !== 200) throw new Error(`POST /workers → ${res.status} ${JSON.stringify(res.json)}`);
    },
    async push(queue, body) {
      const res = await request('POST', `/queues/${queue}/jobs`, body);
      if (res.status !== 200 && res.status !== 201) throw new Error(`push → ${res.status} ${JSON.stringify(res.json)}`);
      return res.json.id as string;
    },
    job(id) {
      const job = broker.getJob(id);
      if (job === null) throw new Error(`job ${id} not found`);
      return job;
    },
    async records() {
      const end = log.nextOffset;
      await until('records durable', () => log.durableOffset >= end);
      const out: LogRecord[] = [];
      for await (const r of log.read(log.firstOffset)) out.push(r);
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await dispatcher.close();
      broker.beginShutdown();
      await app.close();
      await broker.close();
      await log.close();
      if (ownDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An endpoint answering with `handler` and a stack, both closed when the test ends: the stack
 *  first, so its running calls finish against a live endpoint. `beforeClose` runs before either
 *  (e.g. to release calls the handler holds). */
export async function startStackWithEndpoint(
  t: { teardown(fn: () => Promise<void>): void },
  handler: Handler,
  opts: Parameters<typeof startStack>[0] = {},
  beforeClose: () => void = () => {},
): Promise<{ s: Stack; ep: Endpoint }> {
  const ep = await startEndpoint(handler);
  const s = await startStack(opts);
  t.teardown(async () => {
    beforeClose();
    await s.close();
    await ep.close();
  });
  return { s, ep };
}

/** Holds the first pull of `s.broker` that takes a job (now locked) until `open()`: the window in
 *  which a pull's records are on their way to disk, made as long as the test needs. */
export function holdPulls(s: Stack): { open(): void; held(): number } {
  const original = s.broker.pull.bind(s.broker);
  let open = () => {};
  const gate = new Promise<void>((resolve) => (open = resolve));
  let held = 0;
  s.broker.pull = async (...args: Parameters<typeof original>) => {
    const out = await original(...args);
    if (out.ok && out.job !== null && ++held === 1) await gate;
    return out;
  };
  return { open, held: () => held };
}
