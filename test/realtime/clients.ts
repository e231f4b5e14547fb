// Real clients for the real-time tests: an SSE reader over node:http (a parser of the wire format
// with pause/resume for slow-consumer tests) and a WebSocket wrapper over `ws` with reqId
// correlation. Every wait is bounded by a timeout so a broken server fails a test, not the run.

import { request as httpRequest, type IncomingMessage } from 'node:http';
import WebSocket from 'ws';

export interface SseMessage {
  id: string | null;
  event: string | null;
  data: string;
}

type Waiter<T> = { match: (m: T) => boolean; resolve: (m: T) => void };

/** Messages arriving over time, with bounded waits for one matching a predicate. */
class Inbox<T> {
  readonly all: T[] = [];
  #waiters: Array<Waiter<T>> = [];
  #cursor = 0;

  push(message: T): void {
    this.all.push(message);
    this.#waiters = this.#waiters.filter((w) => (w.match(message) ? (w.resolve(message), false) : true));
  }

  /** Any message, taken or not, matching `match` (for unique keys such as reqId). */
  async find(match: (m: T) => boolean, timeoutMs = 5_000, what = 'message'): Promise<T> {
    const seen = this.all.find(match);
    if (seen !== undefined) return seen;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.#waiters.push({ match, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  /** The next message (after those already taken) matching `match`. */
  async take(match: (m: T) => boolean = () => true, timeoutMs = 5_000, what = 'message'): Promise<T> {
    for (; this.#cursor < this.all.length; ) {
      const m = this.all[this.#cursor++] as T;
      if (match(m)) return m;
    }
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      this.#waiters.push({
        match,
        resolve: (m) => {
          clearTimeout(timer);
          this.#cursor = this.all.length;
          resolve(m);
        },
      });
    });
  }
}

export class SseClient {
  readonly inbox = new Inbox<SseMessage>();
  comments = 0;
  readonly closed: Promise<void>;
  #buffer = '';

  private constructor(readonly response: IncomingMessage) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.#feed(chunk));
    this.closed = new Promise((resolve) => {
      response.on('close', () => resolve());
      response.on('error', () => resolve());
    });
  }

  static connect(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false });
      req.setTimeout(10_000, () => req.destroy(new Error('SSE connect timed out')));
      req.on('response', (res) => resolve(new SseClient(res)));
      req.on('error', reject);
      req.end();
    });
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  /** The whole body of a non-stream (error) response. */
  async body(): Promise<string> {
    await this.closed;
    return this.#buffer;
  }

  /** Next data message that is a job event (skips `connected`, which has an id too). */
  async nextEvent(timeoutMs = 5_000): Promise<{ id: number; event: Record<string, unknown> }> {
    const isEvent = (x: SseMessage): boolean => x.event === null && x.id !== null && !x.data.startsWith('{"connected":');
    const m = await this.inbox.take(isEvent, timeoutMs, 'an SSE event');
    return { id: Number(m.id), event: JSON.parse(m.data) as Record<string, unknown> };
  }

  pause(): void {
    this.response.pause();
  }

  resume(): void {
    this.response.resume();
  }

  close(): void {
    this.response.destroy();
  }

  #feed(chunk: string): void {
    this.#buffer += chunk;
    if (!(this.response.headers['content-type'] ?? '').startsWith('text/event-stream')) return;
    for (let end = this.#buffer.indexOf('\n\n'); end >= 0; end = this.#buffer.indexOf('\n\n')) {
      const block = this.#buffer.slice(0, end);
      this.#buffer = this.#buffer.slice(end + 2);
      this.#parse(block);
    }
  }

  #parse(block: string): void {
    const message: SseMessage = { id: null, event: null, data: '' };
    let hasData = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.comments += 1;
        continue;
      }
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') message.id = value;
      else if (field === 'event') message.event = value;
      else if (field === 'data') {
        message.data = hasData ? `${message.data}\n${value}` : value;
        hasData = true;
      }
    }
    if (hasData) this.inbox.push(message);
  }
}

export type WsMessage = Record<string, unknown>;

export class WsClient {
  readonly inbox = new Inbox<WsMessage>();
  readonly closed: Promise<{ code: number; reason: string }>;
  #nextReqId = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => this.inbox.push(JSON.parse(String(data)) as WsMessage));
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: String(reason) })));
  }

  /** Opens a socket; rejects with the HTTP status and body when the upgrade is refused. */
  static connect(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(url, { headers, handshakeTimeout: 5_000 });
      socket.once('open', () => resolve(new WsClient(socket)));
      socket.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.once('end', () => reject(new UpgradeRefused(res.statusCode ?? 0, body)));
        res.once('close', () => reject(new UpgradeRefused(res.statusCode ?? 0, body)));
      });
      socket.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Sends a command with a fresh reqId and waits for the reply carrying it. */
  async command(message: Record<string, unknown>, timeoutMs = 5_000): Promise<WsMessage> {
    const reqId = `r${++this.#nextReqId}`;
    this.send({ ...message, reqId });
    return this.reply(reqId, timeoutMs);
  }

  reply(reqId: unknown, timeoutMs = 5_000): Promise<WsMessage> {
    return this.inbox.find((m) => m.reqId === reqId, timeoutMs, `reply ${String(reqId)}`);
  }

  nextEvent(timeoutMs = 5_000): Promise<WsMessage> {
    return this.inbox.take((m) => typeof m.eventType === 'string', timeoutMs, 'a WS event');
  }

  close(): Promise<{ code: number; reason: string }> {
    this.socket.close();
    return this.closed;
  }
}

export class UpgradeRefused extends Error {
  /** `body`: the refusal's response body (the error envelope). */
  constructor(
    readonly status: number,
    readonly body = '',
  ) {
    super(`upgrade refused with ${status}`);
  }
}
