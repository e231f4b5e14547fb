// A real HTTP endpoint on 127.0.0.1:<ephemeral port> for push-worker tests. It records every call
// (arrival time, parsed body, headers), tracks how many calls are open at once, and lets the test
// decide the answer per call. close() destroys open sockets so a test never hangs on it.
//
// Test files run in parallel processes, and an ephemeral port one of them has just closed (or
// took as a "dead" port) can be handed to this endpoint; a request another test still sends to its
// old port then lands here. Only calls to this endpoint's path with a JSON body are calls: anything
// else is answered 404 or 400 and neither recorded nor counted, so it cannot fail the test that
// owns the endpoint.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface EndpointCallRecord {
  atMs: number;
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: { job: { id: string; data: unknown; [k: string]: unknown }; token: string };
}

export type Handler = (call: EndpointCallRecord, res: ServerResponse) => void | Promise<void>;

export interface Endpoint {
  url: string;
  port: number;
  calls: EndpointCallRecord[];
  /** Calls whose response has not finished yet. */
  open(): number;
  /** The most calls ever open at once. */
  openMax(): number;
  /** TCP connections that carried at least one call. */
  connections(): number;
  close(): Promise<void>;
}

export async function startEndpoint(handler: Handler, path = '/hook'): Promise<Endpoint> {
  const calls: EndpointCallRecord[] = [];
  const sockets = new Set<Socket>();
  let open = 0;
  let openMax = 0;
  let connections = 0;
  const callSockets = new WeakSet<Socket>();
  const server = createServer((req, res) => {
    if (req.method === 'GET' || new URL(req.url ?? '/', 'http://x').pathname !== path) {
      req.resume();
      res.writeHead(404).end();
      return;
    }
    open += 1;
    openMax = Math.max(openMax, open);
    res.on('close', () => {
      open -= 1;
    });
    const atMs = Date.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: EndpointCallRecord['body'];
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as EndpointCallRecord['body'];
      } catch {
        res.writeHead(400).end();
        return;
      }
      if (!callSockets.has(req.socket)) {
        callSockets.add(req.socket);
        connections += 1;
      }
      const call: EndpointCallRecord = { atMs, method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      calls.push(call);
      Promise.resolve(handler(call, res)).catch((error: unknown) => {
        res.destroy(error instanceof Error ? error : new Error(String(error)));
      });
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    calls,
    open: () => open,
    openMax: () => openMax,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function text(res: ServerResponse, status: number, value: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(value) });
  res.end(value);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 10 ms until it returns true, or throws after `ms` naming `what`. */
export async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** A port nothing listens on (bound, then closed). */
export async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
