// Read-only views over the state for the API: counts, job listings, the DLQ page, workers, stats.
// Synchronous and allocation-conscious: listings stop after the page they serve.

import { JobState } from '../record/types.js';
import { jobCount, sortBySeq, waitIterate, type Job, type QueueState, type State } from '../state/index.js';
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

/** Names of queues that have jobs, are paused, or have a push worker. */
export function queueNames(state: State): string[] {
  const names = new Set<string>(state.workers.keys());
  for (const q of state.queues.values()) if (q.paused || jobCount(q) > 0) names.add(q.name);
  return [...names].sort();
}

function* newestFirst(set: Set<Job>): Generator<Job> {
  const all = [...set];
  for (let i = all.length - 1; i >= 0; i--) yield all[i] as Job;
}

function dueBefore(a: Job, b: Job): number {
  return a.runAt - b.runAt || a.seq - b.seq;
}

export function byDueOrder(jobs: Iterable<Job>): Job[] {
  return [...jobs].sort(dueBefore);
}

/** The first `count` of `jobs` in due order, as byDueOrder(jobs).slice(0, count) but in one pass
 *  that keeps the best `count` in a max-heap: a page of a queue's delayed jobs, or a few promoted,
 *  no longer sorts every one of them (200,000 delayed: 250 ms of the event loop per page). */
export function firstDue(jobs: ReadonlySet<Job>, count: number): Job[] {
  if (count >= jobs.size) return byDueOrder(jobs);
  const heap: Job[] = [];
  if (count <= 0) return heap;
  for (const job of jobs) {
    if (heap.length < count) {
      heap.push(job);
      siftUp(heap, heap.length - 1);
    } else if (dueBefore(job, heap[0] as Job) < 0) {
      heap[0] = job;
      siftDown(heap, 0);
    }
  }
  return heap.sort(dueBefore);
}

/** Max-heap on due order (the latest due at the top). */
function siftUp(heap: Job[], i: number): void {
  const job = heap[i] as Job;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (dueBefore(heap[parent] as Job, job) >= 0) break;
    heap[i] = heap[parent] as Job;
    i = parent;
  }
  heap[i] = job;
}

function siftDown(heap: Job[], i: number): void {
  const job = heap[i] as Job;
  for (;;) {
    let child = 2 * i + 1;
    if (child >= heap.length) break;
    if (child + 1 < heap.length && dueBefore(heap[child + 1] as Job, heap[child] as Job) > 0) child++;
    if (dueBefore(heap[child] as Job, job) <= 0) break;
    heap[i] = heap[child] as Job;
    i = child;
  }
  heap[i] = job;
}

/** The jobs of `status` in list order; the waiting ones from the `passed`-th on. `wanted` is the
 *  most of them the page can use (the delayed ones are picked, not sorted, up to it). */
function jobsIn(queue: QueueState, status: ListStatus, passed: number, wanted: number): Iterable<Job> {
  switch (status) {
    case 'waiting':
      return queue.paused ? [] : waitIterate(queue.waiting, passed);
    case 'paused':
      return queue.paused ? waitIterate(queue.waiting, passed) : [];
    case 'active':
      return sortBySeq(queue.active);
    case 'completed':
      return newestFirst(queue.completed);
    case 'failed':
      return newestFirst(queue.failed);
    case 'delayed':
      return firstDue(queue.delayed, wanted);
    case 'waiting-children':
      return sortBySeq(queue.children);
    default:
      throw new Error(`jobsIn: status ${String(status)}`);
  }
}

/** Statuses in the order given; inside each, pull order / newest finished first / due order. */
export function listJobs(queue: QueueState | undefined, statuses: ListStatus[], start: number, length: number): JobView[] {
  const out: JobView[] = [];
  if (queue === undefined || length <= 0) return out;
  let skip = Math.max(start, 0);
  for (const status of new Set(statuses)) {
    // The waiting list passes over the jobs before the page itself, without making its cold rows
    // into jobs: a deep page of a restored queue would otherwise make (and keep) every one of them.
    const listed = (status === 'waiting' && !queue.paused) || (status === 'paused' && queue.paused);
    const passed = listed ? Math.min(skip, queue.waiting.size) : 0;
    skip -= passed;
    for (const job of jobsIn(queue, status, passed, skip + length - out.length)) {
      if (skip > 0) {
        skip--;
        continue;
      }
      out.push(jobView(job));
      if (out.length >= length) return out;
    }
  }
  return out;
}

export function parseWorker(text: string): WorkerConfig {
  return JSON.parse(text) as WorkerConfig;
}

/** pushPerSec/pullPerSec are the counts of the last complete second before `nowMs`. */
export function statsOf(state: State, nowMs: number): StatsView {
  const st = state.stats;
  const lastSecond = Math.floor(nowMs / 1000) - 1;
  const bucket = st.seconds.find((b) => b.second === lastSecond);
  const view: StatsView = {
    queued: 0,
    processing: 0,
    delayed: 0,
    dlq: 0,
    completed: 0,
    waitingChildren: 0,
    pushPerSec: bucket?.pushed ?? 0,
    pullPerSec: bucket?.pulled ?? 0,
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
