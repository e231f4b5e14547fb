// The answer of a server that is up but not serving the API: the startup probe while the log is
// replayed, and the HTTP server while it drains for shutdown. Liveness probes say OK (the process
// is alive), /ready says `{ok: false, ready: false}`, a CORS preflight gets the API's 204, every
// other request gets 503 with the standard error envelope and the CORS header, and every
// connection is closed after its answer so that a client reconnects, elsewhere or later.
//
// Draining: fastify's own answer to a request that arrives while it closes is its error object
// (`{"error":"Service Unavailable","statusCode":503,…}`, no CORS header), which breaks SPEC
// section 4's envelope. So buildServer turns that answer off (`return503OnClosing: false`) and
// `answerUnavailableWhileClosing` hands the server's requests to this responder as soon as
// closing begins. Requests already dispatched run to the end, and their keep-alive connections are
// closed once they are answered and idle. A WebSocket upgrade is not a
// 'request' event but an 'upgrade' one: it gets the same answer (the WebSocket server is closed
// by then; routed on, an upgrade sent behind a request still running on its connection found the
// socket taken, was never answered, and held the connection, and so the shutdown, open).

import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { closingIdleSweepMs } from '../constants.js';
import { PREFLIGHT_HEADERS } from './cors.js';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export function unavailableResponder(corsAllowOrigin: string, error: string): RequestListener {
  return (req, res) => {
    if (req.method === 'OPTIONS') {
      // A browser's preflight gets the API's answer, so that the request after it reaches this
      // responder and the page sees the 503 envelope, not a CORS failure.
      res.writeHead(204, { ...PREFLIGHT_HEADERS, 'Access-Control-Allow-Origin': corsAllowOrigin, Connection: 'close' });
      res.end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    const live = path === '/healthz' || path === '/live';
    const body = live ? 'OK' : JSON.stringify(path === '/ready' ? { ok: false, ready: false } : { ok: false, error });
    res.writeHead(live ? 200 : 503, {
      'Content-Type': live ? 'text/plain' : 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'Access-Control-Allow-Origin': corsAllowOrigin,
      ...(live ? {} : { 'Retry-After': '1' }),
      // Even after an OK: a connection left open would hold a closing server up until it idles out.
      Connection: 'close',
    });
    res.end(body);
  };
}

const drainingError = 'Service unavailable: shutting down';

/** From the moment `app.close()` begins, every new request on a still-open connection is
 *  answered by unavailableResponder instead of the API. Register it before any other preClose
 *  hook: hooks run in order, and a request that arrives before it runs is served as usual. */
export function answerUnavailableWhileClosing(app: FastifyInstance, corsAllowOrigin: string): void {
  const responder = unavailableResponder(corsAllowOrigin, drainingError);
  app.addHook('preClose', (done) => {
    // fastify closes the connections idle when closing begins; one whose request was under way
    // then (a drain going through its steps, any write waiting for its sync) turns idle once
    // answered, and would hold the close open until the client left or the keep-alive timeout
    // (72 s) ended it, past the shutdown grace. So idle ones are closed every closingIdleSweepMs
    // until the server has closed (a timer while closing rather than a hook on every response). A
    // request already sent behind it is not idle, and gets the answer below.
    const sweep = setInterval(() => app.server.closeIdleConnections(), closingIdleSweepMs);
    sweep.unref();
    app.server.once('close', () => clearInterval(sweep));
    app.server.removeAllListeners('request');
    app.server.on('request', responder);
    app.server.removeAllListeners('upgrade');
    app.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => answerUpgrade(responder, req, socket as Socket));
    done();
  });
}

/** Answers an upgrade request as a request, then closes its connection. Node hands an upgrade
 *  over as soon as it is parsed, also while an earlier request's response on the same connection
 *  is still to be written (pipelined): the answer waits for that response to finish. */
function answerUpgrade(responder: RequestListener, req: IncomingMessage, socket: Socket): void {
  socket.on('error', () => socket.destroy());
  const answer = (): void => {
    if (socket.destroyed) return;
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    res.once('finish', () => socket.end());
    responder(req, res);
  };
  // Node's own field for the response that has the socket (http.ServerResponse#assignSocket).
  const busy = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (busy !== null && busy !== undefined && !busy.writableFinished) busy.once('finish', () => setImmediate(answer));
  else answer();
}
