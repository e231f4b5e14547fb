// State <-> StateImage. exportState is canonical (jobs sorted by id, queues and workers by name,
// idle queues as empty entries, orders explicit); importState rebuilds every index so that the
// result behaves exactly like the exported state for all later records. Internal details that do
// not affect behaviour (WaitList stamps, front/back split of a bucket, Set orders that are always
// sorted by seq before use) are not part of the image.

import { jobNameDefault } from '../constants.js';
import { JobState } from '../record/types.js';
import {
  stateImageVersion,
  type JobImage,
  type QueueImage,
  type StateImage,
  type StatsImage,
  type WorkerImage,
} from './image.js';
import {
  claimKeys,
  createState,
  forgetIfEmpty,
  isLive,
  Job,
  jobCount,
  NO_IDS,
  queueFor,
  sharedOptions,
  type QueueState,
  type State,
} from './state.js';
import { waitInsert, waitIterate } from './waitlist.js';

function idsOf(jobs: Iterable<Job>): string[] {
  const ids: string[] = [];
  for (const job of jobs) ids.push(job.id);
  return ids;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function exportJob(job: Job): JobImage {
  return {
    id: job.id,
    queue: job.queue,
    name: job.name,
    data: job.data,
    priority: job.priority,
    createdAt: job.createdAt,
    runAt: job.runAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    attempts: job.attempts,
    maxAttempts: job.maxAttempts,
    backoff: job.backoff,
    backoffType: job.backoffType,
    ttl: job.ttl,
    timeout: job.timeout,
    uniqueKey: job.uniqueKey,
    customId: job.customId,
    tags: job.tags.slice(),
    groupId: job.groupId,
    lifo: job.lifo,
    removeOnComplete: job.removeOnComplete === null ? null : { ...job.removeOnComplete },
    removeOnFail: job.removeOnFail === null ? null : { ...job.removeOnFail },
    dependsOn: job.dependsOn.slice(),
    pendingDeps: job.pendingDeps.slice(),
    repeat: job.repeat === null ? null : { ...job.repeat },
    maxStalled: job.maxStalled,
    state: job.state,
    progress: job.progress,
    progressMessage: job.progressMessage,
    result: job.result,
    error: job.error,
    lockToken: job.lockToken,
    lockOwner: job.lockOwner,
    lockExpiresAt: job.lockExpiresAt,
    stalledCount: job.stalledCount,
    seq: job.seq,
    logs: job.logs === null ? [] : job.logs.slice(),
  };
}

export function exportState(state: State): StateImage {
  const jobs = [...state.jobs.values()].sort((a, b) => compareText(a.id, b.id)).map(exportJob);
  const queues: QueueImage[] = [];
  for (const name of queueNamesSorted(state)) {
    const q = state.queues.get(name);
    // An idle queue is its name with nothing in it (as a queue emptied but kept would be).
    if (q === undefined || (!q.paused && jobCount(q) === 0)) {
      queues.push({ name, paused: false, waiting: [], completed: [], failed: [] });
      continue;
    }
    queues.push({
      name,
      paused: q.paused,
      waiting: idsOf(waitIterate(q.waiting)),
      completed: idsOf(q.completed),
      failed: idsOf(q.failed),
    });
  }
  const workers = [...state.workers.entries()]
    .sort((a, b) => compareText(a[0], b[0]))
    .map(([queue, config]) => ({ queue, config }));
  const st = state.stats;
  return {
    version: stateImageVersion,
    offset: state.offset,
    timestamp: state.timestamp,
    jobs,
    queues,
    workers,
    stats: copyStats(st),
  };
}

/** The live job for an image row; the queue's name string and options are shared as in a push. */
export function jobOf(state: State, img: JobImage): Job {
  const queue = queueFor(state, img.queue);
  const job = new Job(
    state.payloads,
    img.id,
    queue.name,
    img.name === jobNameDefault ? jobNameDefault : img.name,
    img.data,
    img.seq,
    img.createdAt,
    img.priority,
    img.runAt,
    img.state,
    img.pendingDeps.length === 0 ? NO_IDS : img.pendingDeps.slice(),
    sharedOptions(queue, img),
  );
  job.attempts = img.attempts;
  job.stalledCount = img.stalledCount;
  job.startedAt = img.startedAt;
  job.finishedAt = img.finishedAt;
  job.progress = img.progress;
  job.progressMessage = img.progressMessage;
  job.result = img.result;
  job.error = img.error;
  job.lockToken = img.lockToken;
  job.lockOwner = img.lockOwner;
  job.lockExpiresAt = img.lockExpiresAt;
  for (const line of img.logs) job.addLog(line);
  return job;
}

export function importState(image: StateImage): State {
  if (image.version !== stateImageVersion) throw new Error(`importState: image version ${image.version}`);
  const state = createState();
  state.offset = image.offset;
  state.timestamp = image.timestamp;
  for (const img of image.jobs) {
    if (!state.jobs.add(jobOf(state, img))) throw new Error(`importState: duplicate job ${img.id}`);
  }
  for (const q of image.queues) {
    const queue = queueFor(state, q.name);
    queue.paused = q.paused;
    for (const id of q.waiting) waitInsert(queue.waiting, lookup(state, id, JobState.WAITING), false);
    for (const id of q.completed) queue.completed.add(lookup(state, id, JobState.COMPLETED));
    for (const id of q.failed) queue.failed.add(lookup(state, id, JobState.FAILED));
  }
  for (const job of state.jobs.values()) placeRest(state, job);
  settleRestoredQueues(state);
  for (const w of image.workers) state.workers.set(w.queue, w.config);
  const st = image.stats;
  state.stats = copyStats(st);
  return state;
}

/** An empty state to restore into (file format 2 of snapshots): jobs follow with restoreJob. */
export function restoreState(offset: number, timestamp: number, workers: readonly WorkerImage[], stats: StatsImage): State {
  const state = createState();
  state.offset = offset;
  state.timestamp = timestamp;
  for (const w of workers) state.workers.set(w.queue, w.config);
  state.stats = copyStats(stats);
  return state;
}

/** Every existing queue's name (with jobs, paused or idle), sorted: the image's queue order. */
export function queueNamesSorted(state: State): string[] {
  return [...state.queues.keys(), ...state.idleQueues].sort(compareText);
}

/** Ends a restore: the restored queues without a job that are not paused become idle, as the fold
 *  leaves them. */
export function settleRestoredQueues(state: State): void {
  for (const queue of [...state.queues.values()]) forgetIfEmpty(state, queue);
}

/** The queue `name` of a state being restored. */
export function restoreQueue(state: State, name: string, paused: boolean): QueueState {
  const queue = queueFor(state, name);
  queue.paused = paused;
  return queue;
}

/**
 * Adds a job to a state being restored and indexes it. Jobs of one queue's waiting, completed and
 * failed containers must come in container order (pull order, oldest first); `job.queue` must be
 * that queue's own name string (restoreQueue(...).name).
 */
export function restoreJob(state: State, job: Job): void {
  if (!state.jobs.add(job)) throw new Error(`restoreJob: duplicate job ${job.id}`);
  const queue = queueFor(state, job.queue);
  switch (job.state) {
    case JobState.WAITING:
      waitInsert(queue.waiting, job, false);
      break;
    case JobState.COMPLETED:
      queue.completed.add(job);
      break;
    case JobState.FAILED:
      queue.failed.add(job);
      break;
    default:
      placeRest(state, job);
      return;
  }
  if (isLive(job.state)) claimKeys(state, job);
}

function lookup(state: State, id: string, expected: JobState): Job {
  const job = state.jobs.get(id);
  if (job === undefined || job.state !== expected) throw new Error(`importState: job ${id} is not ${expected}`);
  return job;
}

/** Places the jobs whose container order is not in the image, and rebuilds the indexes. */
function placeRest(state: State, job: Job): void {
  const queue = queueFor(state, job.queue);
  switch (job.state) {
    case JobState.DELAYED:
      queue.delayed.add(job);
      break;
    case JobState.ACTIVE:
      queue.active.add(job);
      break;
    case JobState.WAITING_CHILDREN:
      queue.children.add(job);
      for (const dep of job.pendingDeps) {
        let set = state.dependents.get(dep);
        if (set === undefined) state.dependents.set(dep, (set = new Set()));
        set.add(job);
      }
      break;
    case JobState.WAITING:
      if (job.waitStamp === 0) throw new Error(`importState: waiting job ${job.id} not in its queue order`);
      break;
    case JobState.COMPLETED:
    case JobState.FAILED:
      if (!(job.state === JobState.COMPLETED ? queue.completed : queue.failed).has(job)) {
        throw new Error(`importState: finished job ${job.id} not in its queue list`);
      }
      break;
    default:
      throw new Error(`importState: job ${job.id} in state ${job.state}`);
  }
  if (isLive(job.state)) claimKeys(state, job);
}

/** The counters are the same fields in the live state and the image; each gets its own copy. */
function copyStats(st: StatsImage): StatsImage {
  return {
    totalPushed: st.totalPushed,
    totalPulled: st.totalPulled,
    totalCompleted: st.totalCompleted,
    totalFailed: st.totalFailed,
    totalStalled: st.totalStalled,
    totalRemoved: st.totalRemoved,
  };
}
