// A bare HTTP listener that holds the broker's port while the log is replayed at startup, so
// orchestrators see the process as live but not ready: /healthz and /live answer OK, /ready and
// every other path answer 503 with the standard error envelope. The composition root closes it
// right before the real server listens on the same port: the one the probe bound, which is the
// system's pick when HTTP_PORT is 0.

import { createServer, type Server } from 'node:http';
import { limitConnections } from './api/connection-limit.js';
import { unavailableResponder } from './api/unavailable.js';
import type { Config } from './config.js';

export interface StartupProbe {
  /** The port bound (HTTP_PORT=0 picks a free one). */
  port: number;
  close(): Promise<void>;
}

export async function listenStartupProbe(
  config: Pick<Config, 'httpPort' | 'host' | 'corsAllowOrigin' | 'maxConnections'>,
  logger: (line: string) => void,
): Promise<StartupProbe> {
  const { httpPort: port, host } = config;
  const server: Server = createServer(unavailableResponder(config.corsAllowOrigin, 'Service unavailable: replaying the log at startup'));
  limitConnections(server, config.maxConnections, logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host }, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address !== null ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
