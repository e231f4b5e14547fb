// Bearer-token authentication (seed 004 "Authentication", SPEC section 8).
//
// When config.authTokens is empty every request is let through as "anonymous". Otherwise a route
// needs `Authorization: Bearer <token>` unless its config says `auth: 'exempt'` (seed 004's list:
// GET /health, /healthz, /live, /ready, POST /gc, GET /heapstats, OPTIONS *; plus the read-only
// API docs). Tokens are compared in constant time: both sides are hashed to 32-byte SHA-256
// digests and compared with timingSafeEqual, against every configured token without an early
// exit, so neither the length nor the position of a match leaks through timing.
//
// `authenticate` is exported for the real-time layer (WebSocket upgrade, SSE, the WS Auth command).

import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { BrokerApi } from '../broker/types.js';
import type { Config } from '../config.js';
import type { Actor } from '../record/types.js';
import { clientAddress } from './context.js';
import { ApiError } from './errors.js';

const digestsByTokens = new WeakMap<readonly string[], Buffer[]>();

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function configuredDigests(config: Config): Buffer[] {
  let digests = digestsByTokens.get(config.authTokens);
  if (!digests) {
    digests = config.authTokens.map(sha256);
    digestsByTokens.set(config.authTokens, digests);
  }
  return digests;
}

/** The token of an `Authorization: Bearer <token>` header (scheme is case-insensitive), else null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match?.[1] ?? null;
}

/** True when `token` equals one of config.authTokens; constant time in the token's content. */
export function tokenMatches(token: string, config: Config): boolean {
  const digest = sha256(token);
  let matched = false;
  for (const expected of configuredDigests(config)) {
    if (timingSafeEqual(digest, expected)) matched = true;
  }
  return matched;
}

/** Whether an Authorization header value grants access: always true when auth is off. */
export function authenticate(header: string | undefined, config: Config): boolean {
  if (config.authTokens.length === 0) return true;
  const token = bearerToken(header);
  return token !== null && tokenMatches(token, config);
}

/** Actor name for a configured token: the first 8 hex digits of its SHA-256 (never the token). */
export function tokenActorName(token: string): string {
  return sha256(token).toString('hex').slice(0, 8);
}

/** Registers the onRequest hook that authenticates and sets `request.actor`. With auth off there
 *  is nothing to check: no hook runs, and `ctxOf` names the caller anonymous. */
export function registerAuth(app: FastifyInstance, config: Config, broker: BrokerApi): void {
  app.decorateRequest('actor', null);
  if (config.authTokens.length === 0) return;
  app.addHook('onRequest', (request, _reply, done) => {
    try {
      request.actor = actorFor(request, config, broker);
      done();
    } catch (error) {
      done(error as Error);
    }
  });
}

function actorFor(request: FastifyRequest, config: Config, broker: BrokerApi): Actor {
  const address = clientAddress(request);
  const anonymous = { name: 'anonymous', address };
  if (request.method === 'OPTIONS') return anonymous;
  const mode = request.routeOptions.config?.auth;
  if (mode === 'exempt') return anonymous;
  if (mode === 'metrics' && !config.metricsAuth) return anonymous;

  const token = bearerToken(request.headers.authorization);
  if (token !== null && tokenMatches(token, config)) return { name: tokenActorName(token), address };
  if (token !== null && mode === 'job-token') {
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && broker.isJobToken(id, token)) return { name: 'job-token', address };
  }
  throw ApiError.of('unauthorized');
}
