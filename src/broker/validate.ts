// Request validation: untrusted JSON in, normalized values or an error text out. Every error names
// the field as the caller spelled it. Pure (reads no state, no clock); state-dependent checks
// (job exists, state allows the action) live with the commands.
//
// Two push shapes are accepted:
// - seed 004: {data, priority, delay, maxAttempts, backoff, ttl, timeout, uniqueKey, jobId, tags,
//   groupId, lifo, removeOnComplete, removeOnFail, durable, dependsOn, repeat, name}.
// - BullMQ: {name, data, opts} (recognized by the `opts` key); opts keys attempts, backoff, delay,
//   priority, lifo, jobId, removeOnComplete, removeOnFail, repeat, timeout, ttl, tags, groupId,
//   dependsOn, uniqueKey, durable.
// Every error names its field by its whole path as the client wrote it (`opts.backoff.type`,
// `jobs[3].opts.delay`); an unknown key, at any depth, is `<path> is not an allowed field`.
// BullMQ backoff: a bare number is a fixed delay (BullMQ normalizes it to {type: 'fixed', delay});
// the seed's flat `backoff` number is exponential.
// BullMQ priority: 1 is highest and 0 (or absent) means "no priority", which BullMQ runs before any
// prioritized job. tapeq runs higher numbers first, so the conversion is priority = -bullPriority:
// none → 0, 1 → -1, 2 → -2 … keeping BullMQ's order exactly.

import {
  backoffMsDefault,
  bulkJobsMax,
  bullPriorityMax,
  cronPatternLengthMax,
  dependsOnCountMax,
  dotSegments,
  durationMsMax,
  groupIdLengthMax,
  jobDataBytesMax,
  jobIdLengthMax,
  jobNameDefault,
  jobNameLengthMax,
  lockMsMax,
  maxAttemptsDefault,
  maxAttemptsMax,
  priorityMax,
  priorityMin,
  processingTimeoutMsMax,
  progressMessageLengthMax,
  pullTimeoutMsMax,
  queueNameLengthMax,
  queueNamePattern,
  repeatLimitMax,
  tagLengthMax,
  tagsCountMax,
  uniqueKeyLengthMax,
} from '../constants.js';
import { BackoffType, type JobSpec, type KeepPolicy, type Repeat } from '../record/types.js';
import { isWellFormed } from '../record/text.js';
import { JsonText } from './json-text.js';
import { cronPatternError } from './schedule.js';

/** A validated push: the job's spec fields a client sets, plus how to place and store it. */
export interface PushInput extends Omit<JobSpec, 'id' | 'queue' | 'runAt' | 'customId' | 'maxStalled'> {
  delay: number;
  jobId: string | null;
  durable: boolean;
}

export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

class Invalid extends Error {}

function fail(message: string): never {
  throw new Invalid(message);
}

/** Every message starts with the path of its field from the value being checked (`delay must be
 *  …`), so one found inside a nested value is rethrown with the nested value's path in front
 *  (`opts.delay must be …`, `jobs[3].opts.delay must be …`). Names are joined only on the way out:
 *  a valid job builds none. */
function within(path: string, error: unknown): never {
  if (error instanceof Invalid) throw new Invalid(`${path}.${error.message}`);
  throw error;
}

function checked<T>(fn: () => T): Checked<T> {
  try {
    return { ok: true, value: fn() };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, error: error.message };
    throw error;
  }
}

/** The one text for a field that is not taken where it was sent: every body, query, BullMQ `opts`
 *  and WebSocket command refuses it so, `path` written as the client would (`opts.foo`,
 *  `body[2].opts.foo`). */
export function unknownFieldError(path: string): string {
  return `${path} is not an allowed field`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(`${field} must be an integer`);
  if (v < min) fail(min === 0 ? `${field} must be a non-negative integer` : `${field} must be at least ${min}`);
  if (v > max) fail(`${field} must be at most ${max}`);
  return v;
}

function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') fail(`${field} must be a boolean`);
  return v;
}

function text(field: string, v: unknown, lengthMax: number, allowEmpty = false): string {
  if (typeof v !== 'string') fail(`${field} must be a string`);
  if (!isWellFormed(v)) fail(wellFormedError(field));
  if (!allowEmpty && v.length === 0) fail(`${field} must not be empty`);
  if (v.length > lengthMax) fail(`${field} must be at most ${lengthMax} characters`);
  return v;
}

export function wellFormedError(field: string): string {
  return `${field} must be well-formed Unicode (it has a lone UTF-16 surrogate)`;
}

function texts(field: string, v: unknown, countMax: number, lengthMax: number): string[] {
  if (!Array.isArray(v)) fail(`${field} must be an array of strings`);
  if (v.length > countMax) fail(`${field} must have at most ${countMax} items`);
  return v.map((item, i) => text(`${field}[${i}]`, item, lengthMax));
}

function nullableDuration(field: string, v: unknown): number | null {
  if (v === null) return null;
  return int(field, v, 1, durationMsMax);
}

const dataLengthSurelyUnderMax = Math.floor(jobDataBytesMax / 3);

/** Data as JSON text, bounded. */
function dataText(v: unknown): string {
  if (v === undefined) fail('data is required');
  let json: string | undefined;
  try {
    json = v instanceof JsonText ? v.text : JSON.stringify(v);
  } catch {
    fail('data must be JSON');
  }
  if (json === undefined) fail('data must be JSON');
  // A UTF-16 code unit is at most 3 bytes of UTF-8: most data needs no count of its bytes.
  if (json.length > dataLengthSurelyUnderMax && Buffer.byteLength(json, 'utf8') > jobDataBytesMax) fail(`data must be at most ${jobDataBytesMax} bytes as JSON`);
  return json;
}

/** true | false | count | {count, age (s)} → KeepPolicy; null (the field unset) leaves it to the
 *  push worker's retention. An explicit false is a policy of its own, keep every job, which
 *  overrides the worker's as it does in BullMQ (the job's setting, when given, wins). */
function keepPolicy(field: string, v: unknown): KeepPolicy | null {
  if (v === true) return { remove: true, count: null, ageMs: null };
  if (v === false) return { remove: false, count: null, ageMs: null };
  if (v === null) return null;
  if (typeof v === 'number') return { remove: false, count: int(field, v, 0, 2 ** 32 - 1), ageMs: null };
  if (!isObject(v)) fail(`${field} must be a boolean, a count or {count, age}`);
  let count: number | null = null;
  let ageMs: number | null = null;
  for (const [key, value] of Object.entries(v)) {
    if (key === 'count') count = int(`${field}.count`, value, 0, 2 ** 32 - 1);
    else if (key === 'age') ageMs = int(`${field}.age`, value, 0, Math.floor(durationMsMax / 1000)) * 1000;
    else fail(unknownFieldError(`${field}.${key}`));
  }
  return { remove: false, count, ageMs };
}

function backoffOf(field: string, v: unknown): { backoff: number; backoffType: BackoffType } {
  if (typeof v === 'number') return { backoff: int(field, v, 0, durationMsMax), backoffType: BackoffType.EXPONENTIAL };
  if (!isObject(v)) fail(`${field} must be a number or {type, delay}`);
  let backoffType: BackoffType = BackoffType.EXPONENTIAL;
  let backoff = backoffMsDefault;
  for (const [key, value] of Object.entries(v)) {
    if (key === 'type') {
      if (value === 'fixed') backoffType = BackoffType.FIXED;
      else if (value === 'exponential') backoffType = BackoffType.EXPONENTIAL;
      else fail(`${field}.type must be "fixed" or "exponential"`);
    } else if (key === 'delay') backoff = int(`${field}.delay`, value, 0, durationMsMax);
    else fail(unknownFieldError(`${field}.${key}`));
  }
  return { backoff, backoffType };
}

/** BullMQ's bare-number backoff: it normalizes `n` to {type: 'fixed', delay: n}. */
function fixedBackoff(field: string, v: number): { backoff: number; backoffType: BackoffType } {
  return { backoff: int(field, v, 0, durationMsMax), backoffType: BackoffType.FIXED };
}

function repeatOf(field: string, v: unknown): Repeat | null {
  if (v === null) return null;
  if (!isObject(v)) fail(`${field} must be an object`);
  const repeat: Repeat = { every: null, pattern: '', limit: null, immediately: false, count: 0, tz: '', key: '' };
  for (const [key, value] of Object.entries(v)) {
    if (key === 'every') repeat.every = int(`${field}.every`, value, 1, durationMsMax);
    else if (key === 'pattern') repeat.pattern = text(`${field}.pattern`, value, cronPatternLengthMax);
    else if (key === 'limit') repeat.limit = int(`${field}.limit`, value, 1, repeatLimitMax);
    else if (key === 'immediately') repeat.immediately = bool(`${field}.immediately`, value);
    else if (key === 'tz') repeat.tz = text(`${field}.tz`, value, 64);
    else fail(unknownFieldError(`${field}.${key}`));
  }
  if ((repeat.every === null) === (repeat.pattern === '')) fail(`${field} needs exactly one of every or pattern`);
  if (repeat.pattern !== '') {
    const why = cronPatternError(repeat.pattern, repeat.tz);
    if (why !== null) fail(`${field}.${why.field} ${why.error}`);
  }
  return repeat;
}

function defaults(): PushInput {
  return {
    name: jobNameDefault,
    data: 'null',
    priority: 0,
    delay: 0,
    maxAttempts: maxAttemptsDefault,
    backoff: backoffMsDefault,
    backoffType: BackoffType.EXPONENTIAL,
    ttl: null,
    timeout: null,
    uniqueKey: '',
    jobId: null,
    tags: [],
    groupId: '',
    lifo: false,
    removeOnComplete: null,
    removeOnFail: null,
    durable: false,
    dependsOn: [],
    repeat: null,
  };
}

/** Options shared by both shapes (same key, same meaning). Returns false for a key it doesn't know. */
function commonOption(out: PushInput, key: string, v: unknown): boolean {
  switch (key) {
    case 'delay':
      out.delay = int(key, v, 0, durationMsMax);
      return true;
    case 'backoff':
      Object.assign(out, backoffOf(key, v));
      return true;
    case 'ttl':
      out.ttl = nullableDuration(key, v);
      return true;
    case 'timeout':
      // Its lock (timeout + margin, broker.lockFor) must fit lockMsMax.
      out.timeout = v === null ? null : int(key, v, 1, processingTimeoutMsMax);
      return true;
    case 'uniqueKey':
      out.uniqueKey = v === null ? '' : text(key, v, uniqueKeyLengthMax);
      return true;
    case 'jobId':
      out.jobId = v === null ? null : text(key, v, jobIdLengthMax);
      if (out.jobId !== null && dotSegments.includes(out.jobId)) fail(dotSegmentError(key));
      return true;
    case 'tags':
      out.tags = texts(key, v, tagsCountMax, tagLengthMax);
      return true;
    case 'groupId':
      out.groupId = v === null ? '' : text(key, v, groupIdLengthMax);
      return true;
    case 'lifo':
      out.lifo = bool(key, v);
      return true;
    case 'removeOnComplete':
      out.removeOnComplete = keepPolicy(key, v);
      return true;
    case 'removeOnFail':
      out.removeOnFail = keepPolicy(key, v);
      return true;
    case 'durable':
      out.durable = bool(key, v);
      return true;
    case 'dependsOn':
      out.dependsOn = [...new Set(texts(key, v, dependsOnCountMax, jobIdLengthMax))];
      return true;
    case 'repeat':
      out.repeat = repeatOf(key, v);
      return true;
    default:
      return false;
  }
}

function finish(out: PushInput): PushInput {
  if (out.jobId !== null && out.dependsOn.includes(out.jobId)) fail('dependsOn must not contain the job itself');
  return out;
}

// The shapes walk their input with for-in (own keys only, in Object.keys order) rather than
// Object.keys, which would allocate an array of the keys for every job pushed.

function seedShape(input: Record<string, unknown>, envelope: ReadonlySet<string> | null): PushInput {
  const out = defaults();
  for (const key in input) {
    if (!Object.hasOwn(input, key) || envelope?.has(key) === true) continue;
    const v = input[key];
    if (v === undefined) continue;
    if (key === 'data') out.data = dataText(v);
    else if (key === 'name') out.name = text(key, v, jobNameLengthMax);
    else if (key === 'priority') out.priority = int(key, v, priorityMin, priorityMax);
    else if (key === 'maxAttempts') out.maxAttempts = int(key, v, 1, maxAttemptsMax);
    else if (!commonOption(out, key, v)) fail(unknownFieldError(key));
  }
  if (input['data'] === undefined) fail('data is required');
  return finish(out);
}

/** seedShape's option fields: beside `opts` they are misplaced, not unknown. */
const seedOptionNames: ReadonlySet<string> = new Set([
  'priority', 'maxAttempts', 'delay', 'backoff', 'ttl', 'timeout', 'uniqueKey', 'jobId', 'tags',
  'groupId', 'lifo', 'removeOnComplete', 'removeOnFail', 'durable', 'dependsOn', 'repeat',
]);

function bullShape(input: Record<string, unknown>, envelope: ReadonlySet<string> | null): PushInput {
  const out = defaults();
  for (const key in input) {
    if (!Object.hasOwn(input, key) || envelope?.has(key) === true) continue;
    const v = input[key];
    if (v === undefined) continue;
    if (key === 'data') out.data = dataText(v);
    else if (key === 'name') out.name = text(key, v, jobNameLengthMax);
    else if (key !== 'opts') fail(seedOptionNames.has(key) ? `${key} cannot be used beside opts: a job with opts takes its options in opts` : unknownFieldError(key));
  }
  if (input['data'] === undefined) fail('data is required');
  const opts = input['opts'];
  if (opts === null || opts === undefined) return out;
  if (!isObject(opts)) fail('opts must be an object');
  try {
    for (const key in opts) {
      if (!Object.hasOwn(opts, key)) continue;
      const v = opts[key];
      if (v === undefined) continue;
      if (key === 'attempts') out.maxAttempts = int(key, v, 1, maxAttemptsMax);
      else if (key === 'priority') out.priority = -int(key, v, 0, bullPriorityMax);
      else if (key === 'backoff' && typeof v === 'number') Object.assign(out, fixedBackoff(key, v));
      else if (!commonOption(out, key, v)) fail(unknownFieldError(key));
    }
    if (out.priority === 0) out.priority = 0; // -0 → 0: the record stores a sint32
    return finish(out);
  } catch (error) {
    within('opts', error);
  }
}

/** A refusal of job `input` found in the state after validation (commands.ts pushRefusal, whose
 *  texts start with the option they are about) with that option's whole path: `opts.` in front in
 *  the BullMQ shape, and `jobs[3].` for the item of a bulk push (`item` 3; null for a job alone). */
export function refusalAt(error: string, input: unknown, item: number | null): string {
  const options = isObject(input) && 'opts' in input ? `opts.${error}` : error;
  return item === null ? options : `jobs[${item}].${options}`;
}

/** `envelope`: fields of a message that carries the job beside them (a WebSocket PUSH's `cmd`,
 *  `queue`, `reqId`), passed over rather than refused, so the job needs no copy without them. */
export function checkPush(input: unknown, envelope: ReadonlySet<string> | null = null): Checked<PushInput> {
  // checked() by hand: the hot path's one closure less per push.
  try {
    if (!isObject(input)) fail('job must be an object');
    return { ok: true, value: 'opts' in input ? bullShape(input, envelope) : seedShape(input, envelope) };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, error: error.message };
    throw error;
  }
}

/** An item's errors name it by its path (`jobs[3].opts.delay must be …`); the route of an array
 *  body calls the items `body[3]` (routes/jobs.ts), as its schema's errors do. */
export function checkPushBulk(inputs: unknown): Checked<PushInput[]> {
  return checked(() => {
    if (!Array.isArray(inputs)) fail('jobs must be an array');
    if (inputs.length === 0) fail('jobs must not be empty');
    if (inputs.length > bulkJobsMax) fail(`jobs must have at most ${bulkJobsMax} items`);
    return inputs.map((item: unknown, i) => {
      if (!isObject(item)) fail(`jobs[${i}] must be an object`);
      try {
        return 'opts' in item ? bullShape(item, null) : seedShape(item, null);
      } catch (error) {
        within(`jobs[${i}]`, error);
      }
    });
  });
}

/** What a queue name must be (queueNamePattern), after the field's name: the one text of a bad
 *  name wherever one is refused (HTTP paths and bodies, WebSocket commands, SSE and WebSocket
 *  paths). */
export const queueNameRule = `must be 1-${queueNameLengthMax} characters of letters, digits, ".", "_", "-" or ":"`;

export function queueNameError(name: string): string | null {
  if (!queueNamePattern.test(name)) return `queue ${queueNameRule}`;
  if (dotSegments.includes(name)) return dotSegmentError('queue');
  return null;
}

function dotSegmentError(field: string): string {
  return `${field} must not be ${dotSegments.map((v) => JSON.stringify(v)).join(' or ')}`;
}

export function checkPull(opts: { timeoutMs: number; lockMs?: number }): Checked<{ timeoutMs: number; lockMs: number | null }> {
  return checked(() => ({
    timeoutMs: int('timeout', opts.timeoutMs, 0, pullTimeoutMsMax),
    lockMs: opts.lockMs === undefined ? null : int('lockMs', opts.lockMs, 1, lockMsMax),
  }));
}

export function checkProgress(body: unknown): Checked<{ progress: number; message: string | null }> {
  return checked(() => {
    if (!isObject(body)) fail('progress must be a number');
    const progress = body['progress'];
    if (typeof progress !== 'number' || !Number.isFinite(progress) || progress < 0 || progress > 100) {
      fail('progress must be a number between 0 and 100');
    }
    const message = body['message'];
    return { progress, message: message === undefined || message === null ? null : text('message', message, progressMessageLengthMax) };
  });
}

export function checkLogMessage(message: unknown, lengthMax: number): Checked<string> {
  return checked(() => text('message', message, lengthMax));
}

export function checkPriority(v: unknown): Checked<number> {
  return checked(() => int('priority', v, priorityMin, priorityMax));
}

/** BullMQ's names for tapeq's states, taken wherever a request names states (clean's `state`, the
 *  job list's `statuses`): BullMQ's `wait` is tapeq's `waiting`, which also holds the jobs BullMQ
 *  keeps apart as prioritized (`prioritized`, the waiting jobs with a priority, is a state of its
 *  own in both). */
export const stateAliases = { wait: 'waiting' } as const;
export type StateAlias = keyof typeof stateAliases;
export const stateAliasNames = Object.keys(stateAliases) as StateAlias[];

/** `name`, or the tapeq state it is BullMQ's name for. */
export function unaliasState<T extends string>(name: T | StateAlias): T | (typeof stateAliases)[StateAlias] {
  return Object.hasOwn(stateAliases, name) ? stateAliases[name as StateAlias] : (name as T);
}

/** The states `clean` removes jobs of: tapeq's, and the ones BullMQ's `clean(grace, limit, type)`
 *  names besides its aliases (queue-ops.ts `cleanable` says which jobs each one means). */
const tapeqCleanStates = ['completed', 'failed', 'waiting', 'delayed'] as const;
const bullCleanStates = ['paused', 'prioritized', 'active'] as const;
export type CleanState = (typeof tapeqCleanStates)[number] | (typeof bullCleanStates)[number];
/** What clean's `state` takes: tapeq's names, then BullMQ's (its aliases first). */
export const cleanStates: readonly (CleanState | StateAlias)[] = [...tapeqCleanStates, ...stateAliasNames, ...bullCleanStates];

function isCleanStateName(v: unknown): v is CleanState | StateAlias {
  return (cleanStates as readonly unknown[]).includes(v);
}

export function checkClean(body: unknown): Checked<{ graceMs: number; state: CleanState; limit: number | null }> {
  return checked(() => {
    if (!isObject(body)) fail('body must be a JSON object');
    let graceMs: number | null = null;
    let state: CleanState = 'completed';
    let limit: number | null = null;
    for (const [key, v] of Object.entries(body)) {
      if (key === 'grace') graceMs = int(key, v, 0, durationMsMax);
      else if (key === 'state') {
        if (!isCleanStateName(v)) fail(`state must be one of: ${cleanStates.join(', ')}`);
        state = unaliasState(v);
      } else if (key === 'limit') limit = v === null ? null : int(key, v, 0, 2 ** 31 - 1) || null; // 0 = no limit, as in BullMQ
      else fail(unknownFieldError(key));
    }
    if (graceMs === null) fail('grace is required');
    return { graceMs, state, limit };
  });
}

export function checkPromoteJobs(body: unknown): Checked<{ count: number | null }> {
  return checked(() => {
    if (body === undefined || body === null) return { count: null };
    if (!isObject(body)) fail('body must be a JSON object');
    let count: number | null = null;
    for (const [key, v] of Object.entries(body)) {
      if (key === 'count') count = v === null ? null : int(key, v, 1, 2 ** 31 - 1);
      else fail(unknownFieldError(key));
    }
    return { count };
  });
}
