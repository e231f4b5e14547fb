// Avro codec for snapshot payloads: StateImage ⇄ bytes (file format 1), and the head and job
// blocks of file format 2 (format-v2.ts; schema-v3.json, schema-v2.json still read). The only
// module that imports avsc.
//
// Versioning. Every payload schema ever written is kept as `schema-v<N>.json` and registered
// below; the file header (format.ts) stores which N wrote the payload. Decoding reads with the
// writer's own schema and then runs the chain of `upgrade` functions from N through each newer
// registered version to the current one. Old snapshots stay readable forever; encoding always
// uses the current schema. The numbers are shared by both file formats: 1 was format 1's
// StateImage, 2 format 2's head and rows, 3 both of them with Repeat.key (`image` for format 1,
// `head` and `jobs` for format 2); files of 1 and 2 load with every key "" (a schedule from a log
// older than keys, which is what replaying that log gives too).
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
import schemaV3 from './schema-v3.json' with { type: 'json' };

/** One payload schema ever written, and how its decoded images become the next version's. */
export interface SchemaVersion {
  schema: unknown;
  /** To the next newer registered version; absent (null) only for the current version. */
  upgrade: ((image: unknown) => unknown) | null;
}

export interface ImageCodec {
  /** Schema version this codec writes. */
  readonly schemaVersion: number;
  /** Schema versions decodeImage reads (the current one and those the upgrade chain starts from). */
  readonly schemaVersionsRead: readonly number[];
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
  const chain = [...types.keys()].filter((v) => v <= current).sort((a, b) => a - b);
  for (const v of chain) {
    if (v < current && entryOf(v).upgrade === null) throw new Error(`schema v${v} lacks an upgrade to the next version`);
  }
  entryOf(current);
  const writer = entryOf(current).type;

  return {
    schemaVersion: current,
    schemaVersionsRead: chain,
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
      for (const v of chain) if (v >= schemaVersion && v < current) image = (entryOf(v).upgrade as (i: unknown) => unknown)(image);
      return image as StateImage;
    },
  };
}

/** Every schema has `stats.seconds`, per-second counts by record time that the state no longer
 *  keeps (pushPerSec/pullPerSec are measured live: broker/throughput.ts): written empty so that
 *  the schema, and the files older builds read, stay as they were; dropped on read. */
function statsOut(stats: StatsImage): StatsImage & { seconds: never[] } {
  return { ...stats, seconds: [] };
}

function statsIn(stats: StatsImage & { seconds?: unknown }): StatsImage {
  const { seconds: _dropped, ...kept } = stats;
  return kept;
}

interface RepeatHolder {
  repeat: { key?: string } | null;
}

/** A repeat decoded from a file older than Repeat.key: the key of a schedule from an older log. */
function keyRepeat(holder: RepeatHolder | null): void {
  if (holder !== null && holder.repeat !== null && holder.repeat.key === undefined) holder.repeat.key = '';
}

/** Schema 1 → 3: Repeat.key, and StateImage.version 2. */
function upgradeImageV1(image: unknown): unknown {
  const v1 = image as { version: number; jobs: RepeatHolder[] };
  for (const job of v1.jobs) keyRepeat(job);
  v1.version = 2;
  return v1;
}

const codec = createImageCodec(
  new Map([
    [1, { schema: schemaV1, upgrade: upgradeImageV1 }],
    [3, { schema: schemaV3.image, upgrade: null }],
  ]),
  3,
);

/** Schema version written by this build. */
export const schemaVersionCurrent = codec.schemaVersion;
/** Schema versions of file format 1 this build reads. */
export const imageSchemaVersionsRead = codec.schemaVersionsRead;

export function encodeImage(image: StateImage): Buffer {
  return codec.encodeImage({ ...image, stats: statsOut(image.stats) });
}

export function decodeImage(payload: Buffer, schemaVersion: number = schemaVersionCurrent): StateImage {
  const image = codec.decodeImage(payload, schemaVersion);
  return { ...image, stats: statsIn(image.stats) };
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

const arenaReaders = new Map([
  ['id', bytesIntoArena],
  ['data', bytesIntoArena],
]);
/** The head did not change from schema 2 to 3. */
const headType = compile(schemaV3.head);
const rowsType = compile(schemaV3.jobs);
const rowType = (rowsType as unknown as { itemsType: avro.Type }).itemsType;
/** The JobRow types with the arena readers, for the rows that are not plain, by schema version. */
const rowIntoTypes = new Map<number, avro.Type>([
  [2, (compile(schemaV2.jobs, arenaReaders) as unknown as { itemsType: avro.Type }).itemsType],
  [3, (compile(schemaV3.jobs, arenaReaders) as unknown as { itemsType: avro.Type }).itemsType],
]);
/** Schema version file format 2 writes its head and job rows with (schema-v3.json). */
export const rowsSchemaVersion = 3;
/** Schema versions of file format 2 this build reads. */
export const rowsSchemaVersionsRead: readonly number[] = [2, 3];

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
  return encodeWith(headType, { ...head, stats: statsOut(head.stats) }, 'snapshot head');
}

export function decodeHead(bytes: Buffer): SnapshotHead {
  const head = decodeWith(headType, bytes, 'snapshot head') as SnapshotHead;
  return { ...head, stats: statsIn(head.stats) };
}

/** One block of job rows; rows decode into plain objects whose options/run are usable as is. */
export function encodeRows(rows: readonly JobRow[]): Buffer {
  return encodeWith(rowsType, rows, 'job block');
}

/** Room in front of a block's rows for their count (a zig-zag varint of at most 10 bytes). */
const countRoomBytes = 10;

/**
 * Encodes job rows one at a time into one reusable buffer, so that a block's size is known after
 * every row and the writer can end blocks by bytes as well as by rows. take() yields the block
 * (byte for byte what encodeRows makes of the same rows: an Avro array as one count, the rows and
 * a 0) and starts the next one in the same buffer: the caller must be done with a block before it
 * adds the next row. The buffer grows to about the largest block (the byte bound plus one row).
 */
export class JobBlockEncoder {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private end = countRoomBytes;
  private rows = 0;

  /** Rows added since the last take(). */
  get rowCount(): number {
    return this.rows;
  }

  /** Encoded bytes of those rows. */
  get rowBytes(): number {
    return this.end - countRoomBytes;
  }

  add(row: JobRow): void {
    let end = this.encode(row);
    if (end < 0) {
      // avsc: a negative position is the bytes that did not fit.
      this.grow(this.buffer.length - end);
      end = this.encode(row);
      if (end < 0) throw new Error(`JobBlockEncoder: row of job ${row.id} did not fit after growing`);
    }
    this.end = end;
    this.rows++;
  }

  take(): Buffer {
    if (this.end + 1 > this.buffer.length) this.grow(this.end + 1);
    this.buffer[this.end] = 0;
    let start = countRoomBytes;
    if (this.rows > 0) {
      // Zig-zag of a positive count is twice the count, as a varint.
      let zigzag = this.rows * 2;
      const count: number[] = [];
      do {
        count.push(zigzag >= 0x80 ? (zigzag & 0x7f) | 0x80 : zigzag);
        zigzag = Math.floor(zigzag / 0x80);
      } while (zigzag > 0);
      start -= count.length;
      this.buffer.set(count, start);
    }
    const block = this.buffer.subarray(start, this.end + 1);
    this.end = countRoomBytes;
    this.rows = 0;
    return block;
  }

  private encode(row: JobRow): number {
    try {
      return rowType.encode(row, this.buffer, this.end);
    } catch (err) {
      throw new SnapshotCodecError(`job ${row.id} does not fit snapshot schema v${rowsSchemaVersion}: ${String(err)}`, { cause: err });
    }
  }

  private grow(bytes: number): void {
    const grown = Buffer.allocUnsafe(Math.max(bytes, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.end);
    this.buffer = grown;
  }
}

export function decodeRows(bytes: Buffer): JobRow[] {
  return decodeWith(rowsType, bytes, 'job block') as JobRow[];
}

/** A job row whose id and data are in an arena already (their positions) unless the arena
 *  refused them (then they are strings). */
export type StoredJobRow = Omit<JobRow, 'id' | 'data'> & { id: string | number; data: string | number };

/**
 * decodeRows, with every row's id and data stored in `payloads` as it is read, handed to `each`
 * one row at a time instead of returned. The common row (no pending dependencies, default
 * options, never run) is read by the hand-written reader below into one object that is reused for
 * every such row, so `each` must copy what it keeps; any other row is decoded by avsc. A block
 * that does not decode throws SnapshotCodecError, possibly after `each` saw its first rows (a
 * restore then drops the whole state).
 */
export function decodeRowsInto(
  bytes: Buffer,
  payloads: PayloadArena,
  each: (row: StoredJobRow) => void,
  schemaVersion: number = rowsSchemaVersion,
): void {
  const rowType = rowIntoTypes.get(schemaVersion);
  if (rowType === undefined) throw new SnapshotCodecError(`job block of schema version ${schemaVersion} (this build reads ${rowsSchemaVersionsRead.join(', ')})`);
  // The reader's cursor is module state: `each` must not decode another block meanwhile.
  if (payloadTarget !== null) throw new Error('decodeRowsInto: called again from its own callback');
  payloadTarget = payloads;
  const passOn = (row: StoredJobRow): void => {
    try {
      each(row);
    } catch (err) {
      throw new CallbackError(err);
    }
  };
  try {
    readRows(bytes, payloads, rowType, schemaVersion < 3, passOn);
  } catch (err) {
    // What `each` threw is its own error, not a decoding one.
    if (err instanceof CallbackError) throw err.cause;
    if (err instanceof SnapshotCodecError) throw err;
    throw new SnapshotCodecError(`job block does not decode with schema v${rowsSchemaVersion}: ${String(err)}`, { cause: err });
  } finally {
    payloadTarget = null;
    source = noBytes;
  }
}

/** Carries an error of decodeRowsInto's callback through its decoding error handling. */
class CallbackError extends Error {
  constructor(cause: unknown) {
    super('decodeRowsInto callback failed', { cause });
  }
}

// The hand-written reader of plain rows (schema versions 2 and 3 differ only inside `options`,
// which a plain row does not have). Avro's binary encoding of a JobRow is its fields in order:
// id and data as strings (a zig-zag varint length, then UTF-8 bytes), queue and state as ints and the rest of the numbers as longs (zig-zag varints), name as a union index
// (0 null, 1 string) and the string, pendingDeps as array blocks (a count, 0 ending the array),
// options and run as union indexes (0 null). The block itself is an array of rows: counts, each
// negative one followed by a byte size, until a count of 0. avsc decoded a row into a fresh object
// with fresh numbers and an empty array each time: about 300 bytes of garbage and 0.3 µs a row, a
// fifth of a restore's main-thread time.

const noBytes: Buffer = Buffer.alloc(0);
/** The block being read and the position in it. */
let source: Buffer = noBytes;
let at = 0;

/** A zig-zag varint at `at`, read exactly as avsc's Tap#readLong reads it (past the end of the
 *  block it yields a number all the same; the caller checks the position). */
function readVarint(): number {
  const buf = source;
  let n = 0;
  let k = 0;
  let b: number;
  let more: number;
  do {
    b = buf[at++] as number;
    more = b & 0x80;
    n |= (b & 0x7f) << k;
    k += 7;
  } while (more !== 0 && k < 28);
  if (more === 0) return (n >> 1) ^ -(n & 1);
  // Beyond 28 bits: float arithmetic, as avsc, so as not to overflow.
  let f = n;
  let scale = 268_435_456;
  do {
    b = buf[at++] as number;
    f += (b & 0x7f) * scale;
    scale *= 128;
  } while ((b & 0x80) !== 0);
  return (f % 2 ? -(f + 1) : f) / 2;
}

/** avsc's LongType bound: beyond it a long is refused ("potential precision loss"). */
function safeLong(n: number): boolean {
  return n >= -9_007_199_254_740_990 && n <= 9_007_199_254_740_990;
}

const plainRow: StoredJobRow = {
  id: '',
  queue: 0,
  name: null,
  data: '',
  priority: 0,
  createdAt: 0,
  runAt: 0,
  state: 0 as JobState,
  seq: 0,
  pendingDeps: Object.freeze([]) as readonly string[],
  options: null,
  run: null,
};

/** The name of the previous plain row with one, reused while the next ones have the same bytes. */
let lastName = '';
let lastNameBytes: Buffer = Buffer.alloc(0);

function nameAt(start: number, length: number): string {
  const buf = source;
  if (length === lastNameBytes.length) {
    let same = true;
    for (let i = 0; i < length && same; i++) same = buf[start + i] === lastNameBytes[i];
    if (same) return lastName;
  }
  lastNameBytes = Buffer.from(buf.subarray(start, start + length));
  lastName = lastNameBytes.toString('utf8');
  return lastName;
}

/** Length of the string skipString() passed last. */
let stringBytes = 0;

/** Steps over the Avro string at `at`: where its bytes start (their count in stringBytes), or -1
 *  when its length is unreadable or runs past the end of the block. */
function skipString(): number {
  const length = readVarint();
  const start = at;
  at += length;
  if (!(length >= 0) || at > source.length) return -1;
  stringBytes = length;
  return start;
}

/** Reads the row at `at` into plainRow if it is a plain one (true, `at` past it); false leaves
 *  `at` anywhere and nothing stored: the caller decodes the row with avsc from its start. */
function readPlainRow(payloads: PayloadArena): boolean {
  const end = source.length;
  const idStart = skipString();
  if (idStart < 0) return false;
  const idBytes = stringBytes;
  const queue = readVarint();
  const nameBranch = readVarint();
  let nameStart = 0;
  let nameBytes = 0;
  if (nameBranch === 1) {
    nameStart = skipString();
    if (nameStart < 0) return false;
    nameBytes = stringBytes;
  } else if (nameBranch !== 0) {
    return false;
  }
  const dataStart = skipString();
  if (dataStart < 0) return false;
  const dataBytes = stringBytes;
  const priority = readVarint();
  const createdAt = readVarint();
  const runAt = readVarint();
  const state = readVarint();
  const seq = readVarint();
  // pendingDeps empty (its first block count is 0), options and run null.
  if (readVarint() !== 0 || readVarint() !== 0 || readVarint() !== 0 || at > end) return false;
  if (!(safeLong(priority) && safeLong(createdAt) && safeLong(runAt) && safeLong(seq))) return false;
  const row = plainRow as { -readonly [K in keyof StoredJobRow]: StoredJobRow[K] };
  row.id = payloads.storeBytes(source, idStart, idStart + idBytes);
  row.queue = queue;
  row.name = nameBranch === 0 ? null : nameAt(nameStart, nameBytes);
  row.data = payloads.storeBytes(source, dataStart, dataStart + dataBytes);
  row.priority = priority;
  row.createdAt = createdAt;
  row.runAt = runAt;
  row.state = state as JobState;
  row.seq = seq;
  return true;
}

/** `rowType` decodes the rows that are not plain; `keyless`: they predate Repeat.key. */
function readRows(bytes: Buffer, payloads: PayloadArena, rowType: avro.Type, keyless: boolean, each: (row: StoredJobRow) => void): void {
  source = bytes;
  at = 0;
  for (;;) {
    let count = readVarint();
    if (count === 0 || at > bytes.length) break;
    if (count < 0) {
      count = -count;
      readVarint();
    }
    for (; count > 0; count--) {
      const start = at;
      if (readPlainRow(payloads)) {
        each(plainRow);
        continue;
      }
      const { value, offset } = rowType.decode(bytes, start);
      if (offset < 0) throw new Error('truncated buffer');
      at = offset;
      if (keyless) keyRepeat((value as StoredJobRow).options as RepeatHolder | null);
      each(value as StoredJobRow);
    }
  }
  if (at > bytes.length) throw new Error('truncated buffer');
  if (at < bytes.length) throw new Error('trailing data');
}

/**
 * An Avro object container file encoder (header with the schema, blocks, sync markers) for
 * `schema`, used by `tapeq export`: write plain values, pipe the bytes to a file. `codec` is one
 * of the two every Avro implementation reads: 'null' or 'deflate'. Unions stay unwrapped (a
 * nullable field takes the value or null).
 *
 * The header carries `schema` exactly as given: handed a Type, avsc would write that Type's own
 * export, which drops the logical types it has no implementation for (a `timestamp-millis`
 * field would reach every reader as a bare long). Handed the schema, avsc builds the Type with
 * its default union wrapping ('auto'), which unwraps every union that can be unwrapped; building
 * it with 'never' first refuses, here, a schema with a union it would wrap.
 */
export function createAvroContainerEncoder(schema: unknown, codec: 'null' | 'deflate', blockBytes: number): Duplex {
  avro.Type.forSchema(schema as avro.Schema, { wrapUnions: 'never' });
  return new avro.streams.BlockEncoder(schema as avro.Schema, { codec, blockSize: blockBytes, writeHeader: true });
}

/** Decodes the bytes of an Avro object container file back into plain values (unwrapped unions). */
export function createAvroContainerDecoder(): Duplex {
  return new avro.streams.BlockDecoder({ parseHook: (schema) => avro.Type.forSchema(schema, { wrapUnions: 'never' }) });
}
