// The fold: apply(state, record) turns one fully-decided record into the next state.
//
// Pure: no clock (the record's timestamp is the only time), no randomness, no I/O. Records that
// refer to a job the state no longer has are no-ops, so a replay never throws on data the broker
// itself produced. Every decision (which job, which token, retry run time, next repeat) is in the
// record; the fold only follows it. The one rule the fold owns is dependency release: when a
// dependency completes or is removed, its dependents leave WAITING_CHILDREN (a removed dependency
// counts as satisfied, exactly like an id unknown at push time) — except a dependency removed
// after it failed for good (removeOnFail, a DLQ purge, clean) or because its ttl ran out before it
// ever ran: a failure or an expiry never lets a dependent run, whether or not the failed job is
// still kept. Those dependents wait until they are removed, or until a job pushed again under the
// same id completes.

import { jobNameDefault } from '../constants.js';
import {
  assertNever,
  FailOutcome,
  JobState,
  RemoveReason,
  StallOutcome,
  type BodyOf,
  type LogRecord,
} from '../record/types.js';
import { ColdJobs } from './cold-jobs.js';
import { waitInsert, waitRemove } from './waitlist.js';
import { addColdJob, dropJob, dropQueue, forgetIfEmpty, moveJob, newJob, NO_IDS, queueFor, sharedOptions, sortBySeq, type Job, type State } from './state.js';

/** BullMQ's failure text for a job that stalled more often than allowed. */
export const stalledFailureText = 'job stalled more than allowable limit';

export function apply(state: State, record: LogRecord): void {
  if (record.offset !== state.offset) {
    throw new Error(`apply: record offset ${record.offset}, expected ${state.offset}`);
  }
  const ts = record.timestamp;
  const body = record.body;
  switch (body.type) {
    case 'pushed':
      applyPushed(state, body, ts, record.offset);
      break;
    case 'duplicated':
      break;
    case 'pulled':
      applyPulled(state, body, ts);
      break;
    case 'completed':
      applyCompleted(state, body, ts);
      break;
    case 'failed':
      applyFailed(state, body, ts);
      break;
    case 'progressed': {
      const job = state.jobs.get(body.jobId);
      if (job !== undefined) {
        job.progress = body.progress;
        job.progressMessage = body.message;
        if (body.lockMs > 0 && job.state === JobState.ACTIVE) job.lockExpiresAt = Math.max(job.lockExpiresAt ?? 0, ts + body.lockMs);
      }
      break;
    }
    case 'logged': {
      const job = state.jobs.get(body.jobId);
      if (job !== undefined) job.addLog(body.message);
      break;
    }
    case 'promoted':
      for (const id of body.jobIds) {
        const job = state.jobs.get(id);
        if (job === undefined || job.state !== JobState.DELAYED) continue;
        if (job.runAt > ts) job.runAt = ts;
        moveJob(state, job, JobState.WAITING, false);
      }
      break;
    case 'stalled':
      applyStalled(state, body, ts);
      break;
    case 'released': {
      const job = state.jobs.get(body.jobId);
      if (job !== undefined && job.state === JobState.ACTIVE) {
        clearLock(job);
        moveJob(state, job, JobState.WAITING, true);
      }
      break;
    }
    case 'retried':
      applyRetried(state, body, ts);
      break;
    case 'removed':
      for (const removed of body.jobs) {
        const job = state.jobs.get(removed.jobId);
        if (job === undefined) continue;
        const settles = job.state !== JobState.FAILED && body.reason !== RemoveReason.EXPIRED;
        dropJob(state, job);
        unlinkDependent(state, job);
        state.stats.totalRemoved++;
        if (settles) settleDependency(state, job.id, ts);
      }
      break;
    case 'priorityChanged': {
      const job = state.jobs.get(body.jobId);
      if (job === undefined) break;
      if (job.state === JobState.WAITING) {
        // Re-positioned at the back of its new priority, like a fresh push.
        const waiting = queueFor(state, job.queue).waiting;
        waitRemove(waiting, job);
        job.priority = body.priority;
        waitInsert(waiting, job, false);
      } else {
        job.priority = body.priority;
      }
      break;
    }
    case 'queuePaused':
      queueFor(state, body.queue).paused = true;
      break;
    case 'queueResumed': {
      // Only a paused queue is resumed (it has containers); an unknown name stays unknown.
      const queue = state.queues.get(body.queue);
      if (queue !== undefined) {
        queue.paused = false;
        forgetIfEmpty(state, queue);
      }
      break;
    }
    case 'queueDrained':
      break;
    case 'queueObliterated':
      dropQueue(state, body.queue);
      break;
    case 'workerRegistered':
      state.workers.set(body.queue, body.config);
      break;
    case 'workerRemoved':
      state.workers.delete(body.queue);
      break;
    default:
      assertNever(body);
  }
  state.offset = record.offset + 1;
  state.timestamp = ts;
}

function applyPushed(state: State, body: BodyOf<'pushed'>, ts: number, offset: number): void {
  // A duplicate can only come from a bug, so the state it leaves behind does not matter:
  // assertions are never caught.
  if (!(state.cold.takesPushes && pushedAsRow(state, body, ts, offset))) {
    const job = newJob(state, body.job, offset, ts, body.pendingDeps.length === 0 ? NO_IDS : body.pendingDeps.slice());
    if (!state.jobs.add(job)) throw new Error(`apply: pushed duplicate id ${job.id}`);
    moveJob(state, job, body.state, job.lifo);
    if (body.state === JobState.WAITING_CHILDREN) linkDependent(state, job);
  }
  state.stats.totalPushed++;
}

/** A pushed waiting job as a cold row (state/cold-jobs.ts) when it may be one. False: nothing
 *  done, the caller makes the Job. */
function pushedAsRow(state: State, body: BodyOf<'pushed'>, ts: number, offset: number): boolean {
  const spec = body.job;
  if (body.state !== JobState.WAITING || spec.lifo || body.pendingDeps.length !== 0) return false;
  const queue = queueFor(state, spec.queue);
  const options = sharedOptions(queue, spec);
  if (!ColdJobs.restorable(options)) return false;
  const payloads = state.payloads;
  const idAt = payloads.store(spec.id);
  if (idAt < 0) return false;
  const dataAt = payloads.store(spec.data);
  const name = spec.name === jobNameDefault ? jobNameDefault : spec.name;
  const fields = { seq: offset, createdAt: ts, priority: spec.priority, runAt: spec.runAt };
  if (dataAt >= 0 && addColdJob(state, queue, idAt, dataAt, name, options, fields)) return true;
  payloads.free(idAt);
  if (dataAt >= 0) payloads.free(dataAt);
  return false;
}

function applyPulled(state: State, body: BodyOf<'pulled'>, ts: number): void {
  const job = state.jobs.get(body.jobId);
  if (job === undefined || job.state !== JobState.WAITING) return;
  moveJob(state, job, JobState.ACTIVE, false);
  job.startedAt = ts;
  job.lockToken = body.token;
  job.lockOwner = body.owner;
  job.lockExpiresAt = ts + body.lockMs;
  state.stats.totalPulled++;
}

function applyCompleted(state: State, body: BodyOf<'completed'>, ts: number): void {
  const job = state.jobs.get(body.jobId);
  if (job === undefined || job.state !== JobState.ACTIVE) return;
  clearLock(job);
  job.result = body.result;
  job.finishedAt = ts;
  moveJob(state, job, JobState.COMPLETED, false);
  state.stats.totalCompleted++;
  settleDependency(state, job.id, ts);
}

function applyFailed(state: State, body: BodyOf<'failed'>, ts: number): void {
  const job = state.jobs.get(body.jobId);
  if (job === undefined || job.state !== JobState.ACTIVE) return;
  clearLock(job);
  job.attempts++;
  job.error = body.error;
  if (body.outcome === FailOutcome.RETRY) {
    job.runAt = body.runAt;
    moveJob(state, job, body.runAt > ts ? JobState.DELAYED : JobState.WAITING, false);
    return;
  }
  job.finishedAt = ts;
  moveJob(state, job, JobState.FAILED, false);
  state.stats.totalFailed++;
}

function applyStalled(state: State, body: BodyOf<'stalled'>, ts: number): void {
  const job = state.jobs.get(body.jobId);
  if (job === undefined || job.state !== JobState.ACTIVE) return;
  clearLock(job);
  job.stalledCount++;
  state.stats.totalStalled++;
  if (body.outcome === StallOutcome.REQUEUED) {
    moveJob(state, job, JobState.WAITING, true);
    return;
  }
  job.attempts++;
  job.error = stalledFailureText;
  job.finishedAt = ts;
  moveJob(state, job, JobState.FAILED, false);
  state.stats.totalFailed++;
}

function applyRetried(state: State, body: BodyOf<'retried'>, ts: number): void {
  const job = state.jobs.get(body.jobId);
  if (job === undefined || (job.state !== JobState.FAILED && job.state !== JobState.COMPLETED)) return;
  job.attempts = 0;
  job.stalledCount = 0;
  job.finishedAt = null;
  job.result = null;
  job.error = null;
  job.progress = 0;
  job.progressMessage = null;
  job.runAt = ts;
  moveJob(state, job, JobState.WAITING, false);
}

function clearLock(job: Job): void {
  job.lockToken = null;
  job.lockOwner = null;
  job.lockExpiresAt = null;
}

function linkDependent(state: State, job: Job): void {
  for (const dep of job.pendingDeps) {
    let set = state.dependents.get(dep);
    if (set === undefined) state.dependents.set(dep, (set = new Set()));
    set.add(job);
  }
}

function unlinkDependent(state: State, job: Job): void {
  for (const dep of job.pendingDeps) {
    const set = state.dependents.get(dep);
    if (set === undefined) continue;
    set.delete(job);
    if (set.size === 0) state.dependents.delete(dep);
  }
}

/** `depId` completed or was removed: its dependents drop it, and those with nothing left run. */
function settleDependency(state: State, depId: string, ts: number): void {
  const set = state.dependents.get(depId);
  if (set === undefined) return;
  state.dependents.delete(depId);
  for (const job of sortBySeq(set)) {
    const rest = job.pendingDeps.filter((id) => id !== depId);
    job.pendingDeps = rest.length === 0 ? NO_IDS : rest;
    if (rest.length === 0 && job.state === JobState.WAITING_CHILDREN) {
      moveJob(state, job, job.runAt > ts ? JobState.DELAYED : JobState.WAITING, false);
    }
  }
}
