// The record codec: LogRecord <-> protobuf bytes (proto/tapeq.proto, message tapeq.v1.Record).
//
// The only module that imports protobufjs, and only for the schema (reflection, at module load)
// and its Reader. From the reflected schema we generate one encoder and one decoder per message
// type (`new Function`, as protobufjs itself does), so there is no generated file to keep in
// sync with the .proto (see proto/README.md for the measured cost):
//   encode  straight into a RecordWriter: one growable Buffer per group commit, varints and
//           short ASCII strings written by hand, nested lengths back-patched
//   decode  from a protobufjs Reader straight into object literals: every field of the
//           TypeScript type present (absent proto3 `optional` and message fields are `null`,
//           absent repeated fields `[]`), so two decodes of the same bytes are deepEqual and
//           encode∘decode is the identity
// The bytes are the ones protobufjs writes (field order, minimal varints, 10-byte negatives).
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
type Decoder = (r: protobuf.Reader, end: number) => Plain;
type Encoder = (m: Plain, w: RecordWriter) => void;

// Scalar kinds the schema uses: [wire type, Reader/Writer method, proto3 default literal].
const SCALARS: Record<string, [number, string, string]> = {
  string: [2, 'string', "''"],
  bool: [0, 'bool', 'false'],
  uint32: [0, 'uint32', '0'],
  int32: [0, 'int32', '0'],
  sint32: [0, 'sint32', '0'],
  uint64: [0, 'uint64', '0'],
  double: [1, 'double', '0'],
};

interface Codec {
  decode: Decoder;
  encode: Encoder;
}

/** uint64 varint → number without protobufjs's LongBits detour (values stay < 2^53). */
function readU64(r: protobuf.Reader): number {
  const buf = r.buf;
  let pos = r.pos;
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= r.len) throw new RangeError('varint overruns record');
    const b = buf[pos++] as number;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      r.pos = pos;
      return value;
    }
    scale *= 128;
  }
  throw new RangeError('varint too long');
}

/** The output of the generated encoders: protobuf bytes written straight into one growable
 *  Buffer (a whole group commit's frames share one), varints by hand, short ASCII strings
 *  without a length pass, nested lengths back-patched (the reserved length byte is widened, and
 *  the message moved, only when it is 128 bytes or more). Byte-for-byte what protobufjs writes. */
export class RecordWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialBytes));
  }

  /** Makes room for n more bytes (doubling). */
  reserve(n: number): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(need, this.buf.length * 2));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  /** Leaves n bytes (e.g. a frame header filled in later). */
  skip(n: number): void {
    this.reserve(n);
    this.pos += n;
  }

  uint32(value: number): void {
    this.reserve(5);
    const b = this.buf;
    let p = this.pos;
    let v = value >>> 0;
    while (v > 127) {
      b[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    b[p++] = v;
    this.pos = p;
  }

  /** int32 (and enums): negative values take 10 bytes, sign-extended to 64 bits, as protobuf says. */
  int32(value: number): void {
    if (value >= 0) {
      this.uint32(value);
      return;
    }
    this.varint64(value >>> 0, 0xffffffff);
  }

  sint32(value: number): void {
    this.uint32(((value << 1) ^ (value >> 31)) >>> 0);
  }

  bool(value: boolean): void {
    this.uint32(value ? 1 : 0);
  }

  /** uint64 from a JS number (< 2^53): split into two u32 halves, then integer shifts only. */
  uint64(value: number): void {
    if (value < 0x100000000) {
      this.uint32(value);
      return;
    }
    const lo = value >>> 0;
    this.varint64(lo, ((value - lo) / 0x100000000) >>> 0);
  }

  /** The varint of the 64-bit value hi·2^32 + lo (both unsigned 32-bit halves). */
  private varint64(lo: number, hi: number): void {
    this.reserve(10);
    const b = this.buf;
    let p = this.pos;
    while (hi !== 0) {
      b[p++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    while (lo > 127) {
      b[p++] = (lo & 127) | 128;
      lo >>>= 7;
    }
    b[p++] = lo;
    this.pos = p;
  }

  double(value: number): void {
    this.reserve(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Length-prefixed UTF-8. Strings under 128 chars are tried as ASCII in one pass. */
  string(value: string): void {
    const n = value.length;
    if (n < 128) {
      this.reserve(1 + n);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    const length = Buffer.byteLength(value, 'utf8');
    this.uint32(length);
    this.reserve(length);
    this.buf.write(value, this.pos, length, 'utf8');
    this.pos += length;
  }

  /** Starts a length-delimited field: reserves one length byte; pass the result to ldelim. */
  fork(): number {
    this.reserve(1);
    return this.pos++;
  }

  ldelim(at: number): void {
    const length = this.pos - at - 1;
    if (length < 128) {
      this.buf[at] = length;
      return;
    }
    const extra = (length < 16384 ? 2 : length < 2097152 ? 3 : length < 268435456 ? 4 : 5) - 1;
    this.reserve(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos); // a memmove; Buffer#copy would allocate a view
    this.pos += extra;
    const end = this.pos;
    this.pos = at;
    this.uint32(length);
    this.pos = end;
  }
}

/** Length-delimited string. ASCII strings up to internBytesMax go through a small intern
 *  table (queue names, job names, states repeat in nearly every record: a hit costs a hash and
 *  a compare, no allocation); misses and longer strings are sliced natively straight from the
 *  reader's buffer, except the shortest, which are cheaper to build in JS. */
function readUniqueString(r: protobuf.Reader): string {
  const length = r.uint32();
  const start = r.pos;
  const end = start + length;
  if (end > r.len) throw new RangeError('string overruns record');
  r.pos = end;
  return (r.buf as SliceableBuffer).utf8Slice(start, end);
}

function readString(r: protobuf.Reader): string {
  const length = r.uint32();
  const start = r.pos;
  const end = start + length;
  if (end > r.len) throw new RangeError('string overruns record');
  r.pos = end;
  const buf = r.buf as SliceableBuffer;
  if (length > internBytesMax) return buf.utf8Slice(start, end);
  let hash = length;
  for (let i = start; i < end; i++) {
    const c = buf[i] as number;
    if (c >= 0x80) return buf.utf8Slice(start, end);
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  const slot = (hash >>> 0) & (internSlots - 1);
  const known = interned[slot] as string;
  if (known.length === length) {
    let i = 0;
    while (i < length && known.charCodeAt(i) === buf[start + i]) i++;
    if (i === length) return known;
  }
  let out = '';
  if (length <= 8) for (let i = start; i < end; i++) out += String.fromCharCode(buf[i] as number);
  else out = buf.latin1Slice(start, end);
  interned[slot] = out;
  return out;
}

/** Strings longer than this are never interned (ids and payloads rarely repeat). */
const internBytesMax = 24;
/** Slots of the intern table (a power of two); a slot holds the last string hashed to it. */
const internSlots = 512;
const interned: string[] = new Array<string>(internSlots).fill('');

/** Buffer's native slicers (public JS, untyped): a string straight from the bytes, no view. */
type SliceableBuffer = Buffer & { utf8Slice(start: number, end: number): string; latin1Slice(start: number, end: number): string };

/** Generates, from the reflected schema, a decoder that reads straight into one object literal
 *  (every field present: absent optional/message → null, repeated → []) and an encoder that
 *  skips proto3 defaults and nulls. `typeTag` prefixes the literal with `type: '<oneof name>'`. */
function buildCodec(type: protobuf.Type, cache: Map<string, Codec>, typeTag: string | null): Codec {
  const key = `${type.fullName}/${typeTag ?? ''}`;
  const cached = cache.get(key);
  if (cached !== undefined) return cached;
  const nested: Codec[] = [];
  const decls: string[] = [];
  const cases: string[] = [];
  const props: string[] = typeTag === null ? [] : [`type: '${typeTag}'`];
  const encs: string[] = [];
  type.fieldsArray.forEach((field, i) => {
    field.resolve();
    const name = field.name;
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`proto: odd field name ${name}`);
    const v = `f${i}`;
    const get = `m.${name}`;
    const tagOf = (wire: number): number => ((field.id << 3) | wire) >>> 0;
    props.push(`${name}: ${v}`);
    if (field.resolvedType instanceof protobuf.Type) {
      const n = nested.push(buildCodec(field.resolvedType, cache, null)) - 1;
      const read = `{ const l = r.uint32(); const e = r.pos + l; if (e > end) throw RangeError('message overruns'); const x = n[${n}].decode(r, e); if (r.pos !== e) throw RangeError('bad nested length');`;
      const write = (x: string): string => `{ w.uint32(${tagOf(2)}); const at = w.fork(); n[${n}].encode(${x}, w); w.ldelim(at); }`;
      if (field.repeated) {
        decls.push(`const ${v} = [];`);
        cases.push(`case ${field.id}: if ((t & 7) !== 2) break; ${read} ${v}.push(x); continue; }`);
        encs.push(`for (const x of ${get}) ${write('x')}`);
      } else {
        decls.push(`let ${v} = null;`);
        cases.push(`case ${field.id}: if ((t & 7) !== 2) break; ${read} ${v} = x; continue; }`);
        encs.push(`if (${get} != null) ${write(get)}`);
      }
      return;
    }
    const kind = field.resolvedType instanceof protobuf.Enum ? SCALARS['int32'] : SCALARS[field.type];
    if (kind === undefined) throw new Error(`proto: unsupported field type ${field.type} (${name})`);
    const [wire, method, dflt] = kind;
    const tag = tagOf(wire);
    if (field.repeated) {
      if (wire !== 2) throw new Error(`proto: packed repeated ${name} unsupported`);
      decls.push(`const ${v} = [];`);
      cases.push(`case ${field.id}: if ((t & 7) !== 2) break; ${v}.push(${readCall(method, name)}); continue;`);
      encs.push(`for (const x of ${get}) ${writeCall(method, tag, 'x')};`);
    } else {
      const optional = field.options?.['proto3_optional'] === true || field.partOf?.name.startsWith('_') === true;
      decls.push(`let ${v} = ${optional ? 'null' : dflt};`);
      cases.push(`case ${field.id}: if ((t & 7) !== ${wire}) break; ${v} = ${readCall(method, name)}; continue;`);
      encs.push(optional ? `if (${get} != null) ${writeCall(method, tag, get)};` : `if (${get} !== ${dflt}) ${writeCall(method, tag, get)};`);
    }
  });
  const decodeSrc = `return function (r, end) { ${decls.join(' ')}
    while (r.pos < end) { const t = r.uint32(); switch (t >>> 3) { ${cases.join('\n')} } r.skipType(t & 7); }
    return { ${props.join(', ')} }; }`;
  const encodeSrc = `return function (m, w) { ${encs.join('\n')} }`;
  const codec: Codec = {
    decode: new Function('n', 'u64', 'str', 'strUnique', decodeSrc)(nested, readU64, readString, readUniqueString) as Decoder,
    encode: new Function('n', encodeSrc)(nested) as Encoder,
  };
  cache.set(key, codec);
  return codec;
}

function writeCall(method: string, tag: number, value: string): string {
  return `(w.uint32(${tag}), w.${method}(${value}))`;
}

/** String fields whose values repeat from record to record (a queue, a job name, a lock owner):
 *  these go through the intern table. Ids, tokens, payloads and messages are unique, so hashing
 *  them to look for a repeat only costs time: they are sliced straight from the buffer. */
const internedFields = new Set(['queue', 'name', 'owner', 'cause', 'reason', 'groupId', 'pattern', 'tz', 'address']);

function readCall(method: string, field: string): string {
  if (method === 'uint64') return 'u64(r)';
  if (method === 'string') return internedFields.has(field) ? 'str(r)' : 'strUnique(r)';
  return `r.${method}()`;
}

const codecCache = new Map<string, Codec>();
const actorCodec = buildCodec(root.lookupType('tapeq.v1.Actor'), codecCache, null);
const bodyCodecs = new Map<string, { codec: Codec; tag: number }>();
const bodyCodecsById: Array<{ type: string; codec: Codec } | undefined> = [];
for (const fieldName of bodyOneof.oneof) {
  const field = RecordType_.fields[fieldName];
  if (field === undefined || !(field.resolvedType instanceof protobuf.Type)) {
    throw new Error(`proto: body.${fieldName} is not a message`);
  }
  const codec = buildCodec(field.resolvedType, codecCache, fieldName);
  bodyCodecs.set(fieldName, { codec, tag: ((field.id << 3) | 2) >>> 0 });
  bodyCodecsById[field.id] = { type: fieldName, codec };
}
for (const [name, id] of [['offset', 1], ['timestamp', 2], ['actor', 3]] as const) {
  if (RecordType_.fields[name]?.id !== id) throw new Error(`proto: Record.${name} must be field ${id}`);
}

/** The body field names of the proto oneof, in field order (must equal RECORD_TYPES). */
export const PROTO_BODY_TYPES: readonly string[] = bodyOneof.oneof.slice();

/** Appends the protobuf bytes of `r` to writer `w` (lets a batch share one buffer). */
export function encodeRecordInto(r: LogRecord, w: RecordWriter): void {
  if (r.offset !== 0) {
    w.uint32(8);
    w.uint64(r.offset);
  }
  if (r.timestamp !== 0) {
    w.uint32(16);
    w.uint64(r.timestamp);
  }
  if (r.actor !== null) {
    w.uint32(26);
    const at = w.fork();
    actorCodec.encode(r.actor as unknown as Plain, w);
    w.ldelim(at);
  }
  const body = bodyCodecs.get(r.body.type);
  if (body === undefined) throw new Error(`unknown record type ${r.body.type}`);
  w.uint32(body.tag);
  const at = w.fork();
  body.codec.encode(r.body as unknown as Plain, w);
  w.ldelim(at);
}

export function encodeRecord(r: LogRecord): Uint8Array {
  const w = new RecordWriter();
  encodeRecordInto(r, w);
  return new Uint8Array(w.buf.subarray(0, w.pos));
}

export class RecordDecodeError extends Error {
  override readonly name = 'RecordDecodeError';
}

/** A reader over `bytes` for decodeRecordAt; reuse one per buffer when decoding many frames. */
export function createReader(bytes: Uint8Array): protobuf.Reader {
  // Always over a Buffer (a view, no copy): readString slices strings with its native methods.
  return protobuf.Reader.create(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
}

/** Decodes reader.buf[start, end). Throws RecordDecodeError. */
export function decodeRecordAt(reader: protobuf.Reader, start: number, end: number): LogRecord {
  reader.pos = start;
  reader.len = end;
  let offset = 0;
  let timestamp = 0;
  let actor: Plain | null = null;
  let type: string | null = null;
  let body: Plain | null = null;
  try {
    while (reader.pos < end) {
      const t = reader.uint32();
      const id = t >>> 3;
      if (t === 8) offset = readU64(reader);
      else if (t === 16) timestamp = readU64(reader);
      else if (t === 26) actor = nestedDecode(reader, end, actorCodec.decode);
      else if ((t & 7) === 2 && bodyCodecsById[id] !== undefined) {
        const entry = bodyCodecsById[id];
        type = entry.type;
        body = nestedDecode(reader, end, entry.codec.decode);
      } else reader.skipType(t & 7);
    }
  } catch (err) {
    throw new RecordDecodeError(`undecodable record: ${(err as Error).message}`, { cause: err });
  }
  if (type === null || body === null) throw new RecordDecodeError('record has no body');
  return { offset, timestamp, actor, body } as unknown as LogRecord;
}

function nestedDecode(reader: protobuf.Reader, end: number, decode: Decoder): Plain {
  const length = reader.uint32();
  const nestedEnd = reader.pos + length;
  if (nestedEnd > end) throw new RangeError('message overruns record');
  const value = decode(reader, nestedEnd);
  if (reader.pos !== nestedEnd) throw new RangeError('bad nested length');
  return value;
}

/** Decodes bytes[start, end) (default: all) into a plain LogRecord. Throws RecordDecodeError. */
export function decodeRecord(bytes: Uint8Array, start = 0, end = bytes.length): LogRecord {
  return decodeRecordAt(createReader(bytes), start, end);
}

/** Reads only the offset and timestamp of an encoded record (fields 1 and 2, which the encoder
 *  writes first; absent means 0). Used by recovery and index rebuilds to avoid full decodes:
 *  plain byte reads, no Reader or other allocation. A malformed varint stops the peek (the
 *  offset check that follows then fails, or the full decode reports it). */
export function peekOffsetTimestamp(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: { offset: number; timestamp: number },
): void {
  out.offset = 0;
  out.timestamp = 0;
  let pos = start;
  while (pos < end) {
    const tag = bytes[pos] as number;
    if (tag !== 8 && tag !== 16) return;
    const value = varintAt(bytes, pos + 1, end);
    if (value < 0) return;
    pos = varintEnd;
    if (tag === 8) out.offset = value;
    else out.timestamp = value;
  }
}

/** Where the last successful varintAt ended. */
let varintEnd = 0;

/** The unsigned varint at bytes[pos] (< 2^53 by our invariants), or -1 if it runs past `end`
 *  or is longer than 10 bytes; sets varintEnd. Integer math for the first 28 bits. */
function varintAt(bytes: Uint8Array, pos: number, end: number): number {
  let value = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (pos >= end) return -1;
    const b = bytes[pos++] as number;
    value |= (b & 0x7f) << shift;
    if (b < 0x80) {
      varintEnd = pos;
      return value;
    }
  }
  let scale = 0x10000000;
  for (let i = 4; i < 10; i++) {
    if (pos >= end) return -1;
    const b = bytes[pos++] as number;
    value += (b & 0x7f) * scale;
    if (b < 0x80) {
      varintEnd = pos;
      return value;
    }
    scale *= 128;
  }
  return -1;
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
