// The job index: id → Job, in insertion order, for a million jobs and more.
//
// A JS Map of a million string keys costs most of a cold start: V8 grows its backing store by
// rehashing, and every scavenge while the index fills walks the new keys and jobs it points to.
// This table keeps the jobs in one dense array (insertion order, so iteration is deterministic
// and independent of hashing) and finds them through open addressing over typed arrays:
//
//   slots   Int32Array, capacity a power of two: entry index + 1, EMPTY (0) or TOMBSTONE (linear
//           probing)
//   entries (Job | number | undefined)[][] insertion order, in chunks of entryChunk; a number is
//           a row of the state's ColdJobs (a waiting job restored or replayed at start and not
//           touched since, cold-jobs.ts), compared by its id's bytes; when the row is made into its
//           Job (by get(), values() or a pull) the entry holds the Job. A deleted job leaves a
//           hole. Chunks, not one array grown by push: a growing array of a million entries is
//           reallocated some thirty times in V8's large-object space, each time on fresh pages
//           (1M adds: about 100 ms against 10–35 ms in chunks on the benchmark VM)
//   hashes  Int32Array parallel to entries: the id's hash, so a rebuild never rehashes a string
//
// Deleting leaves a tombstone and a hole. Only an insertion rebuilds (when slots in use, live or
// tombstone, would pass half the capacity): it compacts the entries, keeping their order, and
// rebuilds the slots at a capacity fitted to the live count. Deleting while iterating is fine;
// an add() that rebuilds during an iteration makes that iteration throw.
//
// The hash is FNV-1a over the UTF-16 code units, started from a process-wide seed and finished
// with an avalanche mix, so the probe position depends on every bit. loadState, which builds the
// state of every process that holds jobs, first sets a random seed (seedJobTables): clients
// choose custom job ids, and a fixed seed would let them craft ids that all land in one probe
// run. The seed changes only where a job sits in `slots`, never what the table holds or the order
// values() yields. A cold row's id is hashed from its bytes (ASCII only, so bytes are code units).
//
// Pure data; no I/O, no clock, no randomness of its own.

import type { ColdJobs, RowHolder } from './cold-jobs.js';
import type { Job } from './job.js';
import { freshBlock } from './payloads.js';

/** An entry: a job, or the number of a row of the state's ColdJobs not yet made into one. */
type Entry = Job | number;

const EMPTY = 0;
const TOMBSTONE = -1;
const capacityMin = 16;
const entryShift = 12;
const entryChunk = 1 << entryShift;
const entryMask = entryChunk - 1;

let seedCurrent = 0x811c9dc5 | 0;

/** Sets the hash seed of tables created from now on (loadState, before it builds a state). */
export function seedJobTables(seed: number): void {
  seedCurrent = seed | 0;
}

function hashOf(id: string, seed: number): number {
  let h = seed;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  h ^= id.length;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/** hashOf over the UTF-8 bytes of an ASCII id (its bytes are its UTF-16 code units). */
function hashOfBytes(bytes: Buffer, start: number, end: number, seed: number): number {
  let h = seed;
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  h ^= end - start;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

function capacityFor(live: number): number {
  let capacity = capacityMin;
  while (capacity < live * 4) capacity *= 2;
  return capacity;
}

export class JobTable implements RowHolder {
  /** Live jobs. */
  size = 0;
  private readonly seed = seedCurrent;
  /** Entry index + 1, EMPTY (0: fresh zeroed memory is an empty table) or TOMBSTONE. */
  private slots: Int32Array<ArrayBufferLike> = new Int32Array(capacityMin);
  private mask = capacityMin - 1;
  /** Slots holding an entry index or a tombstone. */
  private used = 0;
  private entries: (Entry | undefined)[][] = [];
  /** Entries in use, holes included. */
  private count = 0;
  private hashes = new Int32Array(capacityMin);
  private rebuilds = 0;
  /** A bulk load is running (beginBulk): entries are appended, not yet in `slots`. */
  private bulk = false;
  private readonly hashBytes = (bytes: Buffer, start: number, end: number) => hashOfBytes(bytes, start, end, this.seed);

  /** `cold`: where the rows this table may hold (addCold) live; the state's own. */
  constructor(private readonly cold: ColdJobs | null = null) {
    cold?.attach(this);
  }

  rowMade(entry: number, c: number, job: Job): void {
    if (this.entry(entry) === c) this.setEntry(entry, job);
  }

  get(id: string): Job | undefined {
    const at = this.find(id, hashOf(id, this.seed));
    return at < 0 ? undefined : this.jobOf(this.entry((this.slots[at] as number) - 1) as Entry);
  }

  has(id: string): boolean {
    return this.find(id, hashOf(id, this.seed)) >= 0;
  }

  /**
   * Starts a bulk load into this empty table of about `jobs` jobs (a restore, which knows how
   * many follow): add() and addCold() then only append, and endBulk() lays out the slots in one
   * pass and reports a duplicate id. Inserting one by one probes a random slot per job in a table
   * of 16 MB for a million, a cache and TLB miss each time (some 300 ms on the benchmark VM); in
   * order of their home slots the writes sweep the table once. Nothing may look a job up before
   * endBulk().
   */
  beginBulk(jobs: number): void {
    if (this.count !== 0) throw new Error('JobTable: a bulk load needs an empty table');
    const capacity = capacityFor(jobs);
    // Zeroed (all EMPTY) and paged in ahead by the chunk source's helper while the load runs.
    this.slots = new Int32Array(freshBlock(capacity * Int32Array.BYTES_PER_ELEMENT));
    this.mask = capacity - 1;
    this.used = 0;
    if (this.hashes.length < jobs) this.hashes = new Int32Array(jobs);
    this.bulk = true;
  }

  /** Ends a bulk load: every appended entry gets its slot. The id of a job added twice, or null. */
  endBulk(): string | null {
    this.bulk = false;
    const n = this.count;
    if (n * 2 > this.slots.length) {
      const capacity = capacityFor(n);
      this.slots = new Int32Array(capacity);
      this.mask = capacity - 1;
    }
    const mask = this.mask;
    const slots = this.slots;
    const hashes = this.hashes;
    // One counting-sort pass by the top bits of the home slot: entries then come in windows of
    // 2,048 slots (8 KiB), written in turn; the order inside a window does not matter.
    const bits = 31 - Math.clz32(mask + 1);
    const shift = Math.max(0, bits - 11);
    const starts = new Int32Array((1 << (bits - shift)) + 1);
    for (let i = 0; i < n; i++) (starts[(((hashes[i] as number) & mask) >>> shift) + 1] as number)++;
    for (let w = 1; w < starts.length; w++) starts[w] = (starts[w] as number) + (starts[w - 1] as number);
    const order = new Int32Array(n);
    const orderHashes = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const hash = hashes[i] as number;
      const k = (starts[(hash & mask) >>> shift] as number)++;
      order[k] = i;
      orderHashes[k] = hash;
    }
    for (let k = 0; k < n; k++) {
      const e = order[k] as number;
      const hash = orderHashes[k] as number;
      let at = hash & mask;
      for (let v = slots[at] as number; v !== EMPTY; v = slots[at] as number) {
        if (hashes[v - 1] === hash && this.sameId(v - 1, e)) return this.jobOf(this.entry(e) as Entry).id;
        at = (at + 1) & mask;
      }
      slots[at] = e + 1;
    }
    this.used = n;
    return null;
  }

  /** Adds `job` under `job.id`; false (and no change) when that id is already present. */
  add(job: Job): boolean {
    const id = job.id;
    const hash = hashOf(id, this.seed);
    if (this.bulk) {
      this.append(job, hash);
      return true;
    }
    if (this.find(id, hash) >= 0) return false;
    this.insert(job, hash);
    return true;
  }

  /** Adds row c of the state's ColdJobs; false (and no change) when its id is already present. */
  addCold(c: number): boolean {
    const cold = this.cold as ColdJobs;
    const hash = cold.idHash(c, this.hashBytes);
    if (this.bulk) {
      this.append(c, hash);
      return true;
    }
    const slots = this.slots;
    const mask = this.mask;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const v = slots[at] as number;
      if (v === EMPTY) break;
      if (v > 0 && this.hashes[v - 1] === hash && this.sameIdAsRow(v - 1, c)) return false;
    }
    this.insert(c, hash);
    return true;
  }

  /** Appends an entry to `entries` and `hashes` (not to `slots`). */
  private append(entry: Entry, hash: number): void {
    const n = this.count;
    if (n === this.hashes.length) {
      const grown = new Int32Array(n * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    if ((n & entryMask) === 0) this.entries.push(new Array<Entry | undefined>(entryChunk));
    this.setEntry(n, entry);
    if (typeof entry === 'number') (this.cold as ColdJobs).setEntry(entry, n);
    this.hashes[n] = hash;
    this.count = n + 1;
    this.size++;
  }

  /** Inserts an entry whose id find() proved absent. */
  private insert(entry: Entry, hash: number): void {
    if ((this.used + 1) * 2 > this.slots.length) this.rebuild(this.size + 1);
    const n = this.count;
    this.append(entry, hash);
    const slots = this.slots;
    let at = hash & this.mask;
    // Tombstones are reused: find() already proved the id absent.
    while ((slots[at] as number) > 0) at = (at + 1) & this.mask;
    if (slots[at] === EMPTY) this.used++;
    slots[at] = n + 1;
  }

  delete(id: string): boolean {
    const at = this.find(id, hashOf(id, this.seed));
    if (at < 0) return false;
    const e = (this.slots[at] as number) - 1;
    const held = this.entry(e);
    if (typeof held === 'number') (this.cold as ColdJobs).drop(held);
    this.setEntry(e, undefined);
    this.slots[at] = TOMBSTONE;
    this.size--;
    return true;
  }

  /** The live jobs in insertion order (jobs added meanwhile included, as a Map would). Cold rows
   *  are made into jobs as they come: see made() for the jobs that exist already. */
  *values(): IterableIterator<Job> {
    const rebuilds = this.rebuilds;
    for (let i = 0; i < this.count; i++) {
      if (this.rebuilds !== rebuilds) throw new Error('JobTable: add() while iterating');
      const held = this.entry(i);
      if (held !== undefined) yield this.jobOf(held);
    }
  }

  /** values() without the cold rows never made into jobs: for work a cold row never needs
   *  (timers, arena compaction). */
  *made(): IterableIterator<Job> {
    for (let i = 0; i < this.count; i++) {
      const held = this.entry(i);
      const job = typeof held === 'number' ? (this.cold as ColdJobs).made(held) : held;
      if (job !== undefined) yield job;
    }
  }

  private jobOf(held: Entry): Job {
    return typeof held === 'number' ? (this.cold as ColdJobs).job(held) : held;
  }

  private entry(i: number): Entry | undefined {
    return (this.entries[i >>> entryShift] as (Entry | undefined)[])[i & entryMask];
  }

  private setEntry(i: number, held: Entry | undefined): void {
    (this.entries[i >>> entryShift] as (Entry | undefined)[])[i & entryMask] = held;
  }

  /** Whether entry e holds row c's id. */
  private sameIdAsRow(e: number, c: number): boolean {
    const held = this.entry(e) as Entry;
    const cold = this.cold as ColdJobs;
    return typeof held === 'number' ? cold.sameId(c, held) : cold.idIs(c, held.id);
  }

  /** Whether entries e and f hold the same id. */
  private sameId(e: number, f: number): boolean {
    const held = this.entry(f) as Entry;
    return typeof held === 'number' ? this.sameIdAsRow(e, held) : this.idIs(e, held.id);
  }

  private idIs(e: number, id: string): boolean {
    const held = this.entry(e) as Entry;
    return typeof held === 'number' ? (this.cold as ColdJobs).idIs(held, id) : held.id === id;
  }

  /** Slot of `id`, or -1. */
  private find(id: string, hash: number): number {
    if (this.bulk) throw new Error('JobTable: lookup during a bulk load');
    const slots = this.slots;
    const mask = this.mask;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const v = slots[at] as number;
      if (v === EMPTY) return -1;
      if (v > 0 && this.hashes[v - 1] === hash && this.idIs(v - 1, id)) return at;
    }
  }

  /** Compacts the entries (order kept) and lays out fresh slots for `live` jobs. */
  private rebuild(live: number): void {
    this.rebuilds++;
    const entries = this.entries;
    const hashes = this.hashes;
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      const held = this.entry(i);
      if (held === undefined) continue;
      this.setEntry(kept, held);
      if (typeof held === 'number') (this.cold as ColdJobs).setEntry(held, kept);
      hashes[kept] = hashes[i] as number;
      kept++;
    }
    // Drop the chunks past the kept entries and clear the rest of the last one.
    entries.length = (kept + entryMask) >>> entryShift;
    const last = entries[entries.length - 1];
    if (last !== undefined) last.fill(undefined, kept & entryMask || entryChunk);
    this.count = kept;
    const capacity = capacityFor(live);
    // After many deletes (a drained queue), give back the hashes of the entries that are gone.
    if (hashes.length > capacity) this.hashes = hashes.slice(0, capacity);
    const slots = new Int32Array(capacity);
    const mask = capacity - 1;
    for (let i = 0; i < kept; i++) {
      let at = (this.hashes[i] as number) & mask;
      while (slots[at] !== EMPTY) at = (at + 1) & mask;
      slots[at] = i + 1;
    }
    this.slots = slots;
    this.mask = mask;
    this.used = kept;
  }
}
