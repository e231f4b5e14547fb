// Turns every failure the framework can produce into the seed-004 envelope, and answers requests
// no route takes: unknown path → 404 "Not found"; known path with another method → 405
// "Method not allowed" with an Allow header. Fastify itself answers 404 for a wrong method, so
// the route table is kept here (from onRoute) to tell the two apart. A route of the request's
// own method that finds nothing (the docs' static files call reply.callNotFound()) is a 404: a
// 405 there named the very method that was used in its Allow header. (The JSON Content-Type is
// normalised to `application/json` in cors.ts's onSend hook.) Requests Node's HTTP parser refuses
// before any route sees them (a malformed request line or header, conflicting lengths, headers
// over the limit) get the envelope too, from `clientErrorResponder`.

import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { API_ERRORS, ApiError, envelope } from './errors.js';

/** fastify's `clientErrorHandler`: answers what Node's HTTP parser refused with the error envelope
 *  and the CORS header, then closes the connection (its framing can no longer be trusted). */
export function clientErrorResponder(corsAllowOrigin: string): (error: Error & { code?: string }, socket: Socket) => void {
  return (error, socket) => {
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const { status, error: text } =
      error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? API_ERRORS.requestTimeout
        : error.code === 'HPE_HEADER_OVERFLOW'
          ? API_ERRORS.headersTooLarge
          : API_ERRORS.malformedRequest;
    const body = JSON.stringify(envelope(text));
    if (socket.writable) {
      socket.write(
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: application/json\r\n` +
          `access-control-allow-origin: ${corsAllowOrigin}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
          `connection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}

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
    if (allowed.length === 0 || allowed.includes(request.method)) return reply.code(404).send(envelope(API_ERRORS.notFound.error));
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
  // Fastify refuses a Content-Type header it cannot read as type/subtype before any body parser
  // runs; its own text, "Unsupported Media Type", did not say which header was wrong or how.
  if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return reply.code(API_ERRORS.contentTypeInvalid.status).send(envelope(API_ERRORS.contentTypeInvalid.error));
  }
  const status = error.statusCode ?? 500;
  if (status >= 400 && status < 500) return reply.code(status).send(envelope(error.message));
  request.log.error({ err: error }, 'request failed');
  return reply.code(API_ERRORS.internal.status).send(envelope(API_ERRORS.internal.error));
}
