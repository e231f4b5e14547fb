// The real-time plugin: SSE (`/events`, `/events/queues/:queue`) and WebSocket (`/ws`,
// `/ws/queues/:queue`), both streaming events straight off the log tail (subscription.ts).
//
// buildServer() registers it after its auth, CORS and rate-limit hooks. It registers
// @fastify/websocket itself (frames bounded by wsFrameBytesMax) unless the parent already did, in
// which case it must not compress: a session writes its push replies as ready-made frames beside
// `ws`'s own sends (frames.ts), which compressed sends, made later, would fall behind. On
// close it ends every SSE stream (and drops cut-off clients still reading their final message),
// which fastify would otherwise wait for, and closes every WebSocket session with a final
// message and 1001 "going away" (@fastify/websocket's own pre-close would close them without a
// code, which clients see as 1005), releasing the jobs each one holds before fastify's close
// resolves: main.ts closes the broker next, and a client's close frame arriving after that could
// no longer append the release.

import websocket from '@fastify/websocket';
import type { FastifyInstance } from 'fastify';
import type { RealtimeDeps, RealtimeOptions } from './deps.js';
import { realtimeLimitsDefault } from './limits.js';
import { registerSse } from './sse.js';
import { registerWs } from './ws.js';

export type { RealtimeOptions } from './deps.js';
export type { RealtimeLimits } from './limits.js';
export type { RealtimeLog } from './subscription.js';

export function realtimePlugin(options: RealtimeOptions): (app: FastifyInstance) => Promise<void> {
  const deps: RealtimeDeps = {
    broker: options.broker,
    log: options.log,
    config: options.config,
    limits: { ...realtimeLimitsDefault, ...options.limits },
  };
  return async (app) => {
    if (!app.hasDecorator('websocketServer')) {
      await app.register(websocket, {
        options: { maxPayload: deps.limits.wsFrameBytesMax, perMessageDeflate: false },
        // No new upgrades; the open sockets are the sessions' to close (the preClose hook below).
        preClose(this: FastifyInstance, done: () => void) {
          this.websocketServer.close();
          done();
        },
      });
    } else if (app.websocketServer.options.perMessageDeflate !== false) {
      throw new Error('realtime: the parent registered @fastify/websocket with perMessageDeflate; the WebSocket API needs it off');
    }
    /** How to stop each open SSE response: end its stream, or drop a cut-off client in its grace. */
    const streams = new Set<() => void>();
    /** How to close each open WebSocket session; settles once its jobs are released. */
    const sessions = new Set<() => Promise<void>>();
    app.addHook('preClose', async () => {
      for (const stop of [...streams]) stop();
      await Promise.all([...sessions].map((goAway) => goAway()));
    });
    registerSse(app, deps, streams);
    registerWs(app, deps, sessions);
  };
}
