// Request validation: the route JSON schemas are compiled by two Ajv instances, and Ajv's errors
// become one-line messages that name the field (`priority must be an integer`).
//
// Bodies are validated strictly (no type coercion: `"5"` is not a number, `true` is not 1) and
// unknown fields are rejected, never silently stripped. Querystrings and path params arrive as
// text, so that instance coerces them to the schema's types. Only the first error is reported.

import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import type { FastifySchemaCompiler, FastifySchemaValidationError, FastifyServerOptions } from 'fastify';
import { queueNameRule, unknownFieldError } from '../broker/validate.js';
import { queueNamePattern } from '../constants.js';
import { LIST_STATUS_NAMES, statusesPattern } from './schemas.js';
import { workerMethodPattern, workerUrlPattern } from './worker-validation.js';

const shared: Options = {
  removeAdditional: false,
  useDefaults: true,
  allErrors: false,
  verbose: true,
  allowUnionTypes: true,
  strictTypes: false,
  // OpenAPI annotations that Ajv does not know.
  keywords: ['example'],
};
const bodyAjv = new Ajv({ ...shared, coerceTypes: false });
const textAjv = new Ajv({ ...shared, coerceTypes: true });

/** Fastify calls a validator as Ajv's compiled function: (data, dataCxt) → boolean, `errors` set. */
type Validator = ValidateFunction & { (data: unknown, dataCxt?: unknown): boolean };

export interface LazyValidators {
  compiler: FastifySchemaCompiler<unknown>;
  /** Compiles up to `max` validators no request has needed yet; returns how many it compiled.
   *  A schema that does not compile throws, naming its route (and is not tried again here). */
  compile(max?: number): number;
}

/**
 * A validator compiler for one fastify instance that compiles each route's schema with Ajv on the
 * route's first request, not when the route is registered: compiling the ~70 schemas of the API
 * up front cost about 150 ms of every server start. compile() does the rest ahead of requests:
 * the server does it one schema per event-loop turn once it listens, the tests all at once.
 */
export function lazyValidators(): LazyValidators {
  const pending = new Set<() => ValidateFunction>();
  const compiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart, method, url }) => {
    const ajv = httpPart === 'body' ? bodyAjv : textAjv;
    let compiled: ValidateFunction | null = null;
    const validate = ((data: unknown, dataCxt?: unknown): boolean => {
      const real = (compiled ?? compile()) as Validator;
      const ok = real(data, dataCxt);
      validate.errors = real.errors;
      return ok;
    }) as Validator;
    const compile = (): ValidateFunction => {
      if (compiled !== null) return compiled;
      pending.delete(compile);
      try {
        compiled = ajv.compile(schema as object);
      } catch (error) {
        throw new Error(`the ${httpPart ?? 'request'} schema of ${method} ${url} does not compile: ${(error as Error).message}`, { cause: error });
      }
      // A plain property from now on: fastify reads it on every request.
      Object.defineProperty(validate, 'schemaEnv', { value: compiled.schemaEnv, configurable: true });
      return compiled;
    };
    pending.add(compile);
    // Fastify passes the parent (dataCxt) only to functions that carry Ajv's schemaEnv, and Ajv
    // needs it to apply defaults and coercions to a root value.
    Object.defineProperty(validate, 'schemaEnv', { get: () => compile().schemaEnv, configurable: true });
    return validate;
  };
  return {
    compiler,
    compile(max = Number.POSITIVE_INFINITY) {
      let count = 0;
      for (const compile of pending) {
        if (count >= max) break;
        count++;
        compile();
      }
      return count;
    },
  };
}

/** Plain words for the patterns our schemas use (Ajv would quote the regex). */
const PATTERN_WORDS: ReadonlyMap<string, string> = new Map([
  [queueNamePattern.source, queueNameRule],
  [workerMethodPattern, 'must be POST, PUT or PATCH'],
  [workerUrlPattern, 'must be a valid http or https URL'],
  [statusesPattern, `must be a comma-separated list of: ${LIST_STATUS_NAMES.join(', ')}`],
]);

const ARTICLE_TYPES: Readonly<Record<string, string>> = {
  integer: 'an integer',
  object: 'an object',
  array: 'an array',
  number: 'a number',
  string: 'a string',
  boolean: 'a boolean',
  null: 'null',
};

function fieldPath(instancePath: string, leaf: unknown, dataVar: string): string {
  const parts = instancePath.split('/').slice(1);
  if (typeof leaf === 'string') parts.push(leaf);
  if (parts.length === 0) return dataVar;
  return parts
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, p) => (/^\d+$/.test(p) ? `${path === '' ? dataVar : path}[${p}]` : path === '' ? p : `${path}.${p}`), '');
}

function describe(error: ErrorObject): string {
  const p = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'type': {
      const types = Array.isArray(p.type) ? p.type : String(p.type).split(',');
      return `must be ${types.map((t) => ARTICLE_TYPES[t] ?? t).join(' or ')}`;
    }
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum':
      return `must be ${String(p.comparison)} ${String(p.limit)}`;
    case 'minLength':
      return p.limit === 1 ? 'must not be empty' : `must be at least ${String(p.limit)} characters`;
    case 'maxLength':
      return `must be at most ${String(p.limit)} characters`;
    case 'minItems':
      return p.limit === 1 ? 'must not be empty' : `must have at least ${String(p.limit)} items`;
    case 'maxItems':
      return `must have at most ${String(p.limit)} items`;
    case 'pattern':
      return PATTERN_WORDS.get(String(p.pattern)) ?? `must match ${String(p.pattern)}`;
    case 'enum':
      return `must be one of: ${(p.allowedValues as unknown[]).map(String).join(', ')}`;
    case 'not': {
      const refused = (error.schema as { enum?: unknown[] } | undefined)?.enum;
      return refused ? `must not be ${refused.map((v) => JSON.stringify(v)).join(' or ')}` : 'is invalid';
    }
    case 'oneOf':
    case 'anyOf':
      return 'has an invalid shape';
    default:
      return error.message ?? 'is invalid';
  }
}

/** A validation error Fastify reports as 400 with `message` as the envelope's error text. */
export const schemaErrorFormatter: NonNullable<FastifyServerOptions['schemaErrorFormatter']> = (
  errors: FastifySchemaValidationError[],
  dataVar: string,
): Error => {
  // With oneOf/anyOf, Ajv lists every failed branch before the combinator. A branch that failed
  // only on its `type` is not the shape the client meant. So: report the deepest error of a
  // branch whose type matched (`priority must be an integer`); failing that, the deepest
  // combinator, by its schema's description (written as the shape it wants) or else the types
  // its branches accept (`removeOnComplete must be a boolean, a number or an object`).
  const isCombinator = (e: FastifySchemaValidationError): boolean => e.keyword === 'oneOf' || e.keyword === 'anyOf';
  const combinators = errors.filter(isCombinator);
  const branchPaths = new Set(combinators.map((e) => e.instancePath));
  const isBranchType = (e: FastifySchemaValidationError): boolean => e.keyword === 'type' && branchPaths.has(e.instancePath);
  const specific = deepest(errors.filter((e) => !isCombinator(e) && !isBranchType(e)));
  if (specific !== undefined) return new Error(message(specific as ErrorObject, dataVar));
  const combinator = deepest(combinators);
  if (combinator === undefined) return new Error(errors[0] ? message(errors[0] as ErrorObject, dataVar) : `${dataVar} is invalid`);
  const field = fieldPath(combinator.instancePath, undefined, dataVar);
  const description = ((combinator as ErrorObject).parentSchema as { description?: unknown } | undefined)?.description;
  if (typeof description === 'string') return new Error(`${field} must be ${description}`);
  const types = errors.filter((e) => e.keyword === 'type' && e.instancePath === combinator.instancePath).map((e) => String(e.params.type));
  return new Error(types.length > 0 ? `${field} must be ${oneOfTypes(types)}` : `${field} has an invalid shape`);
};

/** The error with the longest instance path; the first of those in Ajv's order. */
function deepest(errors: FastifySchemaValidationError[]): FastifySchemaValidationError | undefined {
  let best: FastifySchemaValidationError | undefined;
  for (const e of errors) if (best === undefined || e.instancePath.length > best.instancePath.length) best = e;
  return best;
}

function message(error: ErrorObject, dataVar: string): string {
  const p = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties') return unknownFieldError(fieldPath(error.instancePath, p.additionalProperty, dataVar));
  if (error.keyword === 'required') {
    const unknown = unknownBeside(error);
    if (unknown !== undefined) return unknownFieldError(fieldPath(error.instancePath, unknown, dataVar));
  }
  const leaf = error.keyword === 'required' ? p.missingProperty : undefined;
  return `${fieldPath(error.instancePath, leaf, dataVar)} ${describe(error)}`;
}

/**
 * The first field of the object a `required` error is about that its schema does not take, if
 * any. Ajv checks `required` before `additionalProperties`, so `{"progres": 70}` was answered
 * `progress is required` and the typo that caused it went unnamed (while `{"progress": 70,
 * "foo": 1}` named foo): an unknown field is reported first. `verbose` gives the error its data
 * and schema.
 */
function unknownBeside(error: ErrorObject): string | undefined {
  const schema = error.parentSchema as { additionalProperties?: unknown; properties?: object } | undefined;
  const data: unknown = error.data;
  if (schema?.additionalProperties !== false || typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const known = schema.properties ?? {};
  return Object.keys(data).find((key) => !Object.hasOwn(known, key));
}

/** ["boolean", "number", "object"] → "a boolean, a number or an object". */
function oneOfTypes(types: string[]): string {
  const words = [...new Set(types.flatMap((t) => t.split(',')))].map((t) => ARTICLE_TYPES[t] ?? t);
  return words.length === 1 ? (words[0] as string) : `${words.slice(0, -1).join(', ')} or ${words[words.length - 1] as string}`;
}

/**
 * A text the broker would otherwise shorten (a fail reason) past `lengthMax` UTF-16 units: the
 * error naming it, else null. Ajv's maxLength counts code points, so a text of emoji within the
 * schema's limit can still be twice as long as the broker keeps; the route and the WebSocket
 * command check with this, in the schema's words, rather than let it be stored cut.
 */
export function textTooLong(field: string, value: unknown, lengthMax: number): string | null {
  return typeof value === 'string' && value.length > lengthMax ? `${field} must be at most ${lengthMax} characters` : null;
}
