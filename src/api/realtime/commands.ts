// WebSocket commands (seed 004 "Sending Commands"): one JSON object in, one reply object out.
//
// `runCommand` validates the fields a command needs and calls the broker; `toReply` maps what it
// settles with to the reply: success is the Outcome itself (`{ok: true, id}` etc.), a rejection
// is `{ok: false, error}` with the broker's text. The session maps in its own continuation.
// PUSH, the hot path, goes through `startPush` instead, so that the pushes of one group commit
// cost the session one continuation between them. Command names are case-insensitive, so the seed's
// `PUSH` and `Auth` spellings and bunqueue's `GetJob` all work. Authentication and reqId
// correlation belong to the session (ws.ts), not here. Calls may overlap freely: each is one
// independent broker call.

import type { BrokerApi, Ctx, Failure, Outcome } from '../../broker/types.js';
import { checkPush, unknownFieldError } from '../../broker/validate.js';
import { errorTextLengthMax } from '../../constants.js';
import { textTooLong } from '../validation.js';

export type Reply = { ok: boolean } & Record<string, unknown>;
type Fields = Record<string, unknown>;
export type Result = Reply | Outcome;
type Handler = (broker: BrokerApi, msg: Fields, ctx: Ctx, signal: AbortSignal) => Promise<Result> | Result;

/** Fields of the envelope, never passed to the broker as job options. */
const envelopeFields = new Set(['cmd', 'reqId', 'queue']);

/** A PUSH under way: its job's id, and when its record is durable (shared by the group commit). */
export type StartedPush = { id: string; durable: Promise<Failure | null> };

/** PUSH is not one of the handlers: the session answers pushes a group commit at a time, so it
 *  starts each one here and waits on `durable` once per group (BrokerApi.pushNow). A refused
 *  push comes back as its reply. Without a queue, what is wrong with the job is said first: a
 *  `queu` is then named as the field it is, not reported as a missing queue. */
export function startPush(broker: BrokerApi, msg: Fields, ctx: Ctx): StartedPush | Reply {
  const missing = needString(msg, 'queue');
  if (missing !== null) {
    const job = checkPush(msg, envelopeFields);
    return job.ok ? missing : failure(job.error);
  }
  // The job is the message itself, its envelope fields passed over.
  const pushed = broker.pushNow(msg.queue as string, msg, ctx, envelopeFields);
  if (!('error' in pushed)) return pushed;
  // A PUSH with `jobs` was meant as a PUSHB: say so.
  return failure(pushed.error === unknownFieldError('jobs') ? `${pushed.error} in PUSH: push many with PUSHB {queue, jobs}` : pushed.error);
}

const handlers: Record<string, Handler> = {
  PUSHB: (broker, msg, ctx) =>
    needString(msg, 'queue') ??
    needOf(msg, 'jobs', 'an array', Array.isArray) ??
    broker.pushBulk(msg.queue as string, msg.jobs as unknown[], ctx),
  PULL: (broker, msg, ctx, signal) =>
    needString(msg, 'queue') ??
    optionalNumber(msg, 'timeout') ??
    optionalNumber(msg, 'lockMs') ??
    broker.pullJson(
      msg.queue as string,
      { timeoutMs: (msg.timeout as number | undefined) ?? 0, lockMs: msg.lockMs as number | undefined, signal },
      ctx,
    ),
  ACK: (broker, msg, ctx) =>
    needString(msg, 'id') ??
    optionalString(msg, 'token') ??
    broker.ack(msg.id as string, pick(msg, ['result', 'token']), ctx),
  FAIL: (broker, msg, ctx) =>
    needString(msg, 'id') ??
    optionalText(msg, 'error', errorTextLengthMax) ??
    optionalString(msg, 'token') ??
    broker.fail(msg.id as string, pick(msg, ['error', 'token']), ctx),
  GETJOB: (broker, msg) => {
    const missing = needString(msg, 'id');
    if (missing !== null) return missing;
    const job = broker.getJob(msg.id as string);
    return job === null ? failure('Job not found') : { ok: true, job };
  },
  PROGRESS: (broker, msg, ctx) =>
    needString(msg, 'id') ??
    needOf(msg, 'progress', 'a number', (v) => typeof v === 'number') ??
    optionalString(msg, 'message') ??
    broker.progress(msg.id as string, pick(msg, ['progress', 'message']) as { progress: number }, ctx),
  CANCEL: (broker, msg, ctx) => needString(msg, 'id') ?? broker.cancel(msg.id as string, ctx),
};

/** The fields each command takes besides `cmd` and `reqId` (AUTH is answered by the session).
 *  Any other is refused, in the words HTTP uses for a field its body or query schema does not
 *  allow: a typo (`reslt`, `timout`) would otherwise be dropped without a word and the command
 *  run without it. PUSH's job fields are the broker's to check (checkPush). */
const handlerFields: Record<string, ReadonlySet<string>> = {
  PUSHB: new Set(['queue', 'jobs']),
  PULL: new Set(['queue', 'timeout', 'lockMs']),
  ACK: new Set(['id', 'result', 'token']),
  FAIL: new Set(['id', 'error', 'token']),
  GETJOB: new Set(['id']),
  PROGRESS: new Set(['id', 'progress', 'message']),
  CANCEL: new Set(['id']),
  AUTH: new Set(['token']),
};

/** The refusal of a field command `name` (upper-cased) does not take; null when there is none. */
export function unknownField(name: string, msg: Fields): Reply | null {
  const allowed = Object.hasOwn(handlerFields, name) ? handlerFields[name] : undefined;
  if (allowed === undefined) return null;
  for (const key in msg) {
    if (Object.hasOwn(msg, key) && key !== 'cmd' && key !== 'reqId' && !allowed.has(key)) return failure(unknownFieldError(key));
  }
  return null;
}

/** True for the names `startPush` and `runCommand` know, given upper-cased (`Auth` excluded). */
export function isBrokerCommand(name: string): boolean {
  return name === 'PUSH' || Object.hasOwn(handlers, name);
}

/** Runs command `name` (the upper-cased `cmd`); pass what it settles with to `toReply`. A handler
 *  that throws becomes a rejected promise, as if runCommand were async (it is not, to save a
 *  promise and a microtask per command). */
export function runCommand(broker: BrokerApi, name: string, msg: Fields, ctx: Ctx, signal: AbortSignal): Promise<Result> {
  const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (handler === undefined) return Promise.resolve(failure(`Unknown command: ${String(msg.cmd)}`));
  const unknown = unknownField(name, msg);
  if (unknown !== null) return Promise.resolve(unknown);
  try {
    return Promise.resolve(handler(broker, msg, ctx, signal));
  } catch (error) {
    return Promise.reject(error);
  }
}

export function failure(error: string): Reply {
  return { ok: false, error };
}

/** The reply for what a command settled with: a broker failure loses its internal `code`. */
export function toReply(result: Result): Reply {
  return result.ok ? result : failure(result.error as string);
}

function pick(msg: Fields, keys: string[]): Fields {
  const out: Fields = {};
  for (const key of keys) if (msg[key] !== undefined) out[key] = msg[key];
  return out;
}

function needString(msg: Fields, name: string): Reply | null {
  const v = msg[name];
  if (v === undefined || v === null || v === '') return failure(`${name} is required`);
  return typeof v === 'string' ? null : failure(`${name} must be a string`);
}

/** A required field of another type: missing, or there but not `what`; each said as it is. */
function needOf(msg: Fields, name: string, what: string, is: (v: unknown) => boolean): Reply | null {
  const v = msg[name];
  if (v === undefined || v === null) return failure(`${name} is required (${what})`);
  return is(v) ? null : failure(`${name} must be ${what}`);
}

function optionalString(msg: Fields, name: string): Reply | null {
  return msg[name] === undefined || typeof msg[name] === 'string' ? null : failure(`${name} must be a string`);
}

/** An optional text the broker would otherwise store cut (validation.ts, textTooLong). */
function optionalText(msg: Fields, name: string, lengthMax: number): Reply | null {
  const tooLong = textTooLong(name, msg[name], lengthMax);
  return optionalString(msg, name) ?? (tooLong === null ? null : failure(tooLong));
}

function optionalNumber(msg: Fields, name: string): Reply | null {
  const value = msg[name];
  return value === undefined || (typeof value === 'number' && Number.isFinite(value) && value >= 0)
    ? null
    : failure(`${name} must be a non-negative number`);
}
