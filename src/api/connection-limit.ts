// MAX_CONNECTIONS on a listening HTTP server: Node accepts a connection past the limit and closes
// it at once, so a flood of clients (held WebSockets, idle sockets) costs the process no lasting
// descriptor and the log keeps the ones it needs to roll segments. Refusals are reported in one
// line at most every dropLogIntervalMs, with how many there were since the last line.

import type { Server } from 'node:http';

const dropLogIntervalMs = 10_000;

export function limitConnections(server: Server, max: number, logger: (line: string) => void): void {
  server.maxConnections = max;
  let dropped = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  server.on('drop', () => {
    dropped++;
    const now = performance.now();
    if (now - loggedAt < dropLogIntervalMs) return;
    logger(`tapeq: refused ${dropped} connection(s): MAX_CONNECTIONS (${max}) are open`);
    dropped = 0;
    loggedAt = now;
  });
}
