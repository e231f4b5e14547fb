// Outbound HTTP for push workers: the only module that imports undici.
//
// One keep-alive `Pool` per endpoint origin, created on first use and closed by `prune()` once no
// worker uses that origin any more, or by `close()`. `call()` turns one exchange into a value:
//
//   { kind: 'answered', status, contentType, contentEncoding, body, cutAtBytes }
//                                                                 the endpoint answered (any status)
//   { kind: 'timedOut', afterMs }                                 the exchange's timer ended it
//   { kind: 'unreachable', reason }                               network error
//
// Invariants:
// - One timer covers the whole exchange (connect, headers and body): when it fires the request is
//   aborted and the outcome is `timeout after <ms> ms`. undici's own headers/body timeouts are set
//   past it so ours always speaks first.
// - The response body is read chunk by chunk and never held beyond `responseBytesMax`; an endpoint
//   that sends more is cut off (the connection is destroyed, not drained) and the answer keeps its
//   status and the body's start, with `cutAtBytes` set to the limit (null when the body is whole).
// - `call()` never throws; calls may overlap freely (the pool multiplexes connections).
// - undici is loaded when the first worker needs it (`load()`), not at start-up: importing it
//   costs about 100 ms, which every restart of a broker without push workers would pay for
//   nothing. Runners wait for `loaded` before they start a call, so that the rate limiter, which
//   counts a start when the call is handed to the pool, never counts the wait for the import.

import type { Pool } from 'undici';

let undici: Promise<typeof import('undici')> | null = null;
let undiciLoaded = false;

function loadUndici(): Promise<typeof import('undici')> {
  undici ??= import('undici').then((module) => {
    undiciLoaded = true;
    return module;
  });
  return undici;
}

export interface EndpointCall {
  url: string;
  method: 'POST' | 'PUT' | 'PATCH';
  headers: Record<string, string>;
  /** Request body, already JSON text. */
  body: string;
  timeoutMs: number;
  responseBytesMax: number;
  /** Ends the exchange early (the caller no longer wants its answer). */
  signal?: AbortSignal;
}

export type CallOutcome =
  | { kind: 'answered'; status: number; contentType: string; contentEncoding: string; body: string; cutAtBytes: number | null }
  | { kind: 'timedOut'; afterMs: number }
  | { kind: 'unreachable'; reason: string };

export interface HttpClientOptions {
  /** Most sockets one pool opens to one origin. */
  connectionsPerOriginMax: number;
  /** How long an idle keep-alive socket is kept when the server sends no Keep-Alive hint. */
  keepAliveMs: number;
  /** Cap on opening one socket; an exchange's own timeout still applies when it is shorter. */
  connectTimeoutMs: number;
}

/** What a worker runner calls endpoints through (HttpClient; tests pass their own). */
export interface EndpointClient {
  /** True once a call can be handed to a pool at once (no module still loading). */
  readonly loaded: boolean;
  load(): Promise<void>;
  call(call: EndpointCall): Promise<CallOutcome>;
}

/** Slack given to undici's own timers so the exchange timer always fires first. */
const undiciTimeoutSlackMs = 1_000;

export class HttpClient implements EndpointClient {
  readonly #pools = new Map<string, Pool>();
  readonly #options: HttpClientOptions;
  #closed = false;

  constructor(options: HttpClientOptions) {
    this.#options = options;
  }

  get loaded(): boolean {
    return undiciLoaded;
  }

  async load(): Promise<void> {
    await loadUndici();
  }

  async call(call: EndpointCall): Promise<CallOutcome> {
    if (this.#closed) return { kind: 'unreachable', reason: 'http client closed' };
    let url: URL;
    try {
      url = new URL(call.url);
    } catch {
      return { kind: 'unreachable', reason: `invalid url ${call.url}` };
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, call.timeoutMs);
    const abandon = (): void => controller.abort();
    call.signal?.addEventListener('abort', abandon, { once: true });
    try {
      if (call.signal?.aborted === true) return { kind: 'unreachable', reason: 'call abandoned' };
      return await this.#exchange(url, call, controller.signal);
    } catch (error) {
      if (timedOut) return { kind: 'timedOut', afterMs: call.timeoutMs };
      if (call.signal?.aborted === true) return { kind: 'unreachable', reason: 'call abandoned' };
      return { kind: 'unreachable', reason: describeError(error, call.timeoutMs, this.#options.connectTimeoutMs) };
    } finally {
      clearTimeout(timer);
      call.signal?.removeEventListener('abort', abandon);
    }
  }

  /** Closes pools whose origin is not in `originsInUse` (they finish their in-flight requests). */
  prune(originsInUse: ReadonlySet<string>): void {
    for (const [origin, pool] of this.#pools) {
      if (originsInUse.has(origin)) continue;
      this.#pools.delete(origin);
      void pool.close().catch(() => undefined);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.close().catch(() => undefined)));
  }

  async #exchange(url: URL, call: EndpointCall, signal: AbortSignal): Promise<CallOutcome> {
    const pool = this.#pools.get(url.origin) ?? (await this.#newPool(url.origin));
    const response = await pool.request({
      path: url.pathname + url.search,
      method: call.method,
      headers: { ...call.headers, 'content-type': 'application/json' },
      body: call.body,
      signal,
      headersTimeout: call.timeoutMs + undiciTimeoutSlackMs,
      bodyTimeout: call.timeoutMs + undiciTimeoutSlackMs,
    });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let cutAtBytes: number | null = null;
    for await (const chunk of response.body as AsyncIterable<Buffer>) {
      if (bytes + chunk.length > call.responseBytesMax) {
        chunks.push(chunk.subarray(0, call.responseBytesMax - bytes));
        bytes = call.responseBytesMax;
        cutAtBytes = call.responseBytesMax;
        response.body.destroy();
        break;
      }
      bytes += chunk.length;
      chunks.push(chunk);
    }
    const contentType = response.headers['content-type'];
    const contentEncoding = response.headers['content-encoding'];
    return {
      kind: 'answered',
      status: response.statusCode,
      contentType: typeof contentType === 'string' ? contentType : '',
      contentEncoding: typeof contentEncoding === 'string' ? contentEncoding : '',
      body: Buffer.concat(chunks, bytes).toString('utf8'),
      cutAtBytes,
    };
  }

  async #newPool(origin: string): Promise<Pool> {
    const { Pool } = await loadUndici();
    // Another call may have created it while the module loaded.
    let pool = this.#pools.get(origin);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: this.#options.connectionsPerOriginMax,
        pipelining: 1,
        keepAliveTimeout: this.#options.keepAliveMs,
        keepAliveMaxTimeout: this.#options.keepAliveMs * 15,
        connectTimeout: this.#options.connectTimeoutMs,
      });
      this.#pools.set(origin, pool);
    }
    return pool;
  }
}

/** Node/undici errors carry a useful message ("connect ECONNREFUSED 127.0.0.1:1234"). The
 *  connect cap is its own limit: when it ends a call, the call's longer timeout had not passed. */
function describeError(error: unknown, timeoutMs: number, connectTimeoutMs: number): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as { code?: unknown }).code;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return `connect timeout after ${connectTimeoutMs} ms`;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return `timeout after ${timeoutMs} ms`;
  const message = error.message !== '' ? error.message : error.name;
  return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
}
