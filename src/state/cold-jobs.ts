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
// Only the plainest waiting jobs are restored this way (restorable()): never pulled, no pending
// dependencies, data and an ASCII id the arena holds, no ttl (no timer to arm) and no unique key
// (no index to join). Everything else is an ordinary Job from the start.
//
// Once every row has been made a Job or dropped, the columns are given back; `hot` stays, as the
// wait lists and the job index may still name rows, and it holds only jobs the state holds anyway.
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

/** Distinct (queue, name, options) triples kept before further rows stay ordinary jobs. */
const kindsMax = 1 << 16;

type Ints = Int32Array<ArrayBufferLike>;
type Floats = Float64Array<ArrayBufferLike>;
const noInts: Ints = new Int32Array(0);
const noFloats: Floats = new Float64Array(0);

export class ColdJobs {
  /** Rows added (made, dropped or still cold). */
  private count = 0;
  /** Rows neither made into a Job nor dropped. */
  private cold = 0;
  private idAt = noInts;
  private dataAt = noInts;
  private kindOf = noInts;
  private stamps = noInts;
  private seqs = noFloats;
  private createdAts = noFloats;
  private runAts = noFloats;
  private priorities = noFloats;
  private hot: (Job | undefined)[] = [];
  private kinds: Kind[] = [];
  private kindIndex = new Map<string, number[]>();
  private lastKind = -1;

  constructor(private readonly payloads: PayloadArena) {}

  /** Rows still cold: neither made into a Job nor dropped. */
  get rows(): number {
    return this.cold;
  }

  /** Whether a restored job with these fields may stay a row (see the header). */
  static restorable(options: JobOptions | null): boolean {
    return options === null || (options.ttl === null && options.uniqueKey === '');
  }

  /** Room for `rows` more rows without growing (a restore knows how many waiting jobs follow).
   *  The columns share one block of fresh memory, which the process's chunk source may have a
   *  helper thread page in ahead of the writes (snapshot/chunk-supply.ts). */
  reserve(rows: number): void {
    const need = this.count + rows;
    if (need <= this.idAt.length) return;
    const memory = freshBlock(need * (4 * Float64Array.BYTES_PER_ELEMENT + 4 * Int32Array.BYTES_PER_ELEMENT));
    let at = 0;
    const floats = (from: Floats): Floats => {
      const to = new Float64Array(memory, at, need);
      at += need * Float64Array.BYTES_PER_ELEMENT;
      to.set(from.subarray(0, this.count));
      return to;
    };
    const ints = (from: Ints): Ints => {
      const to = new Int32Array(memory, at, need);
      at += need * Int32Array.BYTES_PER_ELEMENT;
      to.set(from.subarray(0, this.count));
      return to;
    };
    this.seqs = floats(this.seqs);
    this.createdAts = floats(this.createdAts);
    this.runAts = floats(this.runAts);
    this.priorities = floats(this.priorities);
    // Rows given back by settle() are not copied: they must read as dropped, not as kind 0.
    const kept = Math.min(this.kindOf.length, this.count);
    this.kindOf = ints(this.kindOf);
    this.kindOf.fill(-1, kept, this.count);
    this.idAt = ints(this.idAt);
    this.dataAt = ints(this.dataAt);
    this.stamps = ints(this.stamps);
  }

  /**
   * A new row for a waiting job whose id (ASCII) and data are at `idAt` and `dataAt` in the arena,
   * or -1 when it must be an ordinary Job (an id beyond ASCII, too many kinds); then the arena
   * entries stay the caller's. `queue` is the queue's own name string.
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
    if (this.count === this.idAt.length) this.reserve(1 + (this.count >>> 1));
    const c = this.count++;
    this.cold++;
    this.idAt[c] = idAt;
    this.dataAt[c] = dataAt;
    this.kindOf[c] = kind;
    this.seqs[c] = seq;
    this.createdAts[c] = createdAt;
    this.runAts[c] = runAt;
    this.priorities[c] = priority;
    return c;
  }

  /** Sets the stamp of row c's wait-list entry (waitlist.ts, as it inserts the row). */
  setStamp(c: number, stamp: number): void {
    this.stamps[c] = stamp;
  }

  /** The stamp row c's job holds now (its Job's waitStamp once made); 0 once dropped. */
  stampOf(c: number): number {
    const job = this.hot[c];
    if (job !== undefined) return job.waitStamp;
    return this.isCold(c) ? (this.stamps[c] as number) : 0;
  }

  /** Row c's job, made now if it was still a row. */
  job(c: number): Job {
    const made = this.hot[c];
    if (made !== undefined) return made;
    if (!this.isCold(c)) throw new Error(`ColdJobs: row ${c} was dropped`);
    const kind = this.kinds[this.kindOf[c] as number] as Kind;
    const idAt = this.idAt[c] as number;
    const id = this.payloads.read(idAt);
    this.payloads.free(idAt);
    const job = new Job(
      this.payloads,
      id,
      kind.queue,
      kind.name,
      this.dataAt[c] as number,
      this.seqs[c] as number,
      this.createdAts[c] as number,
      this.priorities[c] as number,
      this.runAts[c] as number,
      JobState.WAITING,
      NO_IDS,
      kind.options,
    );
    job.waitStamp = this.stamps[c] as number;
    // Sized for every row at the first job made: writing index c of an empty array would turn it
    // into a dictionary (a hash lookup per access, three times the memory).
    if (this.hot.length < this.count) this.hot.length = this.count;
    this.hot[c] = job;
    this.kindOf[c] = -1;
    this.cold--;
    this.settle();
    return job;
  }

  /** Whether row c's job has the id `id`. */
  idIs(c: number, id: string): boolean {
    const made = this.hot[c];
    if (made !== undefined) return made.id === id;
    const at = this.idAt[c] as number;
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
    const a = this.idAt[c] as number;
    const b = this.idAt[d] as number;
    const length = this.payloads.bytesLength(a);
    if (length !== this.payloads.bytesLength(b)) return false;
    const from = this.payloads.bytesStart(a);
    const to = this.payloads.bytesStart(b);
    return this.payloads.chunkOf(a).compare(this.payloads.chunkOf(b), to, to + length, from, from + length) === 0;
  }

  /** Row c's id hashed as `hash(text)` would hash it (job-table.ts), from its bytes. */
  idHash(c: number, hash: (bytes: Buffer, start: number, end: number) => number): number {
    const made = this.hot[c];
    if (made !== undefined) throw new Error(`ColdJobs: row ${c} is a Job already`);
    const at = this.idAt[c] as number;
    const start = this.payloads.bytesStart(at);
    return hash(this.payloads.chunkOf(at), start, start + this.payloads.bytesLength(at));
  }

  /** The job index let go of row c (the job left the state). */
  drop(c: number): void {
    if (this.isCold(c)) {
      this.payloads.free(this.idAt[c] as number);
      this.payloads.free(this.dataAt[c] as number);
      this.kindOf[c] = -1;
      this.cold--;
      this.settle();
    }
    this.hot[c] = undefined;
  }

  /** Row c's job if it was made already. */
  made(c: number): Job | undefined {
    return this.hot[c];
  }

  /** Whether row c is still a row (neither made into a Job nor dropped). */
  isCold(c: number): boolean {
    return c < this.kindOf.length && (this.kindOf[c] as number) >= 0;
  }

  /** Moves the arena entries of the rows still cold out of mostly empty chunks (PayloadArena.wasteful). */
  compactData(): void {
    const arena = this.payloads;
    for (let c = 0; c < this.count && this.cold > 0; c++) {
      if (!this.isCold(c)) continue;
      const idAt = this.idAt[c] as number;
      if (arena.sparse(idAt)) this.idAt[c] = arena.relocate(idAt);
      const dataAt = this.dataAt[c] as number;
      if (arena.sparse(dataAt)) this.dataAt[c] = arena.relocate(dataAt);
    }
  }

  /** The fields of row c, for a snapshot writer that would rather not make the job. */
  row(c: number): ColdRow {
    const kind = this.kinds[this.kindOf[c] as number] as Kind;
    return {
      id: this.payloads.read(this.idAt[c] as number),
      queue: kind.queue,
      name: kind.name,
      data: this.payloads.read(this.dataAt[c] as number),
      seq: this.seqs[c] as number,
      createdAt: this.createdAts[c] as number,
      runAt: this.runAts[c] as number,
      priority: this.priorities[c] as number,
      options: kind.options,
    };
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
    const key = `${queue}\n${name}`;
    let list = this.kindIndex.get(key);
    if (list !== undefined) {
      for (const k of list) {
        if ((this.kinds[k] as Kind).options === options) return (this.lastKind = k);
      }
    }
    if (this.kinds.length === kindsMax) return -1;
    if (list === undefined) this.kindIndex.set(key, (list = []));
    const k = this.kinds.length;
    this.kinds.push({ queue, name, options });
    list.push(k);
    return (this.lastKind = k);
  }

  /** Gives the columns back once no row is cold any more. */
  private settle(): void {
    if (this.cold > 0) return;
    this.idAt = this.dataAt = this.kindOf = this.stamps = noInts;
    this.seqs = this.createdAts = this.runAts = this.priorities = noFloats;
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
