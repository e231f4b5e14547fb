// The in-memory projection: jobs, per-queue containers, indexes, workers and statistics.
//
// Invariants (kept by `moveJob`, the only place a job changes container):
// - every job in `jobs` is in exactly one container of its queue, the one named by `job.state`;
// - a job is in `waiting` (a WaitList) iff state is WAITING, so waiting counts are exact;
// - `uniqueKeys` maps "queue\nkey" to the live (not completed/failed) holder with the lowest seq;
//   keys with several live holders (only possible through retry) are listed in `uniqueShared`;
// - `dependents` maps a dependency id to the WAITING_CHILDREN jobs still waiting on it;
// - a queue exists from its first job or pause until it is obliterated. It is in `queues`, with
//   its containers, while it holds a job or is paused; otherwise only its name is kept, in
//   `idleQueues` (forgetIfEmpty), so that it goes on being listed with zero counts (a Prometheus
//   series that vanished would read as stale, not 0) for a name's cost instead of ~1.3 KB of
//   containers. A name is in at most one of the two; both together are bounded by queuesMax;
// - `schedules` maps "queue\nkey" of a repeat schedule (Repeat.key) to its live instances,
//   oldest seq first: a schedule is live while it has one (usually the pending next run, and
//   the instance running now).
// Anything whose iteration order could leak into later behaviour is either explicit in the image
// (waiting, completed, failed) or sorted by seq where it is used.
//
// Plain data and functions, no I/O, no clock: only the fold (apply.ts) mutates it.

import { jobNameDefault } from '../constants.js';
import { JobState, type JobSpec, type Repeat } from '../record/types.js';
import { ColdJobs } from './cold-jobs.js';
import { JobTable } from './job-table.js';
import { PayloadArena } from './payloads.js';
import { Job, optionsOf, sameOptions, type JobOptions, type OptionFields } from './job.js';
import { createWaitList, waitInsert, waitInsertCold, waitRemove, type WaitList } from './waitlist.js';

export { Job, NO_IDS, type JobOptions, type JobRun } from './job.js';

export interface QueueState {
  name: string;
  paused: boolean;
  waiting: WaitList;
  delayed: Set<Job>;
  active: Set<Job>;
  children: Set<Job>;
  /** Oldest finished first. */
  completed: Set<Job>;
  /** Oldest finished first: the dead-letter list. */
  failed: Set<Job>;
  /** Options of the newest job pushed with any, shared by the next one if equal (memory only). */
  lastOptions: JobOptions | null;
}

export interface StatsState {
  totalPushed: number;
  totalPulled: number;
  totalCompleted: number;
  /** Jobs that ended FAILED (dead after their last attempt, or stalled past the limit). */
  totalFailed: number;
  totalStalled: number;
  totalRemoved: number;
}

export interface State {
  /** Offset of the next record to apply. */
  offset: number;
  /** Timestamp of the last applied record. */
  timestamp: number;
  jobs: JobTable;
  /** The jobs' data, off the JS heap. */
  payloads: PayloadArena;
  /** Waiting jobs restored or replayed at start and not yet touched, as rows (cold-jobs.ts). */
  cold: ColdJobs;
  queues: Map<string, QueueState>;
  /** Queues that exist but hold no job and are not paused: names only (see the invariants). */
  idleQueues: Set<string>;
  uniqueKeys: Map<string, Job>;
  uniqueShared: Map<string, Job[]>;
  dependents: Map<string, Set<Job>>;
  schedules: Map<string, Job[]>;
  /** Push worker registrations by queue, JSON text. */
  workers: Map<string, string>;
  stats: StatsState;
}

export function createState(): State {
  const payloads = new PayloadArena();
  const cold = new ColdJobs(payloads);
  return {
    offset: 0,
    timestamp: 0,
    jobs: new JobTable(cold),
    payloads,
    cold,
    queues: new Map(),
    idleQueues: new Set(),
    uniqueKeys: new Map(),
    uniqueShared: new Map(),
    dependents: new Map(),
    schedules: new Map(),
    workers: new Map(),
    stats: {
      totalPushed: 0,
      totalPulled: 0,
      totalCompleted: 0,
      totalFailed: 0,
      totalStalled: 0,
      totalRemoved: 0,
    },
  };
}

export function queueFor(state: State, name: string): QueueState {
  const found = state.queues.get(name);
  if (found !== undefined) return found;
  const queue: QueueState = {
    name,
    paused: false,
    waiting: createWaitList(state.cold),
    delayed: new Set(),
    active: new Set(),
    children: new Set(),
    completed: new Set(),
    failed: new Set(),
    lastOptions: null,
  };
  state.idleQueues.delete(name);
  state.queues.set(name, queue);
  return queue;
}

/** Keeps only the name of a queue that holds no job and is not paused: its containers cost
 *  ~1.3 KB each, and an idle queue is observable only by its name (zero counts). */
export function forgetIfEmpty(state: State, queue: QueueState): void {
  if (queue.paused || jobCount(queue) > 0) return;
  state.queues.delete(queue.name);
  state.idleQueues.add(queue.name);
}

/** Whether queue `name` exists (used and not obliterated), holding jobs or idle. */
export function queueExists(state: State, name: string): boolean {
  return state.queues.has(name) || state.idleQueues.has(name);
}

/** How many queues exist, idle ones included. */
export function queueTotal(state: State): number {
  return state.queues.size + state.idleQueues.size;
}

/** Forgets queue `name`, containers and name: it no longer exists (obliterated). */
export function dropQueue(state: State, name: string): void {
  state.queues.delete(name);
  state.idleQueues.delete(name);
}

export function jobCount(queue: QueueState): number {
  return (
    queue.waiting.size +
    queue.delayed.size +
    queue.active.size +
    queue.children.size +
    queue.completed.size +
    queue.failed.size
  );
}

export function isLive(s: JobState): boolean {
  return s !== JobState.COMPLETED && s !== JobState.FAILED;
}

function leave(queue: QueueState, job: Job): void {
  switch (job.state) {
    case JobState.WAITING:
      waitRemove(queue.waiting, job);
      return;
    case JobState.DELAYED:
      queue.delayed.delete(job);
      return;
    case JobState.ACTIVE:
      queue.active.delete(job);
      return;
    case JobState.WAITING_CHILDREN:
      queue.children.delete(job);
      return;
    case JobState.COMPLETED:
      queue.completed.delete(job);
      return;
    case JobState.FAILED:
      queue.failed.delete(job);
      return;
    case JobState.UNSPECIFIED:
      return;
    default:
      throw new Error(`leave: bad state ${String(job.state)}`);
  }
}

function enter(queue: QueueState, job: Job, next: JobState, atFront: boolean): void {
  job.state = next;
  switch (next) {
    case JobState.WAITING:
      waitInsert(queue.waiting, job, atFront);
      return;
    case JobState.DELAYED:
      queue.delayed.add(job);
      return;
    case JobState.ACTIVE:
      queue.active.add(job);
      return;
    case JobState.WAITING_CHILDREN:
      queue.children.add(job);
      return;
    case JobState.COMPLETED:
      queue.completed.add(job);
      return;
    case JobState.FAILED:
      queue.failed.add(job);
      return;
    case JobState.UNSPECIFIED:
      throw new Error('enter: UNSPECIFIED');
    default:
      throw new Error(`enter: bad state ${String(next)}`);
  }
}

/** Moves a job between containers (UNSPECIFIED = not yet placed), keeping unique keys in step. */
export function moveJob(state: State, job: Job, next: JobState, atFront: boolean): void {
  const queue = queueFor(state, job.queue);
  const wasLive = job.state !== JobState.UNSPECIFIED && isLive(job.state);
  leave(queue, job);
  enter(queue, job, next, atFront);
  const nowLive = isLive(next);
  if (wasLive && !nowLive) releaseKeys(state, job);
  if (!wasLive && nowLive) claimKeys(state, job);
}

/** Takes a job out of every container and index (it is being removed). */
export function dropJob(state: State, job: Job): void {
  const queue = queueFor(state, job.queue);
  if (isLive(job.state)) releaseKeys(state, job);
  leave(queue, job);
  job.state = JobState.UNSPECIFIED;
  forgetIfEmpty(state, queue);
  state.jobs.delete(job.id);
  job.detachData();
  if (state.payloads.wasteful()) {
    for (const held of state.jobs.made()) held.compactData();
    state.cold.compactData();
  }
}

export function keyOf(queue: string, uniqueKey: string): string {
  return `${queue}\n${uniqueKey}`;
}

function bySeq(a: Job, b: Job): number {
  return a.seq - b.seq;
}

/** A job became live: it joins the indexes of live jobs (unique keys, repeat schedules). */
export function claimKeys(state: State, job: Job): void {
  claimKey(state, job);
  if (job.options !== null && job.options.repeat !== null) claimSchedule(state, job);
}

function releaseKeys(state: State, job: Job): void {
  releaseKey(state, job);
  if (job.options !== null && job.options.repeat !== null) releaseSchedule(state, job);
}

function claimKey(state: State, job: Job): void {
  if (job.uniqueKey === '') return;
  const key = keyOf(job.queue, job.uniqueKey);
  const holder = state.uniqueKeys.get(key);
  if (holder === undefined) {
    state.uniqueKeys.set(key, job);
    return;
  }
  const shared = state.uniqueShared.get(key) ?? [holder];
  shared.push(job);
  shared.sort(bySeq);
  state.uniqueShared.set(key, shared);
  state.uniqueKeys.set(key, shared[0] as Job);
}

function releaseKey(state: State, job: Job): void {
  if (job.uniqueKey === '') return;
  const key = keyOf(job.queue, job.uniqueKey);
  const shared = state.uniqueShared.get(key);
  if (shared === undefined) {
    if (state.uniqueKeys.get(key) === job) state.uniqueKeys.delete(key);
    return;
  }
  const rest = shared.filter((j) => j !== job);
  state.uniqueKeys.set(key, rest[0] as Job);
  if (rest.length <= 1) state.uniqueShared.delete(key);
  else state.uniqueShared.set(key, rest);
}

function claimSchedule(state: State, job: Job): void {
  const key = (job.repeat as Repeat).key;
  if (key === '') return;
  const full = keyOf(job.queue, key);
  const live = state.schedules.get(full);
  if (live === undefined) {
    state.schedules.set(full, [job]);
    return;
  }
  live.push(job);
  // A retried instance (from the DLQ) may be older than the ones pushed since.
  if (live.length > 1 && (live[live.length - 2] as Job).seq > job.seq) live.sort(bySeq);
}

function releaseSchedule(state: State, job: Job): void {
  const key = (job.repeat as Repeat).key;
  if (key === '') return;
  const full = keyOf(job.queue, key);
  const live = state.schedules.get(full);
  if (live === undefined) return;
  const at = live.indexOf(job);
  if (at >= 0) live.splice(at, 1);
  if (live.length === 0) state.schedules.delete(full);
}

/** The newest live instance of the repeat schedule `key` of `queue` (its pending next run, when
 *  it has one), or undefined once the schedule has ended. */
export function scheduleHolder(state: State, queue: string, key: string): Job | undefined {
  const live = state.schedules.get(keyOf(queue, key));
  return live === undefined ? undefined : live[live.length - 1];
}

/** The live instances of every schedule, by key, in a canonical order (for the state digest). */
export function scheduleIndex(state: State): Array<{ key: string; ids: string[] }> {
  return [...state.schedules.entries()]
    .map(([key, live]) => ({ key, ids: live.map((job) => job.id) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

/** The live job holding `uniqueKey` in `queue`, if any. */
export function uniqueHolder(state: State, queue: string, uniqueKey: string): Job | undefined {
  return state.uniqueKeys.get(keyOf(queue, uniqueKey));
}

export function sortBySeq(jobs: Iterable<Job>): Job[] {
  return [...jobs].sort(bySeq);
}

/** The options for a new job of `queue`: null for defaults, else shared with the previous job's
 *  when equal (a bulk of jobs pushed with the same options holds one copy). */
export function sharedOptions(queue: QueueState, spec: OptionFields): JobOptions | null {
  return internOptions(queue, optionsOf(spec));
}

/** `options`, or the equal options of the queue's previous job with options (then shared). */
export function internOptions(queue: QueueState, options: JobOptions | null): JobOptions | null {
  if (options === null) return null;
  const last = queue.lastOptions;
  if (last !== null && sameOptions(last, options)) return last;
  queue.lastOptions = options;
  return options;
}

/** A new, not yet placed (UNSPECIFIED) job for `spec`, sharing the queue's name string, the
 *  default job name and, when possible, its options. */
export function newJob(state: State, spec: JobSpec, seq: number, createdAt: number, pendingDeps: readonly string[]): Job {
  const queue = queueFor(state, spec.queue);
  return new Job(
    state.payloads,
    spec.id,
    queue.name,
    spec.name === jobNameDefault ? jobNameDefault : spec.name,
    spec.data,
    seq,
    createdAt,
    spec.priority,
    spec.runAt,
    JobState.UNSPECIFIED,
    pendingDeps,
    sharedOptions(queue, spec),
  );
}

/**
 * Adds a waiting job as a cold row (cold-jobs.ts) when it may be one, at the back of its queue's
 * wait list: what newJob, jobs.add and moveJob would do for it, without the Job. Its id's and
 * data's bytes are in the state's arena already, at `idAt` and `dataAt`; `queue` is the job's
 * queue. False when it must be an ordinary Job instead (nothing done; the arena entries stay the
 * caller's). Throws on a duplicate id. Used by a snapshot restore and by a replay's pushes.
 */
export function addColdJob(
  state: State,
  queue: QueueState,
  idAt: number,
  dataAt: number,
  name: string,
  options: JobOptions | null,
  fields: { seq: number; createdAt: number; priority: number; runAt: number },
): boolean {
  if (!ColdJobs.restorable(options)) return false;
  const c = state.cold.add(idAt, dataAt, queue.name, name, options, fields.seq, fields.createdAt, fields.priority, fields.runAt);
  if (c < 0) return false;
  if (!state.jobs.addCold(c)) throw new Error(`duplicate job ${state.cold.row(c).id}`);
  waitInsertCold(queue.waiting, c, fields.priority);
  return true;
}
