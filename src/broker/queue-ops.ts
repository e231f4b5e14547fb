// Job selection for the queue-wide actions (drain, clean, obliterate, promote-jobs, release):
// which jobs an action touches, in a deterministic order (seq, due order, or for the actions that
// run in steps an order the steps need, each step's records then listing its jobs by seq). Reads
// the state only.

import { timingSafeEqual } from 'node:crypto';
import { JobState } from '../record/types.js';
import { isPrioritized, sortBySeq, waitEntries, waitEntryJob, waitIterate, waitOldest, waitPage, type Job, type QueueState, type State } from '../state/index.js';
import { byDueOrder, firstDue } from './queries.js';
import { checkClean, checkPromoteJobs, type Checked } from './validate.js';

export function waitingJobs(queue: QueueState): Iterable<Job> {
  return waitIterate(queue.waiting);
}

/** The jobs a queue-wide action goes through, decided when the request came and made into Jobs a
 *  step at a time (broker.ts, stepped): a restored queue keeps its waiting jobs as rows, and a
 *  drain of a million of them made every one a Job before its first step, doubling the server's
 *  memory (372 → 805 MB). */
export interface JobSource {
  /** How many jobs the action was decided over. */
  readonly count: number;
  /** The next `max` of them in order (fewer at the end), each as it is now (its state is the
   *  caller's to judge); one whose row was dropped since the request came is left out. */
  take(max: number): Job[];
  /** Whether take has given every job. */
  readonly exhausted: boolean;
}

export function listSource(jobs: readonly Job[]): JobSource {
  let at = 0;
  return {
    count: jobs.length,
    take(max) {
      const from = at;
      at = Math.min(jobs.length, at + max);
      return jobs.slice(from, at);
    },
    get exhausted() {
      return at >= jobs.length;
    },
  };
}

/** `before`, the queue's waiting jobs in pull order (rows left rows until taken), then `after`. */
function waitingAmong(queue: QueueState, before: readonly Job[], after: readonly Job[]): JobSource {
  const entries: (Job | number)[] = [...waitEntries(queue.waiting)];
  const count = before.length + entries.length + after.length;
  let at = 0;
  const jobAt = (i: number): Job | undefined => {
    if (i < before.length) return before[i];
    const e = i - before.length;
    return e < entries.length ? waitEntryJob(queue.waiting, entries[e] as Job | number) : after[e - entries.length];
  };
  return {
    count,
    take(max) {
      // Exactly `max` of the jobs decided over, as a slice of them all would take, whatever became
      // of them: the steps fall where they would over jobs that were never rows.
      const out: Job[] = [];
      for (const end = Math.min(count, at + max); at < end; at++) {
        const job = jobAt(at);
        if (job !== undefined) out.push(job);
      }
      return out;
    },
    get exhausted() {
      return at >= count;
    },
  };
}

/** What a drain removes: the waiting and delayed jobs and the jobs they would set free, in the
 *  order of dependentsFirst; no sort of them all (each step's records list its jobs by seq:
 *  removedDrafts). The waiting jobs stay rows until their step: the jobs set free are found by
 *  looking up (with `lookup`, the state's job index) the dependencies of the queue's jobs
 *  waiting for children, not by listing every job the drain removes. */
export function drainable(queue: QueueState | undefined, lookup: (id: string) => Job | undefined): JobSource {
  if (queue === undefined) return listSource([]);
  const drained = (id: string): boolean => {
    const job = lookup(id);
    return job !== undefined && job.queue === queue.name && (job.state === JobState.WAITING || job.state === JobState.DELAYED);
  };
  const freed = freedBy(queue, drained);
  return waitingAmong(queue, freed.reverse(), [...queue.delayed]);
}

/** The queue's jobs waiting for children whose every pending dependency is, transitively, among
 *  `jobs` (of `queue`, to be removed), each found after the ones it waits for. Removing a
 *  dependency that has not failed sets its dependents free, so those would be waiting once a
 *  drain or a clean is done, running without the work they wait for; BullMQ's drain and clean
 *  remove such a parent of the same queue with its child too. A dependent in another queue is set
 *  free, as by any removal. */
export function freedDependents(queue: QueueState | undefined, jobs: Job[]): Job[] {
  if (queue === undefined || queue.children.size === 0) return [];
  const settling = new Set<string>();
  for (const job of jobs) if (job.state !== JobState.FAILED) settling.add(job.id);
  return freedBy(queue, (id) => settling.has(id));
}

/** freedDependents, the jobs to be removed told by `settles` (their ids, failed ones excluded). */
function freedBy(queue: QueueState, settles: (id: string) => boolean): Job[] {
  const freed: Job[] = [];
  if (queue.children.size === 0) return freed;
  const freeing = new Set<string>();
  const settled = (id: string): boolean => freeing.has(id) || settles(id);
  for (let grew = true; grew; ) {
    grew = false;
    for (const job of queue.children) {
      if (freeing.has(job.id) || settles(job.id) || job.pendingDeps.length === 0 || !job.pendingDeps.every(settled)) continue;
      freeing.add(job.id);
      freed.push(job);
      grew = true;
    }
  }
  return freed;
}

/** `freed` (as freedDependents found them) before `jobs`, each dependent before the jobs it waits
 *  for: an action removes them in steps (broker.ts, stepped), and a dependency removed a step
 *  before its dependent would set that one free, to be pulled, between the two. */
export function dependentsFirst(freed: readonly Job[], jobs: readonly Job[]): Job[] {
  const out: Job[] = [];
  for (let i = freed.length - 1; i >= 0; i--) out.push(freed[i] as Job);
  for (const job of jobs) out.push(job);
  return out;
}

/** Every job of the queue, in no particular order (each step's records list its jobs by seq). */
export function allJobs(queue: QueueState | undefined): Job[] {
  if (queue === undefined) return [];
  const out = waitPage(queue.waiting, 0, queue.waiting.size);
  for (const job of otherJobs(queue)) out.push(job);
  return out;
}

/** allJobs as a JobSource: the waiting jobs stay rows until their step. */
export function allJobsSource(queue: QueueState | undefined): JobSource {
  return queue === undefined ? listSource([]) : waitingAmong(queue, [], [...otherJobs(queue)]);
}

function* otherJobs(queue: QueueState): Generator<Job, void, void> {
  for (const set of [queue.delayed, queue.active, queue.children, queue.completed, queue.failed]) yield* set;
}

/** The jobs `clean` removes, oldest first (push order; finish order for completed and failed), at
 *  most `limit`, each finished (completed, failed), started (active) or created (the others) at
 *  least `grace` ms before `nowMs` (as BullMQ's clean: grace 0 takes every one). BullMQ's names:
 *  `wait` is tapeq's `waiting` (which holds the jobs BullMQ keeps apart as prioritized), `paused`
 *  the waiting jobs of a paused queue (none while it runs), `prioritized` the waiting jobs with a
 *  priority. `active` takes, as BullMQ's does, only jobs whose lock nobody holds: those whose lock
 *  ran out and that the stall check has not requeued yet. A job being worked on is never taken
 *  from its holder. */
export function cleanable(queue: QueueState | undefined, body: unknown, nowMs: number): Checked<Job[]> {
  const checked = checkClean(body);
  if (!checked.ok) return checked;
  const { graceMs, state, limit } = checked.value;
  if (queue === undefined) return { ok: true, value: [] };
  const cutoff = nowMs - graceMs;
  const max = limit ?? Infinity;
  // The waiting list may hold a million cold rows (a restored queue): it reads them where they are
  // and makes into jobs only the ones it returns, never the rows a limit leaves.
  const created = (createdAt: number): boolean => createdAt <= cutoff;
  switch (state) {
    case 'waiting':
      return { ok: true, value: waitOldest(queue.waiting, max, created) };
    case 'paused':
      return { ok: true, value: queue.paused ? waitOldest(queue.waiting, max, created) : [] };
    case 'prioritized':
      return { ok: true, value: waitOldest(queue.waiting, max, (createdAt, priority) => isPrioritized(priority) && createdAt <= cutoff) };
    case 'delayed':
      return { ok: true, value: firstOf(sortBySeq(queue.delayed), max, (job) => job.createdAt <= cutoff) };
    case 'active':
      return { ok: true, value: firstOf(sortBySeq(queue.active), max, (job) => (job.lockExpiresAt ?? Infinity) <= nowMs && (job.startedAt ?? Infinity) <= cutoff) };
    case 'completed':
      return { ok: true, value: firstOf(queue.completed, max, (job) => (job.finishedAt ?? 0) <= cutoff) };
    case 'failed':
      return { ok: true, value: firstOf(queue.failed, max, (job) => (job.finishedAt ?? 0) <= cutoff) };
    default:
      throw new Error(`cleanable: state ${String(state satisfies never)}`);
  }
}

function firstOf(jobs: Iterable<Job>, max: number, takes: (job: Job) => boolean): Job[] {
  const out: Job[] = [];
  for (const job of jobs) {
    if (out.length >= max) break;
    if (takes(job)) out.push(job);
  }
  return out;
}

export function promotable(queue: QueueState | undefined, body: unknown): Checked<Job[]> {
  const checked = checkPromoteJobs(body);
  if (!checked.ok) return checked;
  if (queue === undefined) return { ok: true, value: [] };
  const count = checked.value.count;
  return { ok: true, value: count === null ? byDueOrder(queue.delayed) : firstDue(queue.delayed, count) };
}

/** Active jobs whose lock `owner` holds, in seq order. */
export function heldBy(state: State, owner: string): Job[] {
  const out: Job[] = [];
  for (const queue of state.queues.values()) {
    for (const job of queue.active) if (job.state === JobState.ACTIVE && job.lockOwner === owner) out.push(job);
  }
  return sortBySeq(out);
}

export function sameToken(expected: string | null, given: string): boolean {
  if (expected === null) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
