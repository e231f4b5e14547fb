// Turns every failure the framework can produce into the seed-004 envelope, and answers requests
// no route takes: unknown path → 404 "Not found"; known path with another method → 405
// "Method not allowed" with an Allow header. Fastify itself answers 404 for a wrong method, so
// the route table is kept here (from onRoute) to tell the two apart. (The JSON Content-Type is
// normalised to `application/json` in cors.ts's onSend hook.)

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_ERRORS, ApiError, envelope } from './errors.js';

interface KnownRoute {
  method: string;
  pattern: RegExp;
}

function patternOf(url: string): RegExp {
  const source = url
    .split('/')
    .map((part) => (part.startsWith(':') ? '[^/]+' : part === '*' ? '.*' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}$`);
}

export function registerHttpErrors(app: FastifyInstance): void {
  const routes: KnownRoute[] = [];
  app.addHook('onRoute', (route) => {
    if (route.url === '*' || route.url === '/*') return; // the CORS preflight catch-all
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) routes.push({ method, pattern: patternOf(route.url) });
  });

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = [...new Set(routes.filter((r) => r.pattern.test(path)).map((r) => r.method))];
    if (allowed.length === 0) return reply.code(404).send(envelope(API_ERRORS.notFound.error));
    allowed.push('OPTIONS');
    const { status, error } = API_ERRORS.methodNotAllowed;
    return reply.code(status).header('allow', allowed.join(', ')).send(envelope(error));
  });

  app.setErrorHandler(async (error: FastifyError, request, reply) => replyError(error, request, reply));
}

function replyError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (error.validation) return reply.code(400).send(envelope(error.message));
  if (error instanceof ApiError) return reply.code(error.statusCode).send(envelope(error.message));
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return reply.code(API_ERRORS.bodyTooLarge.status).send(envelope(API_ERRORS.bodyTooLarge.error));
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return reply.code(status).send(envelope(error.message));
  request.log.error({ err: error }, 'request failed');
  return reply.code(API_ERRORS.internal.status).send(envelope(API_ERRORS.internal.error));
}
