// WebSocket commands (seed 004 "Sending Commands"): one JSON object in, one reply object out.
//
// `runCommand` validates the fields a command needs, calls the broker and maps its Outcome to a
// reply: success is the Outcome itself (`{ok: true, id}` etc.), a rejection is
// `{ok: false, error}` with the broker's text. Command names are case-insensitive, so the seed's
// `PUSH` and `Auth` spellings and bunqueue's `GetJob` all work. Authentication and reqId
// correlation belong to the session (ws.ts), not here. Calls may overlap freely: each is one
// independent broker call.

import type { BrokerApi, Ctx, Outcome } from '../../broker/types.js';

export type Reply = { ok: boolean } & Record<string, unknown>;
type Fields = Record<string, unknown>;
type Handler = (broker: BrokerApi, msg: Fields, ctx: Ctx, signal: AbortSignal) => Promise<Reply> | Reply;

/** Fields of the envelope, never passed to the broker as job options. */
const envelopeFields = new Set(['cmd', 'reqId', 'queue']);

const handlers: Record<string, Handler> = {
  PUSH: (broker, msg, ctx) =>
    needString(msg, 'queue') ?? outcomeReply(broker.push(msg.queue as string, jobInput(msg), ctx)),
  PUSHB: (broker, msg, ctx) =>
    needString(msg, 'queue') ??
    (Array.isArray(msg.jobs)
      ? outcomeReply(broker.pushBulk(msg.queue as string, msg.jobs as unknown[], ctx))
      : failure('Missing field: jobs (an array)')),
  PULL: (broker, msg, ctx, signal) =>
    needString(msg, 'queue') ??
    optionalNumber(msg, 'timeout') ??
    optionalNumber(msg, 'lockMs') ??
    outcomeReply(
      broker.pull(
        msg.queue as string,
        { timeoutMs: (msg.timeout as number | undefined) ?? 0, lockMs: msg.lockMs as number | undefined, signal },
        ctx,
      ),
    ),
  ACK: (broker, msg, ctx) =>
    needString(msg, 'id') ??
    optionalString(msg, 'token') ??
    outcomeReply(broker.ack(msg.id as string, pick(msg, ['result', 'token']), ctx)),
  FAIL: (broker, msg, ctx) =>
    needString(msg, 'id') ??
    optionalString(msg, 'error') ??
    optionalString(msg, 'token') ??
    outcomeReply(broker.fail(msg.id as string, pick(msg, ['error', 'token']), ctx)),
  GETJOB: (broker, msg) => {
    const missing = needString(msg, 'id');
    if (missing !== null) return missing;
    const job = broker.getJob(msg.id as string);
    return job === null ? failure('Job not found') : { ok: true, job };
  },
  PROGRESS: (broker, msg, ctx) =>
    needString(msg, 'id') ??
    (typeof msg.progress === 'number' ? null : failure('Missing field: progress (a number)')) ??
    optionalString(msg, 'message') ??
    outcomeReply(broker.progress(msg.id as string, pick(msg, ['progress', 'message']) as { progress: number }, ctx)),
  CANCEL: (broker, msg, ctx) => needString(msg, 'id') ?? outcomeReply(broker.cancel(msg.id as string, ctx)),
};

/** True for the names `runCommand` knows, given upper-cased (`Auth` excluded). */
export function isBrokerCommand(name: string): boolean {
  return Object.hasOwn(handlers, name);
}

/** Runs command `name` (the upper-cased `cmd`). A handler that throws becomes a rejected promise,
 *  as if runCommand were async (it is not, to save a promise and a microtask per command). */
export function runCommand(broker: BrokerApi, name: string, msg: Fields, ctx: Ctx, signal: AbortSignal): Promise<Reply> {
  const handler = Object.hasOwn(handlers, name) ? handlers[name] : undefined;
  if (handler === undefined) return Promise.resolve(failure(`Unknown command: ${String(msg.cmd)}`));
  try {
    return Promise.resolve(handler(broker, msg, ctx, signal));
  } catch (error) {
    return Promise.reject(error);
  }
}

export function failure(error: string): Reply {
  return { ok: false, error };
}

function outcomeReply(pending: Promise<Outcome>): Promise<Reply> {
  return pending.then((outcome) => (outcome.ok ? outcome : failure(outcome.error)));
}

function jobInput(msg: Fields): Fields {
  const input: Fields = {};
  for (const key of Object.keys(msg)) if (!envelopeFields.has(key)) input[key] = msg[key];
  return input;
}

function pick(msg: Fields, keys: string[]): Fields {
  const out: Fields = {};
  for (const key of keys) if (msg[key] !== undefined) out[key] = msg[key];
  return out;
}

function needString(msg: Fields, name: string): Reply | null {
  return typeof msg[name] === 'string' && msg[name] !== '' ? null : failure(`Missing field: ${name}`);
}

function optionalString(msg: Fields, name: string): Reply | null {
  return msg[name] === undefined || typeof msg[name] === 'string' ? null : failure(`${name} must be a string`);
}

function optionalNumber(msg: Fields, name: string): Reply | null {
  const value = msg[name];
  return value === undefined || (typeof value === 'number' && Number.isFinite(value) && value >= 0)
    ? null
    : failure(`${name} must be a non-negative number`);
}
