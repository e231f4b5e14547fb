// Per-request context shared by the hooks and the routes: who is calling (the actor stored in
// every record the request appends) and where from. The auth hook fills `request.actor` when
// auth is on; routes turn it into the broker's Ctx with `ctxOf`.

import type { FastifyRequest } from 'fastify';
import type { Ctx } from '../broker/types.js';
import { clientAddressLengthMax } from '../constants.js';
import type { Actor } from '../record/types.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the auth hook when AUTH_TOKENS is configured; null with auth off. */
    actor: Actor | null;
  }
  interface FastifyContextConfig {
    /**
     * How the auth hook treats the route (absent = a bearer token from AUTH_TOKENS is required):
     * - 'exempt': health probes, debug endpoints, API docs (seed 004's exempt list);
     * - 'metrics': /prometheus, which needs a token only when config.metricsAuth;
     * - 'job-token': progress/logs, which also accept the job's lock token while it is active.
     */
    auth?: 'exempt' | 'metrics' | 'job-token';
    /** Health probes are not rate limited. */
    rateLimitExempt?: boolean;
    /** The body may be read by plain-json.ts (body.ts): a push whose data goes to the log as text. */
    plainJsonBody?: boolean;
  }
}

/**
 * The client address as seed 004 defines it for rate limiting: the first X-Forwarded-For entry,
 * else X-Real-IP, else "unknown". These headers are client-controlled; deploy behind a proxy
 * that overwrites them if the limit must hold against hostile clients. Whatever they hold, the
 * result is at most clientAddressLengthMax characters: it is a key the rate limiter keeps for
 * up to rateLimitTrackedIpsMax clients, and the address recorded with every request's records.
 */
export function forwardedIp(request: FastifyRequest): string {
  const forwarded = headerValue(request.headers['x-forwarded-for']);
  const first = forwarded?.split(',', 1)[0]?.trim();
  if (first) return detached(first);
  const realIp = headerValue(request.headers['x-real-ip'])?.trim();
  if (realIp) return detached(realIp);
  return 'unknown';
}

/** The first clientAddressLengthMax characters of a header's text, as a string of their own: V8
 *  makes a slice of a long string a view that keeps the whole header alive for as long as the
 *  slice is kept. Header text is Latin-1 (Node decodes it so), so the round trip is exact. */
function detached(text: string): string {
  return Buffer.from(text.slice(0, clientAddressLengthMax), 'latin1').toString('latin1');
}

/** The address recorded in the actor: the forwarded address, else the socket's peer address. */
export function clientAddress(request: FastifyRequest): string {
  const forwarded = forwardedIp(request);
  return forwarded !== 'unknown' ? forwarded : (request.socket.remoteAddress ?? 'unknown');
}

export function ctxOf(request: FastifyRequest, owner?: string): Ctx {
  const actor = request.actor ?? { name: 'anonymous', address: clientAddress(request) };
  return owner === undefined ? { actor } : { actor, owner };
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
