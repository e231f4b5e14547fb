// The answer of a server that is up but not serving the API: the startup probe while the log is
// replayed, and the HTTP server while it drains for shutdown. Liveness probes say OK (the process
// is alive), /ready says `{ok: false, ready: false}`, every other request gets 503 with the
// standard error envelope and the CORS header, and every connection is closed after its answer so
// that a client reconnects, elsewhere or later.
//
// Draining: fastify's own answer to a request that arrives while it closes is its error object
// (`{"error":"Service Unavailable","statusCode":503,…}`, no CORS header), which breaks SPEC
// section 4's envelope. So buildServer turns that answer off (`return503OnClosing: false`) and
// `answerUnavailableWhileClosing` hands the server's requests to this responder as soon as
// closing begins. Requests already dispatched run to the end; WebSocket upgrades are not
// requests and are closed by the real-time plugin.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';

export type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

export function unavailableResponder(corsAllowOrigin: string, error: string): RequestListener {
  return (req, res) => {
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
    app.server.removeAllListeners('request');
    app.server.on('request', responder);
    done();
  });
}
