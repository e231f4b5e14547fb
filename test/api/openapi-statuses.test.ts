// /openapi.json documents exactly the error statuses each route answers: none invented, none left
// out. Over real brokers on real logs, behind buildServer with the real-time plugin and the job
// history (what main.ts serves), on 127.0.0.1 only:
//
//   - `table` names every operation of the document and, for each error status it documents, a
//     request that gets that status. The document's operations and statuses must be the table's,
//     so a new route, or a new status on a route, fails here until both say the same; and every
//     request must get its status, so no documented status is invented.
//   - generic bad requests (malformed JSON, an unknown field or query parameter, a bad queue name
//     or id, a body over MAX_BODY_BYTES, a Content-Type that is not a media type, a wrong token)
//     to every operation must get a 2xx or a status that operation documents.
//
// Where the requests are answered: `main` sets AUTH_TOKENS (401 is real), a 1 KiB MAX_BODY_BYTES
// (413), one request per client per minute (429: every request names a client of its own in
// X-Forwarded-For, the limiter's key, except the 429 probe's second one), and workersMax 1.
// `readOnly` is a broker that refuses writes (serve --until: 409), `storageFault` and `diskFull`
// are brokers whose log write failed with EIO (500) and ENOSPC (507), and `starting` is the
// startup probe main.ts listens with while the log is replayed (503). Nothing is excluded: every
// documented pair is asked for. `default` (an unexpected 500, and what the HTTP layer answers
// before any route is chosen) has no request: it promises no status.

import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { toWorkerConfig } from '../../src/api/worker-validation.js';
import type { Ctx } from '../../src/broker/types.js';
import { loadConfig } from '../../src/config.js';
import { jobIdLengthMax, queueNameLengthMax } from '../../src/constants.js';
import { JobHistory } from '../../src/history/history.js';
import { listenStartupProbe } from '../../src/startup-probe.js';
import { type BrokerFixture, startBroker } from '../fixtures/broker.js';
import { startServer } from '../fixtures/server.js';

const token = 'openapi-statuses-token';
const bodyBytesMax = 1024;
const ctx: Ctx = { actor: null };
const requestTimeoutMs = 5_000;

type ServerName = 'main' | 'readOnly' | 'storageFault' | 'diskFull' | 'starting';

interface Req {
  on?: ServerName;
  method?: string;
  path?: string;
  /** JSON-encoded, unless `raw` is given. */
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  /** Send main's token (default true on main). */
  auth?: boolean;
}

/** Asked of the operation's base request (its `base`, on the server named). */
type Generic = 'unauthorized' | 'rateLimited' | 'tooLarge' | 'notMediaType' | 'readOnly' | 'storageFault' | 'diskFull' | 'starting';

interface Row {
  /** A request the route takes: it reaches the handler, and a write reaches the broker. */
  base: Req;
  statuses: Record<number, Req | Generic | Array<Req | Generic>>;
}

// ── The table ─────────────────────────────────────────────────────────────────────────────────

const long = 'x'.repeat(Math.max(jobIdLengthMax, queueNameLengthMax) + 1);
const badQueue = 'bad%20name!';
const worker = { queue: 'w2', endpoint: { url: 'http://127.0.0.1:9/jobs', method: 'POST' } };

const everyClient = { 429: 'rateLimited', 503: 'starting' } as const;
const authed = { 401: 'unauthorized', ...everyClient } as const;
const bodyRead = { 413: 'tooLarge', 415: 'notMediaType' } as const;
const write = { 500: 'storageFault', 507: 'diskFull' } as const;

/** An action on job `id` that takes no body (cancel, promote, retry). */
function jobAction(method: string, suffix: string, conflict: Req[]): Row {
  return {
    base: { method, path: `/jobs/job-1${suffix}` },
    statuses: {
      400: [{ path: `/jobs/${long}${suffix}` }, { path: `/jobs/waiting-1${suffix}`, body: { id: 1 } }, { path: `/jobs/waiting-1${suffix}`, raw: '{bad' }],
      404: { path: `/jobs/nope${suffix}` },
      409: [...conflict, 'readOnly'],
      ...authed,
      ...bodyRead,
      ...write,
    },
  };
}

/** ack or fail: 400 for a job that is not active, 409 for a token that is not its lock's. */
function settle(verb: 'ack' | 'fail', invalid: unknown): Row {
  return {
    base: { method: 'POST', path: `/jobs/job-1/${verb}`, body: {} },
    statuses: {
      400: [{ path: `/jobs/nope/${verb}` }, { path: `/jobs/active-1/${verb}`, body: invalid }, { path: `/jobs/${long}/${verb}` }],
      409: [{ path: `/jobs/active-1/${verb}`, body: { token: 'not-the-lock' } }, 'readOnly'],
      ...authed,
      ...bodyRead,
      ...write,
    },
  };
}

/** progress and logs, at /jobs/:id and /queues/:queue/jobs/:id. */
function jobUpdates(scoped: boolean): Record<string, Row> {
  const at = (id: string, queue = 'q') => (scoped ? `/queues/${queue}/jobs/${id}` : `/jobs/${id}`);
  const prefix = scoped ? '/queues/{queue}/jobs/{id}' : '/jobs/{id}';
  // The params' 400s, and the 404s (on the queue-scoped paths, a job of another queue too).
  const params = (suffix: string, req: Req = {}): Req[] => [
    { ...req, path: `${at(long)}${suffix}` },
    ...(scoped ? [{ ...req, path: `${at('active-1', badQueue)}${suffix}` }] : []),
  ];
  const missing = (suffix: string, req: Req = {}): Req[] => [
    { ...req, path: `${at('nope')}${suffix}` },
    ...(scoped ? [{ ...req, path: `${at('active-1', 'other')}${suffix}` }] : []),
  ];
  const progress = { method: 'POST', body: 50 };
  const line = { method: 'POST', body: 'a line' };
  return {
    [`POST ${prefix}/progress`]: {
      base: { ...progress, path: `${at('job-1')}/progress` },
      statuses: {
        400: [{ path: `${at('active-1')}/progress`, body: 101 }, ...params('/progress', progress)],
        404: missing('/progress', progress),
        409: [{ path: `${at('done-1')}/progress` }, 'readOnly'],
        ...authed,
        ...bodyRead,
        ...write,
      },
    },
    [`POST ${prefix}/logs`]: {
      base: { ...line, path: `${at('job-1')}/logs` },
      statuses: { 400: [{ path: `${at('active-1')}/logs`, body: '' }, ...params('/logs', line)], 404: missing('/logs', line), 409: 'readOnly', ...authed, ...bodyRead, ...write },
    },
    [`GET ${prefix}/logs`]: {
      base: { path: `${at('job-1')}/logs` },
      statuses: { 400: [{ path: `${at('active-1')}/logs?length=0` }, ...params('/logs')], 404: missing('/logs'), ...authed },
    },
  };
}

/** A queue action on /queues/<queue>/<action>; `body` is what it takes (undefined: none). Its
 *  own 400, 404 and 409 probes come besides the common ones. */
function queueAction(action: string, body: unknown, own: { 400?: Req; 404?: Req; 409?: Req } = {}): Row {
  const path = `/queues/q/${action}`;
  const refused = body === undefined ? { path, body: { id: 1 } } : { path, body: { bogus: 1 } };
  const statuses: Row['statuses'] = {
    400: [refused, { path: `/queues/${badQueue}/${action}` }, { path, raw: '{bad' }, ...(own[400] ? [own[400]] : [])],
    409: ['readOnly', ...(own[409] ? [own[409]] : [])],
    ...authed,
    ...bodyRead,
    ...write,
  };
  if (own[404] !== undefined) statuses[404] = own[404];
  return { base: { method: 'POST', path: `/queues/q2/${action}`, ...(body === undefined ? {} : { body }) }, statuses };
}

const table: Record<string, Row> = {
  'POST /queues/{queue}/jobs': {
    base: { method: 'POST', path: '/queues/q/jobs', body: { data: 1 } },
    statuses: {
      400: [{ body: { data: 1, bogus: 1 } }, { body: [] }, { path: `/queues/${badQueue}/jobs` }, { raw: '{bad' }],
      409: [{ path: '/queues/other/jobs', body: { jobId: 'waiting-1', data: 1 } }, 'readOnly'],
      ...authed,
      ...bodyRead,
      ...write,
    },
  },
  'POST /queues/{queue}/jobs/bulk': {
    base: { method: 'POST', path: '/queues/q/jobs/bulk', body: { jobs: [{ data: 1 }] } },
    statuses: {
      400: [{ body: { jobs: [] } }, { path: `/queues/${badQueue}/jobs/bulk` }, { raw: '{bad' }],
      409: [{ path: '/queues/other/jobs/bulk', body: { jobs: [{ jobId: 'waiting-1', data: 1 }] } }, 'readOnly'],
      ...authed,
      ...bodyRead,
      ...write,
    },
  },
  'GET /queues/{queue}/jobs': {
    base: { path: '/queues/q/jobs' },
    statuses: { 400: [{ path: '/queues/q/jobs?timeout=-1' }, { path: `/queues/${badQueue}/jobs` }], 409: 'readOnly', ...authed, ...write },
  },
  'GET /queues/{queue}/jobs/list': {
    base: { path: '/queues/q/jobs/list' },
    statuses: { 400: [{ path: '/queues/q/jobs/list?statuses=nope' }, { path: `/queues/${badQueue}/jobs/list` }], ...authed },
  },
  'GET /queues/{queue}/jobs/{id}': {
    base: { path: '/queues/q/jobs/waiting-1' },
    statuses: { 400: [{ path: `/queues/q/jobs/${long}` }, { path: `/queues/${badQueue}/jobs/waiting-1` }], 404: { path: '/queues/other/jobs/waiting-1' }, ...authed },
  },
  'GET /jobs/{id}': { base: { path: '/jobs/waiting-1' }, statuses: { 400: { path: `/jobs/${long}` }, 404: { path: '/jobs/nope' }, ...authed } },
  'DELETE /jobs/{id}': jobAction('DELETE', '', []),
  'POST /jobs/{id}/ack': settle('ack', { result: 1, bogus: 1 }),
  'POST /jobs/{id}/fail': settle('fail', { error: 1 }),
  'POST /jobs/{id}/promote': jobAction('POST', '/promote', [{ path: '/jobs/waiting-1/promote' }]),
  'POST /jobs/{id}/retry': jobAction('POST', '/retry', [{ path: '/jobs/waiting-1/retry' }]),
  'PUT /jobs/{id}/priority': {
    base: { method: 'PUT', path: '/jobs/job-1/priority', body: { priority: 1 } },
    statuses: {
      400: [{ path: '/jobs/waiting-1/priority', body: { priority: 'high' } }, { path: `/jobs/${long}/priority`, body: { priority: 1 } }],
      404: { path: '/jobs/nope/priority', body: { priority: 1 } },
      409: [{ path: '/jobs/done-1/priority', body: { priority: 1 } }, 'readOnly'],
      ...authed,
      ...bodyRead,
      ...write,
    },
  },
  'GET /jobs/{id}/state': { base: { path: '/jobs/waiting-1/state' }, statuses: { 400: { path: `/jobs/${long}/state` }, 404: { path: '/jobs/nope/state' }, ...authed } },
  'GET /jobs/{id}/result': { base: { path: '/jobs/done-1/result' }, statuses: { 400: { path: `/jobs/${long}/result` }, 404: { path: '/jobs/nope/result' }, ...authed } },
  ...jobUpdates(false),
  ...jobUpdates(true),
  'GET /queues': { base: { path: '/queues' }, statuses: { ...authed } },
  'GET /queues/{queue}/counts': { base: { path: '/queues/q/counts' }, statuses: { 400: { path: `/queues/${badQueue}/counts` }, ...authed } },
  'POST /queues/{queue}/pause': queueAction('pause', undefined),
  'POST /queues/{queue}/resume': queueAction('resume', undefined),
  'GET /queues/{queue}/paused': { base: { path: '/queues/q/paused' }, statuses: { 400: { path: `/queues/${long}/paused` }, ...authed } },
  'POST /queues/{queue}/drain': queueAction('drain', undefined),
  'POST /queues/{queue}/clean': queueAction('clean', { grace: 0 }, { 400: { path: '/queues/q/clean', body: {} } }),
  'POST /queues/{queue}/obliterate': queueAction('obliterate', {}, { 409: { path: '/queues/q/obliterate', body: {} } }),
  'POST /queues/{queue}/promote-jobs': queueAction('promote-jobs', {}),
  'GET /queues/{queue}/dlq': { base: { path: '/queues/q/dlq' }, statuses: { 400: [{ path: '/queues/q/dlq?start=-1' }, { path: `/queues/${badQueue}/dlq` }], ...authed } },
  'POST /queues/{queue}/dlq/retry': queueAction('dlq/retry', {}, { 404: { path: '/queues/q/dlq/retry', body: { id: 'waiting-1' } } }),
  'POST /queues/{queue}/dlq/purge': queueAction('dlq/purge', undefined),
  'POST /workers': {
    base: { method: 'POST', path: '/workers', body: { ...worker, queue: 'q' } },
    statuses: {
      400: [{ body: { ...worker, bogus: 1 } }, { body: { ...worker, endpoint: { url: 'ftp://x', method: 'POST' } } }, { raw: '{bad' }],
      409: [{ body: worker }, 'readOnly'],
      ...authed,
      ...bodyRead,
      ...write,
    },
  },
  'GET /workers': { base: { path: '/workers' }, statuses: { ...authed } },
  'DELETE /workers/{queue}': {
    base: { method: 'DELETE', path: '/workers/q' },
    statuses: {
      400: [{ path: `/workers/${badQueue}` }, { path: '/workers/nope', raw: '{bad' }],
      404: { path: '/workers/nope' },
      409: 'readOnly',
      ...authed,
      ...bodyRead,
      ...write,
    },
  },
  'GET /health': { base: { path: '/health' }, statuses: { 503: 'starting' } },
  'GET /healthz': { base: { path: '/healthz' }, statuses: {} },
  'GET /live': { base: { path: '/live' }, statuses: {} },
  'GET /ready': { base: { path: '/ready' }, statuses: { 503: 'starting' } },
  'GET /stats': { base: { path: '/stats' }, statuses: { ...authed } },
  'GET /metrics': { base: { path: '/metrics' }, statuses: { ...authed } },
  // METRICS_AUTH is off on main: no token needed, no 401.
  'GET /prometheus': { base: { path: '/prometheus' }, statuses: { ...everyClient } },
  'POST /gc': { base: { method: 'POST', path: '/gc' }, statuses: { 400: { raw: '{bad' }, ...bodyRead, ...everyClient } },
  'GET /heapstats': {
    base: { path: '/heapstats' },
    statuses: { 400: { path: '/heapstats?snapshot=maybe' }, 401: { path: '/heapstats?snapshot=true', auth: false }, ...everyClient },
  },
  'GET /jobs/{id}/history': {
    base: { path: '/jobs/waiting-1/history' },
    statuses: { 400: [{ path: '/jobs/waiting-1/history?format=xml' }, { path: `/jobs/${long}/history` }], 404: { path: '/jobs/nope/history' }, ...authed },
  },
  'GET /events': { base: { path: '/events' }, statuses: { 400: [{ path: '/events?from=zz' }, { path: '/events?from=999999' }], ...authed } },
  'GET /events/queues/{queue}': {
    base: { path: '/events/queues/q' },
    statuses: { 400: [{ path: `/events/queues/${badQueue}` }, { path: '/events/queues/q', headers: { 'last-event-id': 'x' } }], ...authed },
  },
};

// ── Servers ───────────────────────────────────────────────────────────────────────────────────

interface Servers {
  ports: Record<ServerName, number>;
  close(): Promise<void>;
}

/** Jobs on main: done-1 completed, active-1 active, waiting-1 waiting (all in queue q); a push
 *  worker for queue w, the only one workersMax 1 allows. */
async function seedMain(fx: BrokerFixture): Promise<void> {
  const b = fx.broker;
  for (const id of ['done-1', 'active-1']) {
    const pushed = await b.push('q', { jobId: id, data: 1 }, ctx);
    const pulled = await b.pull('q', { timeoutMs: 0 }, ctx);
    if (!pushed.ok || !pulled.ok || pulled.job?.id !== id) throw new Error(`seeding ${id} failed`);
    if (id === 'done-1' && !(await b.ack(id, {}, ctx)).ok) throw new Error('ack of done-1 failed');
  }
  if (!(await b.push('q', { jobId: 'waiting-1', data: 1 }, ctx)).ok) throw new Error('push of waiting-1 failed');
  const config = toWorkerConfig({ queue: 'w', endpoint: { url: 'http://127.0.0.1:9/', method: 'POST' } });
  if (!config.ok || !(await b.registerWorker(config.config, ctx)).ok) throw new Error('worker registration failed');
}

/** A broker with job-1 in queue q, whose log's writes fail with `code` from then on. */
async function faultyBroker(dir: string, code: 'EIO' | 'ENOSPC'): Promise<BrokerFixture> {
  let armed = false;
  const fx = await startBroker({
    dir,
    fsHooks: {
      write: (_file, _bytes, real) => {
        if (armed) throw Object.assign(new Error(`${code}: injected by the test`), { code });
        return real();
      },
    },
  });
  if (!(await fx.broker.push('q', { jobId: 'job-1', data: 1 }, ctx)).ok) throw new Error('seeding job-1 failed');
  armed = true;
  const refused = await fx.broker.push('q', { data: 2 }, ctx);
  if (refused.ok) throw new Error(`the ${code} write was acknowledged`);
  return fx;
}

async function startServers(): Promise<Servers> {
  const root = await mkdtemp(join(tmpdir(), 'tapeq-openapi-statuses-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  const later = (fn: () => Promise<unknown>) => cleanups.unshift(() => fn().catch(() => undefined));
  later(() => rm(root, { recursive: true, force: true }));

  const mainFx = await startBroker({ dir: join(root, 'main'), workersMax: 1 });
  later(() => mainFx.cleanup());
  await seedMain(mainFx);
  const history = new JobHistory({ log: mainFx.log, writeFiles: false });
  history.start();
  later(() => history.close());
  const config = { ...loadConfig({}), authTokens: [token], bodyBytesMax, rateLimitMaxRequests: 1, rateLimitWindowMs: 60_000 };
  const main = await startServer({ broker: mainFx.broker, config, history, realtime: realtimePlugin({ broker: mainFx.broker, log: mainFx.log, config }) });
  later(() => main.close());

  const seeded = await startBroker({ dir: join(root, 'read-only') });
  if (!(await seeded.broker.push('q', { jobId: 'job-1', data: 1 }, ctx)).ok) throw new Error('seeding job-1 failed');
  await seeded.broker.close();
  await seeded.log.close();
  const readOnlyFx = await startBroker({ dir: join(root, 'read-only'), readOnly: true });
  later(() => readOnlyFx.cleanup());
  const open = { ...loadConfig({}), bodyBytesMax };
  const readOnly = await startServer({ broker: readOnlyFx.broker, config: open });
  later(() => readOnly.close());

  const aside: Record<'storageFault' | 'diskFull', number> = { storageFault: 0, diskFull: 0 };
  for (const [name, code] of [['storageFault', 'EIO'], ['diskFull', 'ENOSPC']] as const) {
    const fx = await faultyBroker(join(root, name), code);
    later(() => fx.cleanup());
    const s = await startServer({ broker: fx.broker, config: open });
    later(() => s.close());
    aside[name] = portOf(s.url);
  }

  const starting = await listenStartupProbe({ ...open, httpPort: 0, host: '127.0.0.1' }, () => undefined);
  later(() => starting.close());

  return {
    ports: { main: portOf(main.url), readOnly: portOf(readOnly.url), ...aside, starting: starting.port },
    async close() {
      for (const cleanup of cleanups) await cleanup();
    },
  };
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

// ── Requests ──────────────────────────────────────────────────────────────────────────────────

interface Answer {
  status: number;
  json: unknown;
}

let clients = 0;
/** A client of its own for the rate limiter (its key is the first X-Forwarded-For entry). */
const freshClient = (): string => `client-${++clients}`;

/** One request on a connection of its own. An event stream is cut once its head is read. */
function send(ports: Servers['ports'], req: Req, client = freshClient()): Promise<Answer> {
  const on = req.on ?? 'main';
  const body = req.raw ?? (req.body === undefined ? undefined : JSON.stringify(req.body));
  const headers: Record<string, string> = { 'x-forwarded-for': client };
  if (body !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) });
  if (on === 'main' && req.auth !== false) headers.authorization = `Bearer ${token}`;
  Object.assign(headers, req.headers);
  return new Promise((resolve, reject) => {
    const r = httpRequest({ host: '127.0.0.1', port: ports[on], method: req.method ?? 'GET', path: req.path, headers, agent: false, timeout: requestTimeoutMs }, (res) => {
      if (res.headers['content-type'] === 'text/event-stream') {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, json: undefined });
        return;
      }
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: parsed(text) }));
      res.on('error', reject);
    });
    r.on('timeout', () => r.destroy(new Error(`${req.method ?? 'GET'} ${req.path} took over ${requestTimeoutMs} ms`)));
    r.on('error', reject);
    r.end(body);
  });
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const big = JSON.stringify({ data: 'x'.repeat(bodyBytesMax) });

/** The request a probe stands for, and the client to send it as (the 429 probe's is spent first). */
async function probe(servers: Servers, base: Req, p: Req | Generic): Promise<Answer> {
  if (typeof p !== 'string') return send(servers.ports, { ...base, ...p });
  switch (p) {
    case 'unauthorized':
      return send(servers.ports, { ...base, auth: false });
    case 'rateLimited': {
      const client = freshClient();
      await send(servers.ports, { path: '/queues' }, client);
      return send(servers.ports, base, client);
    }
    case 'tooLarge':
      return send(servers.ports, { ...base, raw: big });
    case 'notMediaType':
      return send(servers.ports, { ...base, raw: '{}', headers: { 'content-type': 'json' } });
    case 'readOnly':
    case 'storageFault':
    case 'diskFull':
    case 'starting':
      return send(servers.ports, { ...base, on: p });
  }
}

function isEnvelope(json: unknown): boolean {
  const j = json as { ok?: unknown; error?: unknown } | undefined;
  return j?.ok === false && typeof j.error === 'string' && j.error !== '';
}

// ── The document ──────────────────────────────────────────────────────────────────────────────

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { description?: string }> }>> };

/** "METHOD /path" → its documented responses. */
function operations(doc: Doc): Map<string, Record<string, { description?: string }>> {
  const out = new Map<string, Record<string, { description?: string }>>();
  for (const [path, ops] of Object.entries(doc.paths)) for (const [method, op] of Object.entries(ops)) out.set(`${method.toUpperCase()} ${path}`, op.responses);
  return out;
}

const errorStatuses = (responses: Record<string, unknown>): number[] =>
  Object.keys(responses)
    .filter((s) => s !== 'default' && Number(s) >= 400)
    .map(Number)
    .sort((a, b) => a - b);

/** The concrete path of an operation's path template, with `values` for its parameters. */
function concrete(base: Req, template: string, param: string, value: string): Req | null {
  if (!template.includes(`{${param}}`)) return null;
  const segments = template.split('/');
  const at = segments.indexOf(`{${param}}`);
  const path = (base.path ?? '').split('?')[0]?.split('/') ?? [];
  path[at] = value;
  return { ...base, path: path.join('/') };
}

/** Bad requests any client may send: each must get a 2xx or a status the operation documents. */
function genericBadRequests(op: string, base: Req): Array<{ name: string; req: Req }> {
  const [method = 'GET', template = ''] = op.split(' ');
  const out: Array<{ name: string; req: Req }> = [
    { name: 'unknown query parameter', req: { ...base, path: `${base.path ?? ''}${base.path?.includes('?') ? '&' : '?'}bogus=1` } },
    { name: 'wrong token', req: { ...base, auth: false, headers: { authorization: 'Bearer wrong' } } },
  ];
  for (const param of ['queue', 'id']) {
    for (const [name, value] of [['invalid', badQueue], ['too long', long], ['bad percent-encoding', '%zz'], ['unknown', 'no-such-thing']] as const) {
      const req = concrete(base, template, param, value);
      if (req !== null) out.push({ name: `${name} ${param}`, req });
    }
  }
  if (method !== 'GET') {
    out.push(
      { name: 'malformed JSON', req: { ...base, raw: '{"data":' } },
      { name: 'unknown field', req: { ...base, body: { bogus: 1 } } },
      { name: 'array body', req: { ...base, body: [1, 2] } },
      { name: 'string body', req: { ...base, body: 'text' } },
      { name: `body over ${bodyBytesMax} bytes`, req: { ...base, raw: big } },
      { name: 'Content-Type not a media type', req: { ...base, raw: '{}', headers: { 'content-type': 'json' } } },
    );
  }
  return out;
}

// ── The tests ─────────────────────────────────────────────────────────────────────────────────

t.test('openapi-documents-exactly-the-error-statuses-each-route-answers', async (t) => {
  t.setTimeout(10_000);
  const started = performance.now();
  const servers = await startServers();
  t.teardown(() => servers.close());
  const doc = (await send(servers.ports, { path: '/openapi.json' })).json as Doc;
  const documented = operations(doc);

  t.same([...documented.keys()].sort(), Object.keys(table).sort(), 'the table covers every operation of the document, and only those');

  for (const [op, responses] of documented) {
    const row = table[op];
    if (row === undefined) continue;
    t.same(errorStatuses(responses), Object.keys(row.statuses).map(Number), `${op}: the error statuses documented are the table's`);
    const vague = Object.entries(responses).filter(([s, r]) => (s === 'default' || Number(s) >= 400) && !(r.description ?? '').includes(' '));
    t.same(vague.map(([s]) => s), [], `${op}: every error response says when it is answered`);
    t.ok(responses['default'], `${op}: documents the unexpected error as default`);
  }

  for (const [op, row] of Object.entries(table)) {
    for (const [status, probes] of Object.entries(row.statuses)) {
      for (const p of [probes].flat()) {
        const answer = await probe(servers, row.base, p);
        const what = typeof p === 'string' ? p : `${p.method ?? row.base.method ?? 'GET'} ${p.path ?? row.base.path}`;
        t.equal(answer.status, Number(status), `${op} answers ${status} (${what}): ${JSON.stringify(answer.json)}`);
        if (op === 'GET /ready') t.same(answer.json, { ok: false, ready: false }, `${op} ${status} body`);
        else t.ok(isEnvelope(answer.json), `${op} ${status} is the error envelope`);
      }
    }
  }
  t.comment(`statuses asked for in ${Math.round(performance.now() - started)} ms`);
});

t.test('generic-bad-requests-get-only-statuses-their-operation-documents', async (t) => {
  t.setTimeout(10_000);
  const servers = await startServers();
  t.teardown(() => servers.close());
  const documented = operations((await send(servers.ports, { path: '/openapi.json' })).json as Doc);
  const undocumented: string[] = [];
  const seen = new Set<number>();
  for (const [op, responses] of documented) {
    const base = table[op]?.base ?? { path: op.split(' ')[1] };
    // One operation's requests at once: the ones POST /gc accepts share one collection.
    const asked = genericBadRequests(op, base);
    const answers = await Promise.all(asked.map(({ req }) => send(servers.ports, req)));
    for (const [i, answer] of answers.entries()) {
      seen.add(answer.status);
      if (answer.status >= 200 && answer.status < 300) continue;
      if (!(String(answer.status) in responses)) undocumented.push(`${op} ${asked[i]?.name}: ${answer.status} ${JSON.stringify(answer.json)}`);
    }
  }
  t.same(undocumented, [], 'every status a bad request got is documented for its operation');
  t.same([...seen].filter((s) => s >= 400).sort(), [400, 401, 404, 409, 413, 415], 'the bad requests met every kind of refusal they can');
});
