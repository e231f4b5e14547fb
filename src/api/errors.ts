// Every error the HTTP layer can answer, defined once: broker outcome codes → HTTP statuses, and
// the API's own rejections (parsing, routing, auth, rate limit) with their status and exact text.
// Routes never pick a status themselves; they pass a broker Outcome or an ApiError here.
//
// Error bodies are always the seed-004 envelope `{"ok": false, "error": "..."}`.

import type { FastifyReply } from 'fastify';
import type { ErrorCode, Outcome } from '../broker/types.js';
import { historyJsonLengthMax } from '../constants.js';

export const STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  NOT_FOUND: 404,
  NOT_ACTIVE: 400,
  LOCK_MISMATCH: 409,
  CONFLICT: 409,
  READ_ONLY: 409,
  TOO_MANY_WAITERS: 503,
  UNAVAILABLE: 503,
  STORAGE_FAULT: 500,
  NO_SPACE: 507,
};

/** The API's own rejections. Texts are contract (seed 004 / SPEC section 4): tests match them. */
export const API_ERRORS = {
  notFound: { status: 404, error: 'Not found' },
  methodNotAllowed: { status: 405, error: 'Method not allowed' },
  invalidJson: { status: 400, error: 'Invalid JSON body' },
  bodyTooLarge: { status: 413, error: 'Request body is too large' },
  contentTypeInvalid: { status: 415, error: 'Content-Type must be a media type (type/subtype), such as application/json' },
  unauthorized: { status: 401, error: 'Unauthorized' },
  rateLimited: { status: 429, error: 'Rate limit exceeded' },
  jobNotFound: { status: 404, error: 'Job not found' },
  historyTooLong: { status: 400, error: `History is longer than ${historyJsonLengthMax} characters as JSON: ask for ?format=ndjson, which streams it` },
  internal: { status: 500, error: 'Internal server error' },
  malformedRequest: { status: 400, error: 'Malformed HTTP request' },
  headersTooLarge: { status: 431, error: 'Request headers are too large' },
  requestTimeout: { status: 408, error: 'Request timeout' },
} as const satisfies Record<string, { status: number; error: string }>;

export type ApiErrorName = keyof typeof API_ERRORS;

export interface ErrorEnvelope {
  ok: false;
  error: string;
}

/** A rejection thrown from a hook or parser; the error handler turns it into the envelope. */
export class ApiError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = statusCode;
  }

  static of(name: ApiErrorName): ApiError {
    const { status, error } = API_ERRORS[name];
    return new ApiError(status, error);
  }

  /** A 400 whose message names the offending field. */
  static badRequest(message: string): ApiError {
    return new ApiError(400, message);
  }
}

export function envelope(error: string): ErrorEnvelope {
  return { ok: false, error };
}

export function sendError(reply: FastifyReply, status: number, error: string): ErrorEnvelope {
  reply.code(status);
  return envelope(error);
}

export function sendApiError(reply: FastifyReply, name: ApiErrorName): ErrorEnvelope {
  const { status, error } = API_ERRORS[name];
  return sendError(reply, status, error);
}

/**
 * Reply with a broker Outcome: a failure becomes the envelope with the mapped status; a success
 * becomes `{ok: true, ...view(outcome)}` so only the documented fields leave the server.
 */
export function sendOutcome<T extends object>(
  reply: FastifyReply,
  outcome: Outcome<T>,
  view: (success: { ok: true } & T) => object = () => ({}),
): object {
  if (!outcome.ok) return sendError(reply, STATUS_BY_CODE[outcome.code], outcome.error);
  return { ok: true, ...view(outcome) };
}
