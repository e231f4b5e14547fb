// Waiting jobs restored from a snapshot and not touched since: columns of numbers instead of objects.
//
// A snapshot of a million waiting jobs used to become a million Job objects and a million id
// strings at start. Each was born in V8's young generation and copied twice on its way to the old
// one, and on this kind of VM every page the copies land on costs a page fault: most of a cold
// start. Yet most of those jobs are only ever read again when they are pulled. Here such a job is a
// row of typed-array columns and its id's UTF-8 bytes in the payload arena; the job index and its
// queue's wait list hold the row's number. The first time anything asks for the job (a lookup by
// id, a pull, a listing) the row becomes an ordinary Job, which from then on is the job.
//
//   row c        idAt dataAt  positions in the arena (the id's bytes; the data, as any job's)
//                seq createdAt runAt priority
//                kind         index into `kinds`: queue name, job name, options (shared); -1 once
//                             the row is made into a Job or dropped
//                stamp        the stamp of its wait-list entry
//   hot[c]       the Job, once made (its waitStamp is the row's stamp)
//
// Only the plainest waiting jobs are rows (restorable()): never pulled, no pending dependencies,
// data and an ASCII id the arena holds, no ttl (no timer to arm), no unique key and no repeat
// (no index to join). Everything else is an ordinary Job from the start. Rows come from a snapshot being
// restored and, during a replay at start (`takesPushes`), from the pushes the fold applies.
//
// When a row is made into its Job, the job index swaps the row's number for the Job
// (RowHolder.rowMade); the wait list keeps the number until it consumes or drops that entry
// (unlist). A row nothing references any more is handed out again, and once no row is held at
// all the columns are given back: the columns never hold more rows than were alive at once.
//
// Pure data; not part of the state image and not observable through it: a job is the same job
// whether it was made at start or on first use. Owned by the state (state.ts); the job index
// (job-table.ts) and the wait lists (waitlist.ts) resolve row numbers through it.

import { JobState } from '../record/types.js';
import { Job, NO_IDS, type JobOptions } from './job.js';
import { freshBlock, type PayloadArena } from './payloads.js';

interface Kind {
  readonly queue: string;
  readonly name: string;
  readonly options: JobOptions | null;
}

/** What the job index does when a row it holds is made into a Job: hold the Job instead. */
export interface RowHolder {
  /** Entry `entry` of the index, which holds row c, now holds `job`. */
  rowMade(entry: number, c: number, job: Job): void;
}

/** Distinct (queue, name, options) triples kept before further rows stay ordinary jobs. */
const kindsMax = 1 << 16;
/** Bits of `refs`: the job index holds the row; a wait-list entry holds it. */
const inIndex = 1;
const inList = 2;

/** Rows are kept in chunks of rowsPerChunk: no column is ever copied to grow. */
const rowShift = 16;
const rowsPerChunk = 1 << rowShift;
const rowMask = rowsPerChunk - 1;

/** The columns of rowsPerChunk rows, in one block of memory. */
class RowChunk {
  readonly seqs: Float64Array<ArrayBufferLike>;
  readonly createdAts: Float64Array<ArrayBufferLike>;
  readonly runAts: Float64Array<ArrayBufferLike>;
  readonly priorities: Float64Array<ArrayBufferLike>;
  /** Index into `kinds`: queue name, job name, options; -1 once made into a Job or dropped. */
  readonly kindOf: Int32Array<ArrayBufferLike>;
  readonly idAt: Int32Array<ArrayBufferLike>;
  readonly dataAt: Int32Array<ArrayBufferLike>;
  readonly stamps: Int32Array<ArrayBufferLike>;
  /** The job index's entry holding the row, while it does (inIndex). */
  readonly entryAt: Int32Array<ArrayBufferLike>;
  readonly refs: Int32Array<ArrayBufferLike>;

  static readonly bytes = rowsPerChunk * (4 * Float64Array.BYTES_PER_ELEMENT + 6 * Int32Array.BYTES_PER_ELEMENT);

  constructor(memory: ArrayBuffer | SharedArrayBuffer) {
    let at = 0;
    const floats = () => {
      const view = new Float64Array(memory, at, rowsPerChunk);
      at += rowsPerChunk * Float64Array.BYTES_PER_ELEMENT;
      return view;
    };
    const ints = () => {
      const view = new Int32Array(memory, at, rowsPerChunk);
      at += rowsPerChunk * Int32Array.BYTES_PER_ELEMENT;
      return view;
    };
    this.seqs = floats();
    this.createdAts = floats();
    this.runAts = floats();
    this.priorities = floats();
    this.kindOf = ints();
    this.idAt = ints();
    this.dataAt = ints();
    this.stamps = ints();
    this.entryAt = ints();
    this.refs = ints();
  }
}

export class ColdJobs {
  /** Rows ever handed out (the columns' high-water mark). */
  private count = 0;
  /** Rows neither made into a Job nor dropped. */
  private cold = 0;
  /** Rows no longer referenced, to be handed out again. */
  private free: number[] = [];
  private chunks: RowChunk[] = [];
  private hot: (Job | undefined)[] = [];
  private kinds: Kind[] = [];
  /** Kinds by queue, then job name, then options (by identity): one lookup each, whatever the
   *  number of kinds. A list of a queue's kinds scanned per push made a replay of pushes with
   *  distinct names (or distinct tags: options of their own) quadratic up to kindsMax and
   *  kindsMax steps per push after: 41 s instead of 0.9 s for 100,000 jobs. */
  private kindIndex = new Map<string, Map<string, Map<JobOptions | null, number>>>();
  private lastKind = -1;
  private holder: RowHolder | null = null;
  /** Pushes the fold applies become rows (a replay at start; set by loadState). */
  takesPushes = false;

  constructor(private readonly payloads: PayloadArena) {}

  /** The job index whose entries hold these rows (job-table.ts, once). */
  attach(holder: RowHolder): void {
    this.holder = holder;
  }

  /** Rows still cold: neither made into a Job nor dropped. */
  get rows(): number {
    return this.cold;
  }

  /** Whether a waiting job with these options may be a row (see the header). */
  static restorable(options: JobOptions | null): boolean {
    return options === null || (options.ttl === null && options.uniqueKey === '' && options.repeat === null);
  }

  /**
   * Room for `rows` more rows (a restore knows how many waiting jobs follow). Their memory comes
   * from the process's chunk source, which may have a helper thread page it in ahead of the
   * writes (snapshot/chunk-supply.ts).
   */
  reserve(rows: number): void {
    // A few rows need not have a whole chunk paged in: their pages are mapped as they are written.
    const paged = rows >= rowsPerChunk >>> 1;
    while (this.chunks.length * rowsPerChunk < this.count + rows) {
      this.chunks.push(new RowChunk(paged ? freshBlock(RowChunk.bytes) : new ArrayBuffer(RowChunk.bytes)));
    }
  }

  /**
   * A new row for a waiting job whose id (ASCII) and data are at `idAt` and `dataAt` in the arena,
   * or -1 when it must be an ordinary Job (an id beyond ASCII, too many kinds); then the arena
   * entries stay the caller's. `queue` is the queue's own name string. The row then goes into the
   * job index (JobTable.addCold) and a wait list (waitInsertCold).
   */
  add(
    idAt: number,
    dataAt: number,
    queue: string,
    name: string,
    options: JobOptions | null,
    seq: number,
    createdAt: number,
    priority: number,
    runAt: number,
  ): number {
    if (!this.ascii(idAt)) return -1;
    const kind = this.kindFor(queue, name, options);
    if (kind < 0) return -1;
    let c = this.free.pop();
    if (c === undefined) {
      c = this.count++;
      // The next chunk is asked for halfway through this one, so that it is paged in before use.
      if (c >= this.chunks.length * rowsPerChunk) this.reserve(1);
      else if ((c & rowMask) === rowsPerChunk >>> 1 && this.chunks.length === (c >>> rowShift) + 1) this.reserve(rowsPerChunk);
    }
    this.cold++;
    const k = this.chunks[c >>> rowShift] as RowChunk;
    const i = c & rowMask;
    k.idAt[i] = idAt;
    k.dataAt[i] = dataAt;
    k.kindOf[i] = kind;
    k.seqs[i] = seq;
    k.createdAts[i] = createdAt;
    k.runAts[i] = runAt;
    k.priorities[i] = priority;
    k.refs[i] = 0;
    return c;
  }

  /** The job index holds row c in entry `entry` (from now on, or after a rebuild moved it). */
  setEntry(c: number, entry: number): void {
    this.rowChunk(c).entryAt[c & rowMask] = entry;
    this.rowChunk(c).refs[c & rowMask] = (this.rowChunk(c).refs[c & rowMask] as number) | inIndex;
  }

  /** A wait list holds row c in an entry stamped `stamp` (waitlist.ts, as it inserts the row). */
  setStamp(c: number, stamp: number): void {
    this.rowChunk(c).stamps[c & rowMask] = stamp;
    this.rowChunk(c).refs[c & rowMask] = (this.rowChunk(c).refs[c & rowMask] as number) | inList;
  }

  /** The wait list let go of its entry for row c (consumed, or dropped as dead). */
  unlist(c: number): void {
    this.unref(c, inList);
  }

  /** The stamp row c's job holds now (its Job's waitStamp once made); 0 once dropped. */
  stampOf(c: number): number {
    const job = this.hot[c];
    if (job !== undefined) return job.waitStamp;
    return this.isCold(c) ? (this.rowChunk(c).stamps[c & rowMask] as number) : 0;
  }

  /** Row c's job, made now if it was still a row; the job index then holds the Job itself. */
  job(c: number): Job {
    const made = this.hot[c];
    if (made !== undefined) return made;
    if (!this.isCold(c)) throw new Error(`ColdJobs: row ${c} was dropped`);
    const kind = this.kinds[this.rowChunk(c).kindOf[c & rowMask] as number] as Kind;
    const idAt = this.rowChunk(c).idAt[c & rowMask] as number;
    const id = this.payloads.read(idAt);
    this.payloads.free(idAt);
    const job = new Job(
      this.payloads,
      id,
      kind.queue,
      kind.name,
      this.rowChunk(c).dataAt[c & rowMask] as number,
      this.rowChunk(c).seqs[c & rowMask] as number,
      this.rowChunk(c).createdAts[c & rowMask] as number,
      this.rowChunk(c).priorities[c & rowMask] as number,
      this.rowChunk(c).runAts[c & rowMask] as number,
      JobState.WAITING,
      NO_IDS,
      kind.options,
    );
    job.waitStamp = this.rowChunk(c).stamps[c & rowMask] as number;
    this.rowChunk(c).kindOf[c & rowMask] = -1;
    this.cold--;
    // Sized for every row at the first job made: writing index c of an empty array would turn it
    // into a dictionary (a hash lookup per access, three times the memory).
    if (this.hot.length < this.count) this.hot.length = this.count;
    this.hot[c] = job;
    if (((this.rowChunk(c).refs[c & rowMask] as number) & inIndex) !== 0) {
      (this.holder as RowHolder).rowMade(this.rowChunk(c).entryAt[c & rowMask] as number, c, job);
      this.unref(c, inIndex);
    }
    return job;
  }

  /** Whether row c's job has the id `id`. */
  idIs(c: number, id: string): boolean {
    const made = this.hot[c];
    if (made !== undefined) return made.id === id;
    const at = this.rowChunk(c).idAt[c & rowMask] as number;
    const length = this.payloads.bytesLength(at);
    if (length !== id.length) return false;
    const chunk = this.payloads.chunkOf(at);
    const start = this.payloads.bytesStart(at);
    for (let i = 0; i < length; i++) if (chunk[start + i] !== id.charCodeAt(i)) return false;
    return true;
  }

  /** Whether rows c and d hold the same id. */
  sameId(c: number, d: number): boolean {
    const made = this.hot[c];
    if (made !== undefined) return this.idIs(d, made.id);
    const other = this.hot[d];
    if (other !== undefined) return this.idIs(c, other.id);
    const a = this.rowChunk(c).idAt[c & rowMask] as number;
    const b = this.rowChunk(d).idAt[d & rowMask] as number;
    const length = this.payloads.bytesLength(a);
    if (length !== this.payloads.bytesLength(b)) return false;
    const from = this.payloads.bytesStart(a);
    const to = this.payloads.bytesStart(b);
    return this.payloads.chunkOf(a).compare(this.payloads.chunkOf(b), to, to + length, from, from + length) === 0;
  }

  /** Row c's id hashed as `hash(text)` would hash it (job-table.ts), from its bytes. */
  idHash(c: number, hash: (bytes: Buffer, start: number, end: number) => number): number {
    if (!this.isCold(c)) throw new Error(`ColdJobs: row ${c} is not a row any more`);
    const at = this.rowChunk(c).idAt[c & rowMask] as number;
    const start = this.payloads.bytesStart(at);
    return hash(this.payloads.chunkOf(at), start, start + this.payloads.bytesLength(at));
  }

  /** The job index let go of row c, still a row (the job left the state without being made). */
  drop(c: number): void {
    if (this.isCold(c)) {
      this.payloads.free(this.rowChunk(c).idAt[c & rowMask] as number);
      this.payloads.free(this.rowChunk(c).dataAt[c & rowMask] as number);
      this.rowChunk(c).kindOf[c & rowMask] = -1;
      this.cold--;
    }
    this.unref(c, inIndex);
  }

  /** Row c's job if it was made already. */
  made(c: number): Job | undefined {
    return this.hot[c];
  }

  /** Whether row c is still a row (neither made into a Job nor dropped). */
  isCold(c: number): boolean {
    return c < this.count && (this.rowChunk(c).kindOf[c & rowMask] as number) >= 0;
  }

  /** Moves the arena entries of the rows still cold out of mostly empty chunks (PayloadArena.wasteful). */
  compactData(): void {
    const arena = this.payloads;
    for (let c = 0; c < this.count && this.cold > 0; c++) {
      if (!this.isCold(c)) continue;
      const idAt = this.rowChunk(c).idAt[c & rowMask] as number;
      if (arena.sparse(idAt)) this.rowChunk(c).idAt[c & rowMask] = arena.relocate(idAt);
      const dataAt = this.rowChunk(c).dataAt[c & rowMask] as number;
      if (arena.sparse(dataAt)) this.rowChunk(c).dataAt[c & rowMask] = arena.relocate(dataAt);
    }
  }

  /** Push order (the seq) of cold row c, read without making its job. */
  seqOf(c: number): number {
    return this.rowChunk(c).seqs[c & rowMask] as number;
  }

  /** createdAt of cold row c, read without making its job. */
  createdAtOf(c: number): number {
    return this.rowChunk(c).createdAts[c & rowMask] as number;
  }

  /** Priority of cold row c, read without making its job. */
  priorityOf(c: number): number {
    return this.rowChunk(c).priorities[c & rowMask] as number;
  }

  /** The fields of row c, for a snapshot writer that would rather not make the job. */
  row(c: number): ColdRow {
    const kind = this.kinds[this.rowChunk(c).kindOf[c & rowMask] as number] as Kind;
    return {
      id: this.payloads.read(this.rowChunk(c).idAt[c & rowMask] as number),
      queue: kind.queue,
      name: kind.name,
      data: this.payloads.read(this.rowChunk(c).dataAt[c & rowMask] as number),
      seq: this.rowChunk(c).seqs[c & rowMask] as number,
      createdAt: this.rowChunk(c).createdAts[c & rowMask] as number,
      runAt: this.rowChunk(c).runAts[c & rowMask] as number,
      priority: this.rowChunk(c).priorities[c & rowMask] as number,
      options: kind.options,
    };
  }

  private rowChunk(c: number): RowChunk {
    return this.chunks[c >>> rowShift] as RowChunk;
  }

  private ascii(at: number): boolean {
    const chunk = this.payloads.chunkOf(at);
    const start = this.payloads.bytesStart(at);
    const end = start + this.payloads.bytesLength(at);
    for (let i = start; i < end; i++) if ((chunk[i] as number) > 0x7f) return false;
    return true;
  }

  private kindFor(queue: string, name: string, options: JobOptions | null): number {
    const last = this.kinds[this.lastKind];
    if (last !== undefined && last.queue === queue && last.name === name && last.options === options) return this.lastKind;
    let byName = this.kindIndex.get(queue);
    let byOptions = byName?.get(name);
    const found = byOptions?.get(options);
    if (found !== undefined) return (this.lastKind = found);
    if (this.kinds.length === kindsMax) return -1;
    if (byName === undefined) this.kindIndex.set(queue, (byName = new Map()));
    if (byOptions === undefined) byName.set(name, (byOptions = new Map()));
    const k = this.kinds.length;
    this.kinds.push({ queue, name, options });
    byOptions.set(options, k);
    return (this.lastKind = k);
  }

  /** Clears a reference to row c; a row nothing references is free, and with no row held at all
   *  everything is given back. */
  private unref(c: number, bit: number): void {
    const left = (this.rowChunk(c).refs[c & rowMask] as number) & ~bit;
    this.rowChunk(c).refs[c & rowMask] = left;
    if (left !== 0 || this.isCold(c)) return;
    this.hot[c] = undefined;
    this.free.push(c);
    if (this.free.length === this.count) this.reset();
  }

  private reset(): void {
    this.count = 0;
    this.free = [];
    this.hot = [];
    this.chunks = [];
    this.kinds = [];
    this.kindIndex = new Map();
    this.lastKind = -1;
  }
}

/** A cold row's fields as a snapshot writes them. */
export interface ColdRow {
  id: string;
  queue: string;
  name: string;
  data: string;
  seq: number;
  createdAt: number;
  runAt: number;
  priority: number;
  options: JobOptions | null;
}
