// Avro codec for snapshot payloads: StateImage ⇄ bytes (file format 1), and the head and job
// blocks of file format 2 (format-v2.ts, schema-v2.json). The only module that imports avsc.
//
// Versioning. Every payload schema ever written is kept as `schema-v<N>.json` and registered in
// `schemas` below; the file header (format.ts) stores which N wrote the payload. Decoding reads
// with the writer's own schema and then runs the chain of `upgrade` functions N→N+1→…→current,
// so adding v2 is: add `schema-v2.json`, register it with the v1→v2 upgrade on the v1 entry,
// bump `schemaVersionCurrent`. Old snapshots stay readable forever; encoding always uses the
// current schema.
//
// Numbers. Integers use Avro `long` (zig-zag varint). avsc's built-in long maps to JS numbers and
// is exact for every integer in ±(2^53 − 2); a value it cannot represent exactly (a fraction,
// ±MAX_SAFE_INTEGER, beyond) is refused on encode and on decode ("potential precision loss"),
// never silently rounded. We measured a `LongType.__with` variant covering ±MAX_SAFE_INTEGER too:
// it cost ~40% more encode/decode time on a 1M-job image for two extra values no field can hold
// (offsets, ms timestamps and counts are far below 2^52), so the built-in is used. `progress` is
// a double. Enums (`state`, `backoffType`) are ints. Nullable fields are unions with null;
// `data`, `result` and worker `config` stay JSON text.
//
// Decoded images are plain objects (see readPlainRecords), directly usable by importState.
// Pure functions, no I/O. The Avro container helpers at the end (for `tapeq export`) build
// streams; the caller connects them to files.

import type { Duplex } from 'node:stream';
import avro from 'avsc';
import type { JobState } from '../record/types.js';
import type { StatsImage, StateImage, WorkerImage } from '../state/image.js';
import type { JobOptions, JobRun } from '../state/index.js';
import type { PayloadArena } from '../state/payloads.js';
import schemaV1 from './schema-v1.json' with { type: 'json' };
import schemaV2 from './schema-v2.json' with { type: 'json' };

/** One payload schema ever written, and how its decoded images become the next version's. */
export interface SchemaVersion {
  schema: unknown;
  /** Absent (null) only for the current version. */
  upgrade: ((image: unknown) => unknown) | null;
}

export interface ImageCodec {
  /** Schema version this codec writes. */
  readonly schemaVersion: number;
  encodeImage(image: StateImage): Buffer;
  /** Decodes a payload written with `schemaVersion` and upgrades it to the current layout. */
  decodeImage(payload: Buffer, schemaVersion: number): StateImage;
}

export class SnapshotCodecError extends Error {
  readonly code = 'SNAPSHOT_CODEC';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SnapshotCodecError';
  }
}

/** The slice of avsc's RecordType we rely on (pinned avsc 5.x; the plain-objects test guards it). */
interface RecordTypeInternals {
  fields: Array<{ name: string; type: unknown }>;
  _createReader(this: RecordTypeInternals): (tap: unknown) => unknown;
}

/**
 * avsc decodes records into instances of generated classes, but the image must be plain data
 * (deep-equal to what exportState built; structured-clone and JSON alike). A record type builds
 * its reader once, in its constructor, and then freezes itself; so while our schemas compile,
 * RecordType's reader factory is swapped for one whose reader returns an object literal with
 * the fields in schema order (the shape V8 handles best), and restored right after.
 */
function plainRecordReader(this: RecordTypeInternals): (tap: unknown) => unknown {
  const props = this.fields.map((f, i) => `${JSON.stringify(f.name)}: f${i}._read(t)`).join(', ');
  const args = this.fields.map((_, i) => `f${i}`);
  // Field names are Avro identifiers ([A-Za-z_][A-Za-z0-9_]*), validated by avsc before this runs.
  const make = new Function(...args, `return function readPlain(t) { return { ${props} }; };`);
  return make(...this.fields.map((f) => fieldReaders.get(f.name) ?? f.type)) as (tap: unknown) => unknown;
}

/** The slice of avsc's Tap (the decoding cursor) a field reader uses. */
interface TapInternals {
  buf: Buffer;
  pos: number;
  readLong(): number;
  _invalidate(): void;
}

interface FieldReader {
  _read(tap: TapInternals): unknown;
}

/** Readers that replace a field's own type, by field name, while a schema compiles. */
let fieldReaders: ReadonlyMap<string, FieldReader> = new Map();

function compile(schema: unknown, readers: ReadonlyMap<string, FieldReader> = new Map()): avro.Type {
  const proto = (avro.types.RecordType as unknown as { prototype: RecordTypeInternals }).prototype;
  const original = proto._createReader;
  proto._createReader = plainRecordReader;
  fieldReaders = readers;
  try {
    return avro.Type.forSchema(schema as avro.Schema, {
      wrapUnions: 'never',
      omitRecordMethods: true,
      noAnonymousTypes: true,
    });
  } finally {
    proto._createReader = original;
    fieldReaders = new Map();
  }
}

/** Paths of the fields a schema refuses, so the error names them (only on the failure path). */
function invalidPaths(type: avro.Type, image: StateImage): string[] {
  const paths: string[] = [];
  type.isValid(image, {
    errorHook: (path: string[], value: unknown) => {
      if (paths.length < 5) paths.push(`${path.join('.')}=${String(value)}`);
    },
  });
  return paths;
}

/** Builds a codec over a table of versions; exported so a test can play an older writer. */
export function createImageCodec(versions: ReadonlyMap<number, SchemaVersion>, current: number): ImageCodec {
  const types = new Map<number, { type: avro.Type; upgrade: SchemaVersion['upgrade'] }>();
  for (const [v, entry] of versions) types.set(v, { type: compile(entry.schema), upgrade: entry.upgrade });
  const known = [...types.keys()].sort((a, b) => a - b).join(', ');
  const entryOf = (v: number) => {
    const entry = types.get(v);
    if (entry === undefined) throw new SnapshotCodecError(`snapshot schema version ${v} is unknown (this build reads ${known})`);
    return entry;
  };
  for (let v = Math.min(...types.keys()); v < current; v++) {
    if (entryOf(v).upgrade === null) throw new Error(`schema v${v} lacks an upgrade to v${v + 1}`);
  }
  const writer = entryOf(current).type;

  return {
    schemaVersion: current,
    encodeImage(image) {
      try {
        return writer.toBuffer(image);
      } catch (err) {
        const paths = invalidPaths(writer, image).join(', ');
        throw new SnapshotCodecError(`state image does not fit snapshot schema v${current}: ${paths}`, { cause: err });
      }
    },
    decodeImage(payload, schemaVersion) {
      if (schemaVersion > current) {
        throw new SnapshotCodecError(`snapshot schema version ${schemaVersion} is newer than this build (${current})`);
      }
      let image: unknown;
      try {
        image = entryOf(schemaVersion).type.fromBuffer(payload);
      } catch (err) {
        if (err instanceof SnapshotCodecError) throw err;
        throw new SnapshotCodecError(`payload does not decode with schema v${schemaVersion}: ${String(err)}`, { cause: err });
      }
      for (let v = schemaVersion; v < current; v++) image = (entryOf(v).upgrade as (i: unknown) => unknown)(image);
      return image as StateImage;
    },
  };
}

const codec = createImageCodec(new Map([[1, { schema: schemaV1, upgrade: null }]]), 1);

/** Schema version written by this build. */
export const schemaVersionCurrent = codec.schemaVersion;

export function encodeImage(image: StateImage): Buffer {
  return codec.encodeImage(image);
}

export function decodeImage(payload: Buffer, schemaVersion: number = schemaVersionCurrent): StateImage {
  return codec.decodeImage(payload, schemaVersion);
}

/** File format 2 (format-v2.ts): the section after the header. */
export interface SnapshotHead {
  offset: number;
  timestamp: number;
  jobCount: number;
  queues: QueueHead[];
  workers: WorkerImage[];
  stats: StatsImage;
}

/** A queue's counts of job rows, which follow in this order: waiting, completed, failed. */
export interface QueueHead {
  name: string;
  paused: boolean;
  waitingCount: number;
  completedCount: number;
  failedCount: number;
}

/** File format 2: one job, with the Job's own layout (options and run are null when default). */
export interface JobRow {
  id: string;
  /** Index into SnapshotHead.queues. */
  queue: number;
  /** null: the default job name. */
  name: string | null;
  data: string;
  priority: number;
  createdAt: number;
  runAt: number;
  state: JobState;
  seq: number;
  pendingDeps: readonly string[];
  options: JobOptions | null;
  run: JobRun | null;
}

/** Where `rowsIntoType` puts the data of the rows it decodes (set only while decodeRowsInto runs). */
let payloadTarget: PayloadArena | null = null;

/** An Avro string field read as bytes straight into payloadTarget: no string made. */
const bytesIntoArena: FieldReader = {
  _read(tap) {
    const bytes = tap.readLong();
    const start = tap.pos;
    // A negative or unreadable (NaN) length, or one past the end: the block fails the decoder's
    // final check, as with avsc's own string reader, and nothing reaches the arena.
    if (!(bytes >= 0) || start + bytes > tap.buf.length) {
      tap._invalidate();
      return '';
    }
    tap.pos = start + bytes;
    return (payloadTarget as PayloadArena).storeBytes(tap.buf, start, tap.pos);
  },
};

const headType = compile(schemaV2.head);
const rowsType = compile(schemaV2.jobs);
const rowsIntoType = compile(
  schemaV2.jobs,
  new Map([
    ['id', bytesIntoArena],
    ['data', bytesIntoArena],
  ]),
);
/** Schema version of file format 2's head and job rows (schema-v2.json). */
export const rowsSchemaVersion = 2;

function encodeWith(type: avro.Type, value: unknown, what: string): Buffer {
  try {
    return type.toBuffer(value);
  } catch (err) {
    throw new SnapshotCodecError(`${what} does not fit snapshot schema v${rowsSchemaVersion}: ${String(err)}`, { cause: err });
  }
}

function decodeWith(type: avro.Type, bytes: Buffer, what: string): unknown {
  try {
    return type.fromBuffer(bytes);
  } catch (err) {
    throw new SnapshotCodecError(`${what} does not decode with schema v${rowsSchemaVersion}: ${String(err)}`, { cause: err });
  }
}

export function encodeHead(head: SnapshotHead): Buffer {
  return encodeWith(headType, head, 'snapshot head');
}

export function decodeHead(bytes: Buffer): SnapshotHead {
  return decodeWith(headType, bytes, 'snapshot head') as SnapshotHead;
}

/** One block of job rows; rows decode into plain objects whose options/run are usable as is. */
export function encodeRows(rows: readonly JobRow[]): Buffer {
  return encodeWith(rowsType, rows, 'job block');
}

export function decodeRows(bytes: Buffer): JobRow[] {
  return decodeWith(rowsType, bytes, 'job block') as JobRow[];
}

/** A job row whose id and data are in an arena already (their positions) unless the arena
 *  refused them (then they are strings). */
export type StoredJobRow = Omit<JobRow, 'id' | 'data'> & { id: string | number; data: string | number };

/** decodeRows, with every row's id and data stored in `payloads` as it is read. */
export function decodeRowsInto(bytes: Buffer, payloads: PayloadArena): StoredJobRow[] {
  payloadTarget = payloads;
  try {
    return decodeWith(rowsIntoType, bytes, 'job block') as StoredJobRow[];
  } finally {
    payloadTarget = null;
  }
}

/**
 * An Avro object container file encoder (header with the schema, blocks, sync markers) for
 * `schema`, used by `tapeq export`: write plain values, pipe the bytes to a file. `codec` is one
 * of the two every Avro implementation reads: 'null' or 'deflate'. Unions stay unwrapped (a
 * nullable field takes the value or null).
 */
export function createAvroContainerEncoder(schema: unknown, codec: 'null' | 'deflate', blockBytes: number): Duplex {
  const type = avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'never' });
  return new avro.streams.BlockEncoder(type as unknown as avro.Schema, { codec, blockSize: blockBytes, writeHeader: true });
}

/** Decodes the bytes of an Avro object container file back into plain values (unwrapped unions). */
export function createAvroContainerDecoder(): Duplex {
  return new avro.streams.BlockDecoder({ parseHook: (schema) => avro.Type.forSchema(schema, { wrapUnions: 'never' }) });
}
