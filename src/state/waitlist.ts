// A queue's waiting jobs in pull order: priority buckets, highest priority first; inside a bucket
// a deque so that FIFO pushes go to the back while LIFO pushes, stall requeues and releases go to
// the front.
//
//   priorities (desc) ──► bucket ──► front stack (top = head) ┐
//                                    back queue [head..end)   ┘ together: the bucket's pull order
//
// The back queue is held in chunks of backChunk entries (jobs and their stamps side by side): a
// consumed entry is cleared at once and a chunk the head has left is dropped, so a queue being
// drained gives its memory back as it goes and pins no job it has handed out. (One array grown by
// push also meant some thirty reallocations on fresh pages of V8's large-object space on the way
// to a million entries; in a replay of 1M jobs the chunks measured the same time within noise,
// with 10–20 MB less RSS.) A chunk starts empty and grows as its entries arrive (they only ever
// arrive at its end): preallocated at 4,096 slots, the two arrays of a bucket's first chunk took
// 64 KB, so every waiting job of a priority no other job had cost 64 KB, and 60,000 jobs pushed
// with distinct priorities filled a 4 GB heap (and filled it again on every replay).
//
// An entry of the back queue may be a number instead of a job: a row of the state's ColdJobs (a
// waiting job restored from a snapshot and not touched since, cold-jobs.ts), whose stamp the row
// keeps. waitIterate makes such rows into jobs as it reaches them; waitEntries leaves them be, and
// waitOldest and waitPage read the rows they pass over from their columns, making only those they
// return.
//
// Removal from the middle (cancel, expiry, priority change) is lazy: every insertion stamps the job
// (`job.waitStamp`) and stores the stamp beside the entry; an entry whose stamp no longer matches
// its job is dead and skipped. Dead entries at a bucket's head are dropped as soon as they appear,
// so the head of every bucket is live and a pull finds its job at once however many were pulled
// before it (iterating past a dead prefix made each pull from a deep queue cost more than the
// last). Buckets compact themselves when dead entries dominate. Stamps are private to this
// structure and never part of the image: only the order of live entries is, and it is all later
// behaviour depends on.
//
// Pure data plus functions; no I/O. Imported only by the fold and its helpers.

import type { ColdJobs } from './cold-jobs.js';
import { PriorityList } from './priority-list.js';
import type { Job } from './state.js';

/** An entry: a job, or the number of a row of the state's ColdJobs (always at the back). */
type Entry = Job | number;

export interface Bucket {
  priority: number;
  front: Job[];
  frontStamps: number[];
  back: BackQueue;
  /** Live entries. */
  size: number;
}

/** A FIFO of entries in chunks: entry i is jobs[i >>> backShift][i & backMask]. */
export interface BackQueue {
  jobs: (Entry | undefined)[][];
  stamps: number[][];
  /** Index of the first entry not yet consumed; consumed slots are cleared. */
  head: number;
  /** Index past the last entry. */
  end: number;
}

export interface WaitList {
  /** Priorities with live entries, highest first. */
  priorities: PriorityList;
  buckets: Map<number, Bucket>;
  /** Live entries across buckets. */
  size: number;
  stampNext: number;
  /** Where the rows named by number entries live (the state's own). */
  cold: ColdJobs | null;
}

const backShift = 12;
const backChunk = 1 << backShift;
const backMask = backChunk - 1;

function newBackQueue(): BackQueue {
  return { jobs: [], stamps: [], head: 0, end: 0 };
}

function backEntry(q: BackQueue, i: number): Entry {
  return (q.jobs[i >>> backShift] as (Entry | undefined)[])[i & backMask] as Entry;
}

/** The stamp the entry's job holds now: the entry is live iff it equals the entry's own. */
function stampNow(list: WaitList, e: Entry): number {
  return typeof e === 'number' ? (list.cold as ColdJobs).stampOf(e) : e.waitStamp;
}

function jobOf(list: WaitList, e: Entry): Job {
  return typeof e === 'number' ? (list.cold as ColdJobs).job(e) : e;
}

function backStamp(q: BackQueue, i: number): number {
  return (q.stamps[i >>> backShift] as number[])[i & backMask] as number;
}

function backPush(q: BackQueue, job: Entry, stamp: number): void {
  const i = q.end;
  if ((i & backMask) === 0) {
    q.jobs.push([]);
    q.stamps.push([]);
  }
  (q.jobs[i >>> backShift] as (Entry | undefined)[])[i & backMask] = job;
  (q.stamps[i >>> backShift] as number[])[i & backMask] = stamp;
  q.end = i + 1;
}

/** Consumes the head entry; a chunk the head has left is dropped. */
function backShiftHead(list: WaitList, q: BackQueue): void {
  const i = q.head;
  const chunk = q.jobs[i >>> backShift] as (Entry | undefined)[];
  const e = chunk[i & backMask];
  if (typeof e === 'number') (list.cold as ColdJobs).unlist(e);
  chunk[i & backMask] = undefined;
  q.head = i + 1;
  if (q.head === backChunk) {
    q.jobs.shift();
    q.stamps.shift();
    q.head = 0;
    q.end -= backChunk;
  }
}

/** `cold`: the state's ColdJobs, when the list may hold its rows (waitInsertCold). */
export function createWaitList(cold: ColdJobs | null = null): WaitList {
  return { priorities: new PriorityList(), buckets: new Map(), size: 0, stampNext: 1, cold };
}

function bucketOf(list: WaitList, priority: number): Bucket {
  const found = list.buckets.get(priority);
  if (found !== undefined) return found;
  const bucket: Bucket = { priority, front: [], frontStamps: [], back: newBackQueue(), size: 0 };
  list.buckets.set(priority, bucket);
  list.priorities.add(priority);
  return bucket;
}

/** Inserts `job` (not currently waiting) at the back or the front of its priority. */
export function waitInsert(list: WaitList, job: Job, atFront: boolean): void {
  if (job.waitStamp !== 0) throw new Error(`waitInsert: job ${job.id} is already waiting`);
  const bucket = bucketOf(list, job.priority);
  const stamp = list.stampNext++;
  job.waitStamp = stamp;
  if (atFront) {
    bucket.front.push(job);
    bucket.frontStamps.push(stamp);
  } else {
    backPush(bucket.back, job, stamp);
  }
  bucket.size++;
  list.size++;
}

/** Inserts row c of the list's ColdJobs, a waiting job of `priority`, at the back. */
export function waitInsertCold(list: WaitList, c: number, priority: number): void {
  const bucket = bucketOf(list, priority);
  const stamp = list.stampNext++;
  (list.cold as ColdJobs).setStamp(c, stamp);
  backPush(bucket.back, c, stamp);
  bucket.size++;
  list.size++;
}

/** Removes a waiting job (lazily: its entry dies with its stamp). */
export function waitRemove(list: WaitList, job: Job): void {
  const bucket = list.buckets.get(job.priority);
  if (bucket === undefined || job.waitStamp === 0) throw new Error(`waitRemove: job ${job.id} not waiting`);
  job.waitStamp = 0;
  bucket.size--;
  list.size--;
  if (bucket.size === 0) {
    list.buckets.delete(bucket.priority);
    unlistAll(list, bucket.back);
    list.priorities.delete(bucket.priority);
  } else {
    dropDeadHead(list, bucket);
    const entries = bucket.front.length + bucket.back.end - bucket.back.head;
    // Dead entries dominate: rebuild.
    if (entries > 64 && entries > bucket.size * 3) compact(list, bucket);
  }
}

/** Lets go of the rows a dropped back queue still names (all of its entries dead). */
function unlistAll(list: WaitList, q: BackQueue): void {
  for (let i = q.head; i < q.end; i++) {
    const e = backEntry(q, i);
    if (typeof e === 'number') (list.cold as ColdJobs).unlist(e);
  }
}

/** Drops the dead entries at the head of a bucket that still holds a live one. */
function dropDeadHead(list: WaitList, bucket: Bucket): void {
  const { front, frontStamps } = bucket;
  while (front.length > 0 && (front[front.length - 1] as Job).waitStamp !== frontStamps[frontStamps.length - 1]) {
    front.pop();
    frontStamps.pop();
  }
  if (front.length > 0) return;
  const back = bucket.back;
  while (back.head < back.end && stampNow(list, backEntry(back, back.head)) !== backStamp(back, back.head)) backShiftHead(list, back);
}

function compact(list: WaitList, bucket: Bucket): void {
  const front: Job[] = [];
  const frontStamps: number[] = [];
  for (let i = 0; i < bucket.front.length; i++) {
    const job = bucket.front[i] as Job;
    const stamp = bucket.frontStamps[i] as number;
    if (job.waitStamp === stamp) {
      front.push(job);
      frontStamps.push(stamp);
    }
  }
  const old = bucket.back;
  const back = newBackQueue();
  for (let i = old.head; i < old.end; i++) {
    const e = backEntry(old, i);
    const stamp = backStamp(old, i);
    if (stampNow(list, e) === stamp) backPush(back, e, stamp);
    else if (typeof e === 'number') (list.cold as ColdJobs).unlist(e);
  }
  bucket.front = front;
  bucket.frontStamps = frontStamps;
  bucket.back = back;
}

/** A bucket's first entry in pull order: its job when it is live, null when it is dead. */
export function headEntry(list: WaitList, bucket: Bucket): { job: Job | null } | undefined {
  const top = bucket.front.length - 1;
  if (top >= 0) {
    const job = bucket.front[top] as Job;
    return { job: job.waitStamp === bucket.frontStamps[top] ? job : null };
  }
  const back = bucket.back;
  if (back.head === back.end) return undefined;
  const e = backEntry(back, back.head);
  return { job: stampNow(list, e) === backStamp(back, back.head) ? jobOf(list, e) : null };
}

/** Live jobs in pull order, cold rows made into jobs as they come. Do not modify the list while
 *  iterating. */
export function* waitIterate(list: WaitList): Generator<Job, void, void> {
  for (const e of waitEntries(list)) yield jobOf(list, e);
}

/** Whether a waiting job of this priority is what BullMQ keeps apart as prioritized: any but 0,
 *  which is BullMQ's "no priority" (validate.ts converts BullMQ's 1, 2 … to -1, -2 …). */
export function isPrioritized(priority: number): boolean {
  return priority !== 0;
}

/** Live entries with a priority (isPrioritized): every bucket's but 0's. */
export function waitPrioritizedSize(list: WaitList): number {
  return list.size - (list.buckets.get(0)?.size ?? 0);
}

/** At most `count` live jobs in pull order from the `skip`-th on (a page of the job list), of
 *  every bucket or, with `prioritizedOnly`, of those with a priority (isPrioritized), in
 *  plain loops. A bucket, and a bucket's back queue, holding no dead entry is passed over by its
 *  live count at once: a deep page costs what the dead entries before it cost, not its depth (a
 *  generator over 400,000 entries took some 16 ms warm, 240 ms on a loaded server). Only the rows
 *  returned are made into jobs. */
export function waitPage(list: WaitList, skip: number, count: number, prioritizedOnly = false): Job[] {
  const out: Job[] = [];
  if (count <= 0) return out;
  let left = Math.max(0, skip);
  for (const priority of list.priorities) {
    if (prioritizedOnly && !isPrioritized(priority)) continue;
    const bucket = list.buckets.get(priority);
    if (bucket === undefined) continue;
    if (left >= bucket.size) {
      left -= bucket.size;
      continue;
    }
    let liveFront = 0;
    for (let i = bucket.front.length - 1; i >= 0; i--) {
      const job = bucket.front[i] as Job;
      if (job.waitStamp !== bucket.frontStamps[i]) continue;
      liveFront++;
      if (left > 0) left--;
      else if (out.push(job) >= count) return out;
    }
    const back = bucket.back;
    let i = back.head;
    // No dead entry in the back queue (its live entries are the bucket's others): jump.
    if (left > 0 && back.end - back.head === bucket.size - liveFront) {
      i += left;
      left = 0;
    }
    for (; i < back.end; i++) {
      const e = backEntry(back, i);
      if (stampNow(list, e) !== backStamp(back, i)) continue;
      if (left > 0) left--;
      else if (out.push(jobOf(list, e)) >= count) return out;
    }
  }
  return out;
}

/** Live entries in pull order, the rows still cold as their numbers (made ones as their jobs):
 *  waitIterate without making jobs (a snapshot writer). Do not modify the list while iterating. */
export function* waitEntries(list: WaitList): Generator<Job | number, void, void> {
  for (const priority of list.priorities) {
    const bucket = list.buckets.get(priority);
    if (bucket === undefined) continue;
    for (let i = bucket.front.length - 1; i >= 0; i--) {
      const job = bucket.front[i] as Job;
      if (job.waitStamp === bucket.frontStamps[i]) yield job;
    }
    const back = bucket.back;
    for (let i = back.head; i < back.end; i++) {
      const e = backEntry(back, i);
      if (stampNow(list, e) === backStamp(back, i)) yield typeof e === 'number' ? ((list.cold as ColdJobs).made(e) ?? e) : e;
    }
  }
}

/** The job of an entry waitEntries gave earlier (the list may have changed since), made now if
 *  it is still a row; undefined when its row was dropped meanwhile. A Job is returned as it is,
 *  whatever happened to it since: the caller judges its state. */
export function waitEntryJob(list: WaitList, e: Job | number): Job | undefined {
  if (typeof e !== 'number') return e;
  const cold = list.cold as ColdJobs;
  return cold.made(e) ?? (cold.isCold(e) ? cold.job(e) : undefined);
}

/** Up to `count` live waiting jobs that `takes(createdAt, priority)` accepts, the first pushed
 *  (lowest seq) first. Cold rows are read from their columns and only the ones returned are made
 *  into jobs, so a small `count` over a restored queue of a million jobs makes a handful. A
 *  max-heap on seq holds the best `count` so far: O(n log count), nothing else kept. */
export function waitOldest(list: WaitList, count: number, takes: (createdAt: number, priority: number) => boolean): Job[] {
  const seqs: number[] = [];
  const entries: (Job | number)[] = [];
  if (count <= 0) return [];
  const cold = list.cold as ColdJobs;
  for (const e of waitEntries(list)) {
    const isRow = typeof e === 'number';
    if (!takes(isRow ? cold.createdAtOf(e) : e.createdAt, isRow ? cold.priorityOf(e) : e.priority)) continue;
    const seq = isRow ? cold.seqOf(e) : e.seq;
    if (seqs.length < count) heapAdd(seqs, entries, seq, e);
    else if (seq < (seqs[0] as number)) heapReplaceTop(seqs, entries, seq, e);
  }
  const order = seqs.map((_, i) => i).sort((a, b) => (seqs[a] as number) - (seqs[b] as number));
  return order.map((i) => jobOf(list, entries[i] as Job | number));
}

function heapSwap(seqs: number[], entries: (Job | number)[], i: number, j: number): void {
  const seq = seqs[i] as number;
  seqs[i] = seqs[j] as number;
  seqs[j] = seq;
  const e = entries[i] as Job | number;
  entries[i] = entries[j] as Job | number;
  entries[j] = e;
}

function heapAdd(seqs: number[], entries: (Job | number)[], seq: number, e: Job | number): void {
  let i = seqs.push(seq) - 1;
  entries.push(e);
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if ((seqs[parent] as number) >= seq) break;
    heapSwap(seqs, entries, i, parent);
    i = parent;
  }
}

function heapReplaceTop(seqs: number[], entries: (Job | number)[], seq: number, e: Job | number): void {
  seqs[0] = seq;
  entries[0] = e;
  for (let i = 0; ; ) {
    const left = 2 * i + 1;
    const right = left + 1;
    let largest = i;
    if (left < seqs.length && (seqs[left] as number) > (seqs[largest] as number)) largest = left;
    if (right < seqs.length && (seqs[right] as number) > (seqs[largest] as number)) largest = right;
    if (largest === i) return;
    heapSwap(seqs, entries, i, largest);
    i = largest;
  }
}
