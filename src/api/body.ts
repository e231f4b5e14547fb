// Request body parsing. Every body is parsed as JSON whatever media type its Content-Type names
// (bunqueue and BullMQ Proxy clients often send JSON with curl's default form type); a
// Content-Type that is not a media type at all (`json`, an empty value) fastify refuses before
// any parser runs, with 415 (http-errors.ts names the header). The rules:
// - any JSON value is a valid body: progress takes `100`, logs take `"text"` (SPEC section 4);
// - an empty body is "no body"; routes whose body is optional use `emptyBodyAsObject`, routes
//   that take none use `noBody` (a body with fields is refused, never ignored);
// - malformed JSON, and `__proto__` / `constructor.prototype` keys, are 400 "Invalid JSON body";
// - more than config.bodyBytesMax bytes is 413, checked against Content-Length before reading and
//   while streaming, so an oversized body is never buffered whole;
// - the body of a request no route takes (the not-found handler's 404 / 405) and of an OPTIONS
//   (the CORS preflight's 204) is read within that bound but not parsed: no route would use it,
//   and a malformed one must not turn those answers into 400 "Invalid JSON body";
// - a route with `config.plainJsonBody` (the one-job push) first tries plain-json.ts, which keeps
//   the data's text for the log instead of parsing it into objects; a body it does not take, and
//   any body with `__proto__` or `constructor` in it, goes through the JSON parser as above.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import { unknownFieldError } from '../broker/validate.js';
import { ApiError } from './errors.js';
import { parsePlainObject } from './plain-json.js';

export function registerBodyParser(app: FastifyInstance, config: Config): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string', bodyLimit: config.bodyBytesMax }, (request, body, done) => {
    if (request.is404 || request.method === 'OPTIONS') {
      done(null, undefined);
      return;
    }
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    if (request.routeOptions.config?.plainJsonBody === true && !text.includes('__proto__') && !text.includes('constructor')) {
      const plain = parsePlainObject(text);
      if (plain !== null) {
        done(null, plain);
        return;
      }
    }
    parseJson(request, text, (error, value) => {
      if (error) done(ApiError.of('invalidJson'), undefined);
      else done(null, value);
    });
  });
}

/** preValidation for routes whose body is optional (ack, fail, clean, …): no body means `{}`. */
export async function emptyBodyAsObject(request: FastifyRequest): Promise<void> {
  if (request.body === undefined || request.body === null) request.body = {};
}

/**
 * preValidation for routes that take no body (pause, drain, dlq/purge, promote, cancel, gc, …): no
 * body, `null` and `{}` pass; anything else is refused in the schema errors' words, since an
 * ignored field changes what the request does (`dlq/purge {"id": …}` would purge every job).
 * A hook rather than a body schema: the OpenAPI document keeps these routes without a body.
 */
export async function noBody(request: FastifyRequest): Promise<void> {
  const body: unknown = request.body;
  if (body === undefined || body === null) return;
  if (typeof body !== 'object' || Array.isArray(body)) throw ApiError.badRequest('body must be an object');
  const field = Object.keys(body)[0];
  if (field !== undefined) throw ApiError.badRequest(unknownFieldError(field));
}
