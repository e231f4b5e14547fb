// Read-only views over the state for the API: counts, job listings, the DLQ page, workers, stats.
// Synchronous and allocation-conscious: listings stop after the page they serve.

import { JobState } from '../record/types.js';
import { waitPage, waitPrioritizedSize, type Job, type QueueState, type State } from '../state/index.js';
import type { SecondCounts } from './throughput.js';
import type { Counts, ListStatus, StatsView, WorkerConfig } from './types.js';
import { jobView } from './view.js';
import type { JobView } from './types.js';

export function emptyCounts(): Counts {
  return { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, 'waiting-children': 0, paused: 0 };
}

export function countsOf(queue: QueueState | undefined): Counts {
  if (queue === undefined) return emptyCounts();
  // The waiting jobs of a paused queue count as `paused` only (as BullMQ counts them), so that
  // every job is counted once.
  return {
    waiting: queue.paused ? 0 : queue.waiting.size,
    active: queue.active.size,
    delayed: queue.delayed.size,
    completed: queue.completed.size,
    failed: queue.failed.size,
    'waiting-children': queue.children.size,
    paused: queue.paused ? queue.waiting.size : 0,
  };
}

/** Names of the queues that exist (used and not obliterated: with jobs, paused or idle) or have
 *  a push worker. */
export function queueNames(state: State): string[] {
  const names = new Set<string>(state.workers.keys());
  for (const name of state.queues.keys()) names.add(name);
  for (const name of state.idleQueues) names.add(name);
  return [...names].sort();
}

function dueOrder(a: Job, b: Job): number {
  return a.runAt - b.runAt || a.seq - b.seq;
}

function seqOrder(a: Job, b: Job): number {
  return a.seq - b.seq;
}

export function byDueOrder(jobs: Iterable<Job>): Job[] {
  return [...jobs].sort(dueOrder);
}

/** The first `count` of `jobs` in due order: a page of delayed jobs, or the ones promote-jobs takes. */
export function firstDue(jobs: ReadonlySet<Job>, count: number): Job[] {
  return firstInOrder(jobs, count, dueOrder);
}

/** The first `count` of `jobs` in `order` (a total order), in that order. Short of the whole set,
 *  a max-heap of the best `count` so far: O(n log count), where sorting every job for one page
 *  took ~580 ms of the event loop per list request over 1,000,000 delayed jobs. */
export function firstInOrder(jobs: ReadonlySet<Job>, count: number, order: (a: Job, b: Job) => number): Job[] {
  if (count >= jobs.size) return [...jobs].sort(order);
  const heap: Job[] = [];
  if (count <= 0) return heap;
  for (const job of jobs) {
    if (heap.length < count) {
      let i = heap.push(job) - 1;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (order(heap[parent] as Job, job) >= 0) break;
        heap[i] = heap[parent] as Job;
        i = parent;
      }
      heap[i] = job;
    } else if (order(job, heap[0] as Job) < 0) {
      siftDown(heap, job, order);
    }
  }
  return heap.sort(order);
}

/** Puts `job` at the top of the max-heap in place of its top and sifts it down. */
function siftDown(heap: Job[], job: Job, order: (a: Job, b: Job) => number): void {
  for (let i = 0; ; ) {
    const left = 2 * i + 1;
    const right = left + 1;
    let largest = left < heap.length && order(heap[left] as Job, job) > 0 ? left : -1;
    if (right < heap.length && order(heap[right] as Job, largest < 0 ? job : (heap[largest] as Job)) > 0) largest = right;
    if (largest < 0) {
      heap[i] = job;
      return;
    }
    heap[i] = heap[largest] as Job;
    i = largest;
  }
}

/** Jobs [skip, skip + count) of `set` newest first (the set holds them oldest first): one pass
 *  over the older ones, no copy of the set. */
function newestPage(set: ReadonlySet<Job>, skip: number, count: number): Job[] {
  const to = set.size - Math.max(0, skip);
  return slice(set, Math.max(0, to - Math.max(0, count)), to).reverse();
}

/** Jobs [skip, skip + count) of `set` oldest first (the DLQ's order): one pass up to the page. */
export function oldestPage(set: ReadonlySet<Job>, skip: number, count: number): Job[] {
  const from = Math.max(0, skip);
  return slice(set, from, Math.min(set.size, from + Math.max(0, count)));
}

/** Jobs [from, to) of `set` in its order, iterating no further than `to`. */
function slice(set: ReadonlySet<Job>, from: number, to: number): Job[] {
  const out: Job[] = [];
  if (from >= to) return out;
  let i = 0;
  for (const job of set) {
    if (i >= to) break;
    if (i++ >= from) out.push(job);
  }
  return out;
}

/** Jobs [skip, skip + count) of a sorted status: the first skip + count by the bounded heap. */
function sortedPage(set: ReadonlySet<Job>, order: (a: Job, b: Job) => number, skip: number, count: number): Job[] {
  return firstInOrder(set, skip + count, order).slice(skip);
}

/** How many jobs of `status` the list holds (the same numbers as countsOf). */
function sizeIn(queue: QueueState, status: ListStatus): number {
  switch (status) {
    case 'waiting':
      return queue.paused ? 0 : queue.waiting.size;
    case 'paused':
      return queue.paused ? queue.waiting.size : 0;
    case 'active':
      return queue.active.size;
    case 'completed':
      return queue.completed.size;
    case 'failed':
      return queue.failed.size;
    case 'delayed':
      return queue.delayed.size;
    case 'waiting-children':
      return queue.children.size;
    case 'prioritized':
      return waitPrioritizedSize(queue.waiting);
    default:
      throw new Error(`sizeIn: status ${String(status satisfies never)}`);
  }
}

/** Jobs [skip, skip + count) of `status` (which holds more than `skip`) in list order: pull order
 *  / newest finished first / due order / push order. */
function pageIn(queue: QueueState, status: ListStatus, skip: number, count: number): Job[] {
  switch (status) {
    case 'waiting':
    case 'paused':
      return waitPage(queue.waiting, skip, count);
    case 'active':
      return sortedPage(queue.active, seqOrder, skip, count);
    case 'completed':
      return newestPage(queue.completed, skip, count);
    case 'failed':
      return newestPage(queue.failed, skip, count);
    case 'delayed':
      return sortedPage(queue.delayed, dueOrder, skip, count);
    case 'waiting-children':
      return sortedPage(queue.children, seqOrder, skip, count);
    case 'prioritized':
      return waitPage(queue.waiting, skip, count, true);
    default:
      throw new Error(`pageIn: status ${String(status satisfies never)}`);
  }
}

/** Each status asked for, once; `prioritized` not when the status that holds every waiting job
 *  (`waiting`, or `paused` while the queue is) is asked for too: it holds those jobs already, and
 *  a job is listed once. */
function listed(queue: QueueState, statuses: ListStatus[]): Set<ListStatus> {
  const set = new Set(statuses);
  if (set.has('prioritized') && set.has(queue.paused ? 'paused' : 'waiting')) set.delete('prioritized');
  return set;
}

/** Statuses in the order given; inside each, pull order / newest finished first / due order.
 *  A status wholly before `start` is passed over by its size. Inside the one the page starts in,
 *  the waiting list jumps over what it can (waitPage) and makes only the page's cold rows into
 *  jobs, finished jobs are one pass with no copy, and the sorted statuses keep a heap of `start +
 *  length` at most: never a sort or a copy of a whole status for a shallow page. */
export function listJobs(queue: QueueState | undefined, statuses: ListStatus[], start: number, length: number): JobView[] {
  const out: JobView[] = [];
  if (queue === undefined || length <= 0) return out;
  let skip = Math.max(start, 0);
  for (const status of listed(queue, statuses)) {
    const size = sizeIn(queue, status);
    if (skip >= size) {
      skip -= size;
      continue;
    }
    for (const job of pageIn(queue, status, skip, length - out.length)) out.push(jobView(job));
    skip = 0;
    if (out.length >= length) return out;
  }
  return out;
}

export function parseWorker(text: string): WorkerConfig {
  return JSON.parse(text) as WorkerConfig;
}

/** The statistics of `state`, with pushPerSec/pullPerSec from `lastSecond` (broker/throughput.ts). */
export function statsOf(state: State, lastSecond: SecondCounts): StatsView {
  const st = state.stats;
  const view: StatsView = {
    queued: 0,
    processing: 0,
    delayed: 0,
    dlq: 0,
    completed: 0,
    waitingChildren: 0,
    pushPerSec: lastSecond.pushed,
    pullPerSec: lastSecond.pulled,
    totalPushed: st.totalPushed,
    totalPulled: st.totalPulled,
    totalCompleted: st.totalCompleted,
    totalFailed: st.totalFailed,
    totalStalled: st.totalStalled,
    jobIndex: state.jobs.size,
    queues: 0,
  };
  for (const q of state.queues.values()) {
    view.queued += q.waiting.size;
    view.processing += q.active.size;
    view.delayed += q.delayed.size;
    view.dlq += q.failed.size;
    view.completed += q.completed.size;
    view.waitingChildren += q.children.size;
  }
  view.queues = queueNames(state).length;
  return view;
}

export function isUnfinished(job: Job): boolean {
  return job.state !== JobState.COMPLETED && job.state !== JobState.FAILED;
}
