// The job index: id → Job, in insertion order, for a million jobs and more.
//
// A JS Map of a million string keys costs most of a cold start: V8 grows its backing store by
// rehashing, and every scavenge while the index fills walks the new keys and jobs it points to.
// This table keeps the jobs in one dense array (insertion order, so iteration is deterministic
// and independent of hashing) and finds them through open addressing over typed arrays:
//
//   slots   Int32Array, capacity a power of two: entry index, EMPTY or TOMBSTONE (linear probing)
//   entries (Job | undefined)[][] insertion order, in chunks of entryChunk; a deleted job leaves
//           a hole. Chunks, not one array grown by push: a growing array of a million entries is
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
// choose custom job ids, and a fixed seed would let them craft ids that all land in one probe run. The seed changes only where a job
// sits in `slots`, never what the table holds or the order values() yields.
//
// Pure data; no I/O, no clock, no randomness of its own.

import type { Job } from './job.js';

const EMPTY = -1;
const TOMBSTONE = -2;
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

function capacityFor(live: number): number {
  let capacity = capacityMin;
  while (capacity < live * 4) capacity *= 2;
  return capacity;
}

export class JobTable {
  /** Live jobs. */
  size = 0;
  private readonly seed = seedCurrent;
  private slots = new Int32Array(capacityMin).fill(EMPTY);
  private mask = capacityMin - 1;
  /** Slots holding an entry index or a tombstone. */
  private used = 0;
  private entries: (Job | undefined)[][] = [];
  /** Entries in use, holes included. */
  private count = 0;
  private hashes = new Int32Array(capacityMin);
  private rebuilds = 0;

  get(id: string): Job | undefined {
    const at = this.find(id, hashOf(id, this.seed));
    return at < 0 ? undefined : this.entry(this.slots[at] as number);
  }

  has(id: string): boolean {
    return this.find(id, hashOf(id, this.seed)) >= 0;
  }

  /** Adds `job` under `job.id`; false (and no change) when that id is already present. */
  add(job: Job): boolean {
    const id = job.id;
    const hash = hashOf(id, this.seed);
    if (this.find(id, hash) >= 0) return false;
    if ((this.used + 1) * 2 > this.slots.length) this.rebuild(this.size + 1);
    const n = this.count;
    if (n === this.hashes.length) {
      const grown = new Int32Array(n * 2);
      grown.set(this.hashes);
      this.hashes = grown;
    }
    if ((n & entryMask) === 0) this.entries.push(new Array<Job | undefined>(entryChunk));
    this.setEntry(n, job);
    this.count = n + 1;
    this.hashes[n] = hash;
    const slots = this.slots;
    let at = hash & this.mask;
    // Tombstones are reused: find() already proved the id absent.
    while ((slots[at] as number) >= 0) at = (at + 1) & this.mask;
    if (slots[at] === EMPTY) this.used++;
    slots[at] = n;
    this.size++;
    return true;
  }

  delete(id: string): boolean {
    const at = this.find(id, hashOf(id, this.seed));
    if (at < 0) return false;
    const e = this.slots[at] as number;
    this.setEntry(e, undefined);
    this.slots[at] = TOMBSTONE;
    this.size--;
    return true;
  }

  /** The live jobs in insertion order (jobs added meanwhile included, as a Map would). */
  *values(): IterableIterator<Job> {
    const rebuilds = this.rebuilds;
    for (let i = 0; i < this.count; i++) {
      if (this.rebuilds !== rebuilds) throw new Error('JobTable: add() while iterating');
      const job = this.entry(i);
      if (job !== undefined) yield job;
    }
  }

  private entry(i: number): Job | undefined {
    return (this.entries[i >>> entryShift] as (Job | undefined)[])[i & entryMask];
  }

  private setEntry(i: number, job: Job | undefined): void {
    (this.entries[i >>> entryShift] as (Job | undefined)[])[i & entryMask] = job;
  }

  /** Slot of `id`, or -1. */
  private find(id: string, hash: number): number {
    const slots = this.slots;
    const mask = this.mask;
    for (let at = hash & mask; ; at = (at + 1) & mask) {
      const e = slots[at] as number;
      if (e === EMPTY) return -1;
      if (e >= 0 && this.hashes[e] === hash && (this.entry(e) as Job).id === id) return at;
    }
  }

  /** Compacts the entries (order kept) and lays out fresh slots for `live` jobs. */
  private rebuild(live: number): void {
    this.rebuilds++;
    const entries = this.entries;
    const hashes = this.hashes;
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      const job = this.entry(i);
      if (job === undefined) continue;
      this.setEntry(kept, job);
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
    const slots = new Int32Array(capacity).fill(EMPTY);
    const mask = capacity - 1;
    for (let i = 0; i < kept; i++) {
      let at = (this.hashes[i] as number) & mask;
      while (slots[at] !== EMPTY) at = (at + 1) & mask;
      slots[at] = i;
    }
    this.slots = slots;
    this.mask = mask;
    this.used = kept;
  }
}
