// CORS as seed 004 specifies it: `Access-Control-Allow-Origin: <CORS_ALLOW_ORIGIN>` on every
// response (success, error, 404 alike), and a preflight answer for OPTIONS on any path: 204 with
// exactly the four headers below. The preflight route is auth-exempt (seed 004: OPTIONS *).
// The same onSend hook also writes JSON responses' type as seed 004 shows it, plain
// `application/json` (fastify adds `; charset=utf-8`): one callback hook per response instead of
// two async ones, because every push pays for it.

import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';

export const PREFLIGHT_HEADERS = {
  'access-control-allow-methods': 'GET, POST, PUT, DELETE, OPTIONS',
  'access-control-allow-headers': 'Content-Type, Authorization',
  'access-control-max-age': '86400',
} as const;

export function registerCors(app: FastifyInstance, config: Config): void {
  app.addHook('onSend', (_request, reply, payload, done) => {
    reply.header('access-control-allow-origin', config.corsAllowOrigin);
    const type = reply.getHeader('content-type');
    if (typeof type === 'string' && type.startsWith('application/json')) reply.header('content-type', 'application/json');
    done(null, payload);
  });
  const hidden = { hide: true }; // not an API operation: keep it out of the OpenAPI document
  app.options('*', { config: { auth: 'exempt', rateLimitExempt: true }, schema: hidden }, async (_request, reply) => {
    reply.code(204).headers(PREFLIGHT_HEADERS);
    return reply.send();
  });
}
