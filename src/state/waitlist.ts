// A queue's waiting jobs in pull order: priority buckets, highest priority first; inside a bucket
// a deque so that FIFO pushes go to the back while LIFO pushes, stall requeues and releases go to
// the front.
//
//   priorities (desc) ──► bucket ──► front stack (top = head) ┐
//                                    back array [backHead..] ┘ together: the bucket's pull order
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

import type { Job } from './state.js';

export interface Bucket {
  priority: number;
  front: Job[];
  frontStamps: number[];
  back: Job[];
  backStamps: number[];
  backHead: number;
  /** Live entries. */
  size: number;
}

export interface WaitList {
  /** Priorities with live entries, highest first. */
  priorities: number[];
  buckets: Map<number, Bucket>;
  /** Live entries across buckets. */
  size: number;
  stampNext: number;
}

export function createWaitList(): WaitList {
  return { priorities: [], buckets: new Map(), size: 0, stampNext: 1 };
}

function bucketOf(list: WaitList, priority: number): Bucket {
  const found = list.buckets.get(priority);
  if (found !== undefined) return found;
  const bucket: Bucket = { priority, front: [], frontStamps: [], back: [], backStamps: [], backHead: 0, size: 0 };
  list.buckets.set(priority, bucket);
  // Few distinct priorities exist in practice: a linear insertion keeps this simple.
  let i = 0;
  while (i < list.priorities.length && (list.priorities[i] as number) > priority) i++;
  list.priorities.splice(i, 0, priority);
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
    bucket.back.push(job);
    bucket.backStamps.push(stamp);
  }
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
    list.priorities.splice(list.priorities.indexOf(bucket.priority), 1);
  } else {
    dropDeadHead(bucket);
    const entries = bucket.front.length + bucket.back.length - bucket.backHead;
    // Dead entries dominate, or a long consumed prefix still pins old jobs: rebuild.
    if ((entries > 64 && entries > bucket.size * 3) || (bucket.backHead > 1024 && bucket.backHead * 2 > bucket.back.length)) {
      compact(bucket);
    }
  }
}

/** Drops the dead entries at the head of a bucket that still holds a live one. */
function dropDeadHead(bucket: Bucket): void {
  const { front, frontStamps } = bucket;
  while (front.length > 0 && (front[front.length - 1] as Job).waitStamp !== frontStamps[frontStamps.length - 1]) {
    front.pop();
    frontStamps.pop();
  }
  if (front.length > 0) return;
  const { back, backStamps } = bucket;
  while (bucket.backHead < back.length && (back[bucket.backHead] as Job).waitStamp !== backStamps[bucket.backHead]) bucket.backHead++;
}

function compact(bucket: Bucket): void {
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
  const back: Job[] = [];
  const backStamps: number[] = [];
  for (let i = bucket.backHead; i < bucket.back.length; i++) {
    const job = bucket.back[i] as Job;
    const stamp = bucket.backStamps[i] as number;
    if (job.waitStamp === stamp) {
      back.push(job);
      backStamps.push(stamp);
    }
  }
  bucket.front = front;
  bucket.frontStamps = frontStamps;
  bucket.back = back;
  bucket.backStamps = backStamps;
  bucket.backHead = 0;
}

/** Live jobs in pull order. Do not modify the list while iterating. */
export function* waitIterate(list: WaitList): Generator<Job, void, void> {
  for (const priority of list.priorities) {
    const bucket = list.buckets.get(priority);
    if (bucket === undefined) continue;
    for (let i = bucket.front.length - 1; i >= 0; i--) {
      const job = bucket.front[i] as Job;
      if (job.waitStamp === bucket.frontStamps[i]) yield job;
    }
    for (let i = bucket.backHead; i < bucket.back.length; i++) {
      const job = bucket.back[i] as Job;
      if (job.waitStamp === bucket.backStamps[i]) yield job;
    }
  }
}
