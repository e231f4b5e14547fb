// A bare HTTP listener that holds the broker's port while the log is replayed at startup, so
// orchestrators see the process as live but not ready: /healthz and /live answer OK, /ready and
// every other path answer 503 with the standard error envelope. The composition root closes it
// right before the real server listens on the same port.

import { createServer, type Server } from 'node:http';

export interface StartupProbe {
  close(): Promise<void>;
}

export async function listenStartupProbe(port: number, host: string, corsAllowOrigin: string): Promise<StartupProbe> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/live') {
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Access-Control-Allow-Origin': corsAllowOrigin });
      res.end('OK');
      return;
    }
    const body =
      path === '/ready'
        ? { ok: false, ready: false }
        : { ok: false, error: 'Service unavailable: replaying the log at startup' };
    res.writeHead(503, {
      'Content-Type': 'application/json',
      'Access-Control-Allow-Origin': corsAllowOrigin,
      'Retry-After': '1',
      Connection: 'close',
    });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => resolve());
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
