// A bare HTTP listener that holds the broker's port while the log is replayed at startup, so
// orchestrators see the process as live but not ready: /healthz and /live answer OK, /ready and
// every other path answer 503 with the standard error envelope. The composition root closes it
// right before the real server listens on the same port.

import { createServer, type Server } from 'node:http';
import { limitConnections } from './api/connection-limit.js';
import { unavailableResponder } from './api/unavailable.js';
import type { Config } from './config.js';

export interface StartupProbe {
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
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
