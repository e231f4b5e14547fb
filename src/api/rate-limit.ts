// Per-client-IP rate limiting (seed 004 "Rate Limiting"): at most config.rateLimitMaxRequests
// requests in any config.rateLimitWindowMs sliding window, else 429 `Rate limit exceeded` with a
// Retry-After header. The client is keyed by forwardedIp() (first X-Forwarded-For entry, else
// X-Real-IP, else "unknown"), exactly as the seed says. Health probes are exempt.
//
// Bounded memory: each tracked IP holds a ring of `bucketsPerWindow` counters (the window split
// into equal slices), so the window slides in slices of windowMs/bucketsPerWindow and an IP costs
// the same however high the limit is: about 2.1 KB with its key and map entry (measured; the two
// typed arrays' backing stores are most of it), so ~210 MB at the cap. At most
// `rateLimitTrackedIpsMax` IPs are tracked; past that the least recently seen IP is forgotten.
// A cleanup timer (every rateLimitCleanupMs, unref'd, cleared on
// close) drops IPs with no request in the last window. Disabled when the limit is Infinity.
// Windows are elapsed time, read from the monotonic clock: on the wall clock a step back left the
// slots counted before it in the window, and a client at its limit refused, for the step's length.

import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { rateLimitTrackedIpsMax } from '../constants.js';
import { forwardedIp } from './context.js';
import { API_ERRORS, envelope } from './errors.js';

export const bucketsPerWindow = 60;

interface Client {
  /** Slice number (floor(now / (windowMs / bucketsPerWindow))) each ring slot counts; a slot is stale when too old. */
  slices: Float64Array;
  counts: Uint32Array;
  lastSlice: number;
}

export class SlidingWindowLimiter {
  private readonly clients = new Map<string, Client>();

  constructor(
    private readonly windowMs: number,
    private readonly maxRequests: number,
    private readonly ipsMax: number = rateLimitTrackedIpsMax,
  ) {}

  /** Multiply before dividing so slice boundaries are exact (1000 / (1000/60) is 59.99…). */
  private sliceOf(nowMs: number): number {
    return Math.floor((nowMs * bucketsPerWindow) / this.windowMs);
  }

  get trackedCount(): number {
    return this.clients.size;
  }

  /** Counts the request if allowed; returns 0 when allowed, else ms until a slot frees up. */
  hit(key: string, nowMs: number): number {
    const slice = this.sliceOf(nowMs);
    const client = this.touch(key, slice);
    let total = 0;
    let oldest = slice;
    for (let i = 0; i < bucketsPerWindow; i++) {
      const s = client.slices[i] ?? -1;
      const count = client.counts[i] ?? 0;
      if (count > 0 && s > slice - bucketsPerWindow) {
        total += count;
        if (s < oldest) oldest = s;
      }
    }
    if (total >= this.maxRequests) {
      return Math.max(1, Math.ceil(((oldest + bucketsPerWindow) * this.windowMs) / bucketsPerWindow - nowMs));
    }
    const slot = slice % bucketsPerWindow;
    if (client.slices[slot] !== slice) {
      client.slices[slot] = slice;
      client.counts[slot] = 0;
    }
    client.counts[slot] = (client.counts[slot] ?? 0) + 1;
    return 0;
  }

  /** Forgets clients with no request inside the window. */
  cleanup(nowMs: number): void {
    const slice = this.sliceOf(nowMs);
    for (const [key, client] of this.clients) {
      if (client.lastSlice <= slice - bucketsPerWindow) this.clients.delete(key);
    }
  }

  private touch(key: string, slice: number): Client {
    let client = this.clients.get(key);
    if (client) {
      this.clients.delete(key); // re-insert: Map order is least recently seen first
    } else {
      if (this.clients.size >= this.ipsMax) {
        const leastRecent = this.clients.keys().next();
        if (!leastRecent.done) this.clients.delete(leastRecent.value);
      }
      client = {
        slices: new Float64Array(bucketsPerWindow).fill(-1),
        counts: new Uint32Array(bucketsPerWindow),
        lastSlice: slice,
      };
    }
    client.lastSlice = slice;
    this.clients.set(key, client);
    return client;
  }
}

export function registerRateLimit(app: FastifyInstance, config: Config): void {
  if (!Number.isFinite(config.rateLimitMaxRequests)) return;
  const limiter = new SlidingWindowLimiter(config.rateLimitWindowMs, config.rateLimitMaxRequests);
  const timer = setInterval(() => limiter.cleanup(performance.now()), config.rateLimitCleanupMs);
  timer.unref();
  app.addHook('onClose', async () => clearInterval(timer));

  app.addHook('onRequest', async (request, reply) => {
    if (request.routeOptions.config?.rateLimitExempt) return;
    const waitMs = limiter.hit(forwardedIp(request), performance.now());
    if (waitMs === 0) return;
    const { status, error } = API_ERRORS.rateLimited;
    return reply
      .code(status)
      .header('retry-after', String(Math.ceil(waitMs / 1000)))
      .send(envelope(error));
  });
}
