// buildServer: the fastify application of tapeq's HTTP API (SPEC section 4). It never listens;
// the composition root calls `app.listen`, tests use `inject` or listen on port 0.
//
// Request pipeline, in order:
//   onRequest  rate limit (429, when limited) → auth (401, sets request.actor; only when AUTH_TOKENS is set)
//   parse      JSON body, bounded by config.bodyBytesMax (400 / 413)
//   validate   route JSON schemas (400 naming the field), each compiled on its route's first use
//   handler    one broker call; its Outcome is mapped to a status by errors.ts
//   onSend     CORS origin header on every response; JSON Content-Type normalised
// Once app.close() begins, new requests get 503 in the error envelope (unavailable.ts). An
// upgrade request answered over HTTP instead of upgraded has its connection closed (upgrades.ts).
// A request rejected at any step before the handler never reaches the broker, so nothing is
// appended for it. The real-time plugin (deps.realtime) is registered after the hooks, so auth,
// CORS and rate limiting apply to SSE and WebSocket upgrades as well.

import { maxHeaderSize } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { replyJson } from '../broker/json-text.js';
import type { BrokerApi } from '../broker/types.js';
import type { Config } from '../config.js';
import { registerAuth } from './auth.js';
import { registerBodyParser } from './body.js';
import { PREFLIGHT_HEADERS, registerCors } from './cors.js';
import { envelope } from './errors.js';
import { clientErrorResponder, registerHttpErrors } from './http-errors.js';
import { registerDocs, registerOpenApi } from './openapi.js';
import { createLatencyMetrics } from './prometheus.js';
import { registerRateLimit } from './rate-limit.js';
import { debugRoutes } from './routes/debug.js';
import { historyRoutes, type HistorySource } from './routes/history.js';
import { jobActionRoutes } from './routes/job-actions.js';
import { jobUpdateRoutes } from './routes/job-updates.js';
import { jobRoutes } from './routes/jobs.js';
import { monitoringRoutes, type MonitoringSources } from './routes/monitoring.js';
import { queueRoutes } from './routes/queues.js';
import type { RouteDeps } from './routes/types.js';
import { workerRoutes } from './routes/workers.js';
import { answerUnavailableWhileClosing } from './unavailable.js';
import { closeUpgradesAnsweredOverHttp } from './upgrades.js';
import { lazyValidators, schemaErrorFormatter } from './validation.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Compiles up to `max` (default all) of the validators no request has needed yet (they
     *  compile lazily); returns how many it compiled. Throws, naming the route, for a schema that
     *  does not compile. */
    compileValidators(max?: number): number;
  }
}

export interface ServerDeps {
  broker: BrokerApi;
  config: Config;
  logger?: boolean;
  /** The snapshot process's pid and the scrub's status, for GET /health and /prometheus. */
  monitoring?: MonitoringSources;
  /** The real-time plugin (SSE /events, WebSocket /ws), registered in its own scope. */
  realtime?: (app: FastifyInstance) => Promise<void>;
  /** Job history (GET /jobs/:id/history); absent = the route is not served. */
  history?: HistorySource;
}

/**
 * Longest path parameter the router accepts: as long as a request line can be (Node's header size
 * limit bounds the URL), so the router never refuses one itself and an over-long name always
 * reaches validation, which answers "queue must be at most 128 characters".
 */
const paramLengthMax = maxHeaderSize;

export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const { broker, config } = deps;
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: config.bodyBytesMax,
    routerOptions: { maxParamLength: paramLengthMax },
    schemaErrorFormatter,
    // Fastify's own 503 while closing is not the error envelope: unavailable.ts answers instead.
    return503OnClosing: false,
    // A HEAD request must never change state, and fastify would run a GET route's handler for it
    // (a HEAD on the pull route pulled a job and dropped its lock token). Only the probes opt in.
    exposeHeadRoutes: false,
    clientErrorHandler: clientErrorResponder(config.corsAllowOrigin),
    // A URL the router refuses (bad percent-encoding) is answered before any hook or route runs,
    // so the CORS header and the JSON type that cors.ts's onSend hook writes are set here (as a
    // Buffer: fastify would add `; charset=utf-8` to the type of a string or an object), and a
    // preflight gets cors.ts's 204 (seed 004: OPTIONS on any path), so a browser goes on to see
    // the request's own 400 rather than a CORS failure.
    frameworkErrors: (error, request, reply) => {
      if (request.raw.method === 'OPTIONS') {
        (reply as FastifyReply).code(204).headers({ ...PREFLIGHT_HEADERS, 'access-control-allow-origin': config.corsAllowOrigin }).send();
        return;
      }
      (reply as FastifyReply)
        .code(400)
        .header('access-control-allow-origin', config.corsAllowOrigin)
        .header('content-type', 'application/json')
        .send(Buffer.from(JSON.stringify(envelope(error.message))));
    },
  });
  const validators = lazyValidators();
  app.setValidatorCompiler(validators.compiler);
  app.decorate('compileValidators', validators.compile);
  // Responses are written as the handlers built them; response schemas are documentation only.
  // A pulled job comes as its JSON text and is written as it is (json-text.ts, replyJson).
  app.setSerializerCompiler(() => replyJson);

  answerUnavailableWhileClosing(app, config.corsAllowOrigin);
  closeUpgradesAnsweredOverHttp(app);
  registerHttpErrors(app);
  registerBodyParser(app, config);
  registerRateLimit(app, config);
  registerAuth(app, config, broker);
  registerCors(app, config);
  await registerOpenApi(app, config);

  const routeDeps: RouteDeps = { broker, config, latency: createLatencyMetrics() };
  jobRoutes(app, routeDeps);
  jobActionRoutes(app, routeDeps);
  jobUpdateRoutes(app, routeDeps);
  queueRoutes(app, routeDeps);
  workerRoutes(app, routeDeps);
  monitoringRoutes(app, routeDeps, deps.monitoring);
  debugRoutes(app, routeDeps);
  if (deps.history) historyRoutes(app, deps.history, (id) => broker.getJob(id) !== null);
  if (deps.realtime) {
    const realtime = deps.realtime;
    await app.register(async (scope) => realtime(scope));
  }
  await registerDocs(app);
  return app;
}
