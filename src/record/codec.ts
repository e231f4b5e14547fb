// The record codec: LogRecord <-> protobuf bytes (proto/tapeq.proto, message tapeq.v1.Record).
//
// The only module that imports protobufjs. The schema is loaded by reflection at module load;
// protobufjs then generates a specialised encoder/decoder per message type at first use, so
// there is no generated code to keep in sync with the .proto (see proto/README.md for the
// measured cost). On top of protobufjs's decoded Message instances we generate, also from the
// reflected schema, one "plain" mapper per message type that copies every field into an object
// literal: decoded records are plain objects with every field of the TypeScript type present
// (absent proto3 `optional` and message fields are `null`, absent repeated fields `[]`), so two
// decodes of the same bytes are deepEqual and encode∘decode is the identity.
//
// Invariants: 64-bit fields decode as JS numbers (util.Long is disabled before the schema is
// loaded); every value we store is < 2^53. All functions are synchronous and pure.

import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import {
  JOB_STATE_NAMES,
  REMOVE_REASON_NAMES,
  type JobState,
  type LogRecord,
  type RecordBody,
  type RecordType,
  type RemoveReason,
} from './types.js';

protobuf.util.Long = null as never;
protobuf.configure();

const protoUrl = new URL('../../../proto/tapeq.proto', import.meta.url);
const root = protobuf.parse(readFileSync(protoUrl, 'utf8'), { keepCase: false }).root;
root.resolveAll();
const RecordType_ = root.lookupType('tapeq.v1.Record');
const bodyOneof = RecordType_.oneofs['body'];
if (bodyOneof === undefined) throw new Error('proto: Record has no oneof body');

type Plain = Record<string, unknown>;
type Mapper = (m: Plain) => Plain;

/** Builds `m => ({a: m.a, b: map(m.b), ...})` for a message type, straight from the schema.
 *  Generated code because object literals give every decoded record one hidden class. */
function buildMapper(type: protobuf.Type, cache: Map<string, Mapper>, prefix: string): Mapper {
  const cached = cache.get(type.fullName + prefix);
  if (cached !== undefined) return cached;
  const nested: Mapper[] = [];
  const parts: string[] = prefix === '' ? [] : [prefix];
  for (const field of type.fieldsArray) {
    field.resolve();
    const name = field.name;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`proto: odd field name ${name}`);
    const get = `m.${name}`;
    if (field.resolvedType instanceof protobuf.Type) {
      const index = nested.push(buildMapper(field.resolvedType, cache, '')) - 1;
      parts.push(
        field.repeated
          ? `${name}: ${get}.map(n[${index}])`
          : `${name}: ${get} == null ? null : n[${index}](${get})`,
      );
    } else if (field.repeated) {
      parts.push(`${name}: ${get}.slice()`);
    } else {
      parts.push(`${name}: ${get}`);
    }
  }
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  const make = new Function('n', `return function (m) { return { ${parts.join(', ')} }; }`);
  const mapper = make(nested) as Mapper;
  cache.set(type.fullName + prefix, mapper);
  return mapper;
}

const mapperCache = new Map<string, Mapper>();
const actorMapper = buildMapper(root.lookupType('tapeq.v1.Actor'), mapperCache, '');
const bodyMappers = new Map<string, Mapper>();
for (const fieldName of bodyOneof.oneof) {
  const field = RecordType_.fields[fieldName];
  if (field === undefined || !(field.resolvedType instanceof protobuf.Type)) {
    throw new Error(`proto: body.${fieldName} is not a message`);
  }
  bodyMappers.set(fieldName, buildMapper(field.resolvedType, mapperCache, `type: '${fieldName}'`));
}

/** The body field names of the proto oneof, in field order (must equal RECORD_TYPES). */
export const PROTO_BODY_TYPES: readonly string[] = bodyOneof.oneof.slice();

/** Protobuf bytes of one record. The body object is handed to protobufjs as is: its `type`
 *  key is not a proto field and is ignored, null optional fields are skipped. */
export function encodeRecord(r: LogRecord): Uint8Array {
  const message: Plain = { offset: r.offset, timestamp: r.timestamp, actor: r.actor };
  message[r.body.type] = r.body;
  return RecordType_.encode(message).finish();
}

export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
}

/** Decodes bytes[start, end) (default: all) into a plain LogRecord. Throws RecordDecodeError. */
export function decodeRecord(bytes: Uint8Array, start = 0, end = bytes.length): LogRecord {
  let m: Plain;
  try {
    const reader = protobuf.Reader.create(bytes);
    reader.pos = start;
    m = RecordType_.decode(reader, end - start) as unknown as Plain;
  } catch (err) {
    throw new RecordDecodeError(`undecodable record: ${(err as Error).message}`, { cause: err });
  }
  const type = m['body'];
  const mapper = typeof type === 'string' ? bodyMappers.get(type) : undefined;
  if (mapper === undefined) throw new RecordDecodeError('record has no body');
  return {
    offset: m['offset'] as number,
    timestamp: m['timestamp'] as number,
    actor: m['actor'] == null ? null : (actorMapper(m['actor'] as Plain) as unknown as LogRecord['actor']),
    body: mapper(m[type as string] as Plain) as unknown as RecordBody,
  };
}

/** Reads only the offset and timestamp of an encoded record (fields 1 and 2, which protobufjs
 *  writes first; absent means 0). Used by recovery and index rebuilds to avoid full decodes. */
export function peekOffsetTimestamp(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: { offset: number; timestamp: number },
): void {
  const reader = protobuf.Reader.create(bytes);
  reader.pos = start;
  reader.len = end;
  out.offset = 0;
  out.timestamp = 0;
  while (reader.pos < end) {
    const tag = reader.uint32();
    if (tag === 8) out.offset = reader.uint64() as unknown as number;
    else if (tag === 16) out.timestamp = reader.uint64() as unknown as number;
    else return;
  }
}

const FAIL_OUTCOME_NAMES = ['retry', 'dead'] as const;
const STALL_OUTCOME_NAMES = ['requeued', 'stall-failed'] as const;
const BACKOFF_TYPE_NAMES = ['exponential', 'fixed'] as const;

function nameOf(table: readonly string[] | Record<number, string>, n: number): string {
  return (table as Record<number, string>)[n] ?? String(n);
}

/** A plain JSON view of a record for logcat and history: enum numbers become names. */
export function recordToJson(r: LogRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {
    offset: r.offset,
    timestamp: r.timestamp,
    time: new Date(r.timestamp).toISOString(),
    type: r.body.type,
  };
  if (r.actor !== null) out['actor'] = { ...r.actor };
  const body = r.body;
  for (const [key, value] of Object.entries(body)) if (key !== 'type') out[key] = value;
  switch (body.type) {
    case 'pushed':
      out['state'] = JOB_STATE_NAMES[body.state] ?? String(body.state);
      out['job'] = { ...body.job, backoffType: nameOf(BACKOFF_TYPE_NAMES, body.job.backoffType) };
      break;
    case 'failed':
      out['outcome'] = nameOf(FAIL_OUTCOME_NAMES, body.outcome);
      break;
    case 'stalled':
      out['outcome'] = nameOf(STALL_OUTCOME_NAMES, body.outcome);
      break;
    case 'retried':
      out['prev'] = stateName(body.prev);
      break;
    case 'removed':
      out['reason'] = REMOVE_REASON_NAMES[body.reason as RemoveReason] ?? String(body.reason);
      out['jobs'] = body.jobs.map((j) => ({ jobId: j.jobId, prev: stateName(j.prev) }));
      break;
    default:
      break;
  }
  return out;
}

function stateName(s: JobState): string {
  return JOB_STATE_NAMES[s] ?? String(s);
}
