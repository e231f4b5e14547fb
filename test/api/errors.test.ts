// The error registry is honest: every broker ErrorCode maps to an error status, in one place.

import t from 'tap';
import type { ErrorCode } from '../../src/broker/types.js';
import { API_ERRORS, STATUS_BY_CODE, sendOutcome } from '../../src/api/errors.js';

// A Record over ErrorCode: adding a code to the union without listing it here fails to compile.
const EVERY_CODE: Record<ErrorCode, number> = {
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

t.test('every-error-code-has-the-agreed-status', async (t) => {
  t.same(Object.keys(STATUS_BY_CODE).sort(), Object.keys(EVERY_CODE).sort());
  for (const [code, status] of Object.entries(EVERY_CODE)) {
    t.equal(STATUS_BY_CODE[code as ErrorCode], status, code);
  }
});

t.test('api-error-texts-are-the-contract-texts', async (t) => {
  t.equal(API_ERRORS.notFound.error, 'Not found');
  t.equal(API_ERRORS.invalidJson.error, 'Invalid JSON body');
  t.equal(API_ERRORS.unauthorized.error, 'Unauthorized');
  t.equal(API_ERRORS.rateLimited.error, 'Rate limit exceeded');
  t.equal(API_ERRORS.jobNotFound.error, 'Job not found');
  for (const { status } of Object.values(API_ERRORS)) t.ok(status >= 400 && status < 600);
});

t.test('send-outcome-maps-failure-to-envelope-and-status', async (t) => {
  let code = 0;
  const reply = { code: (c: number) => ((code = c), reply) } as never;
  t.same(sendOutcome(reply, { ok: false, code: 'LOCK_MISMATCH', error: 'Lock token mismatch' }), {
    ok: false,
    error: 'Lock token mismatch',
  });
  t.equal(code, 409);
  t.same(sendOutcome(reply, { ok: true, id: 'x', secret: 1 } as never, (o: { id: string }) => ({ id: o.id })), { ok: true, id: 'x' });
});
