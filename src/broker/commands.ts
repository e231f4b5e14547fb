// Decisions: given the current state, the time and an id source, build fully-decided record
// drafts. Nothing here appends or applies; the broker does that, in the order the functions are
// called, so a later decision can see the state an earlier one produced (e.g. retention after a
// completion). Synchronous; reads the state only.

import { durationMsMax, idsPerRecordMax, maxStalledDefault } from '../constants.js';
import {
  BackoffType,
  FailOutcome,
  JobState,
  StallOutcome,
  type Actor,
  type JobSpec,
  type KeepPolicy,
  type RecordBody,
  type RecordDraft,
} from '../record/types.js';
import { RemoveReason } from '../record/types.js';
import { scheduleHolder, sortBySeq, uniqueHolder, type Job, type State } from '../state/index.js';
import type { IdGenerator } from './ids.js';
import { firstRepeatRunAt, nextRepeatRunAt } from './schedule.js';
import type { PushInput } from './validate.js';

export interface Decide {
  state: State;
  now: number;
  actor: Actor | null;
  ids: IdGenerator;
}

export function draft(d: Decide, body: RecordBody): RecordDraft {
  return { timestamp: d.now, actor: d.actor, body };
}

export type PushPlan =
  | { kind: 'duplicated'; id: string; drafts: RecordDraft[] }
  | { kind: 'new'; id: string; drafts: RecordDraft[] }
  | PushRefusal;

export interface PushRefusal {
  kind: 'refused';
  code: 'BAD_REQUEST' | 'CONFLICT';
  error: string;
}

/** Why the state refuses this push, or null, its text starting with the option it is about (the
 *  broker puts that option's path in front: validate.ts refusalAt). A bulk push checks every item
 *  with it before it appends any, so that it stays all-or-nothing. Job ids are global (`GET
 *  /jobs/:id` takes no queue), so a custom id that already names a job of another queue cannot
 *  make a second job; answering with the other queue's job would drop this push's data without a
 *  word. */
export function pushRefusal(d: Decide, queue: string, input: PushInput): PushRefusal | null {
  if (input.jobId !== null) {
    // A live schedule of this queue answers for its key (planPush), wherever the id is now.
    if (input.repeat !== null && scheduleHolder(d.state, queue, input.jobId) !== undefined) return null;
    const existing = d.state.jobs.get(input.jobId);
    if (existing !== undefined && existing.queue !== queue) {
      const error = `jobId ${JSON.stringify(input.jobId)} already names a job of queue ${JSON.stringify(existing.queue)}`;
      return { kind: 'refused', code: 'CONFLICT', error };
    }
  }
  if (input.repeat !== null && firstRepeatRunAt(input.repeat, d.now, input.delay) === null) {
    return { kind: 'refused', code: 'BAD_REQUEST', error: 'repeat.pattern has no future run' };
  }
  return null;
}

export function planPush(d: Decide, queue: string, input: PushInput): PushPlan {
  const refused = pushRefusal(d, queue, input);
  if (refused !== null) return refused;
  let idTaken = false;
  if (input.jobId !== null) {
    // The same custom id again: no second job, and the attempt is on record (a `duplicated`
    // event, as BullMQ emits for a known jobId), as a uniqueKey duplicate is. For a repeating
    // push the id names a schedule: while it has a live instance, that instance answers (the
    // newest: its pending next run), whatever became of the first one and whatever repeat
    // options this push brings.
    const live = input.repeat === null ? undefined : scheduleHolder(d.state, queue, input.jobId);
    const existing = live ?? d.state.jobs.get(input.jobId);
    if (existing !== undefined) {
      idTaken = live === undefined && input.repeat !== null && existing.repeat?.key === input.jobId;
      if (!idTaken) {
        const body: RecordBody = { type: 'duplicated', queue, jobId: existing.id, uniqueKey: '' };
        return { kind: 'duplicated', id: existing.id, drafts: [draft(d, body)] };
      }
    }
  }
  if (input.uniqueKey !== '') {
    const holder = uniqueHolder(d.state, queue, input.uniqueKey);
    if (holder !== undefined) {
      const body: RecordBody = { type: 'duplicated', queue, jobId: holder.id, uniqueKey: input.uniqueKey };
      return { kind: 'duplicated', id: holder.id, drafts: [draft(d, body)] };
    }
  }
  // pushRefusal has checked that a repeat has a first run.
  const runAt = input.repeat === null ? d.now + input.delay : (firstRepeatRunAt(input.repeat, d.now, input.delay) as number);
  // A schedule that ended (its limit reached, its instances cancelled) starts afresh; its first
  // instance keeps the id it had while retention keeps that job, so this one takes a new id.
  const id = input.jobId !== null && !idTaken ? input.jobId : d.ids.next();
  const spec: JobSpec = {
    id,
    queue,
    name: input.name,
    data: input.data,
    priority: input.priority,
    runAt,
    maxAttempts: input.maxAttempts,
    backoff: input.backoff,
    backoffType: input.backoffType,
    ttl: input.ttl,
    timeout: input.timeout,
    uniqueKey: input.uniqueKey,
    customId: id === input.jobId,
    tags: input.tags,
    groupId: input.groupId,
    lifo: input.lifo,
    removeOnComplete: input.removeOnComplete,
    removeOnFail: input.removeOnFail,
    dependsOn: input.dependsOn,
    repeat: input.repeat === null ? null : { ...input.repeat, key: input.jobId ?? id },
    maxStalled: null,
  };
  return { kind: 'new', id, drafts: [pushedDraft(d, spec)] };
}

/** A dependency counts as pending while it exists and has not completed (a failed one too); unknown
 *  ids are treated as satisfied (a removed job cannot be told apart from one that completed). */
function pushedDraft(d: Decide, spec: JobSpec): RecordDraft {
  const pendingDeps = spec.dependsOn.filter((dep) => {
    const job = d.state.jobs.get(dep);
    return job !== undefined && job.state !== JobState.COMPLETED;
  });
  const state =
    pendingDeps.length > 0 ? JobState.WAITING_CHILDREN : spec.runAt > d.now ? JobState.DELAYED : JobState.WAITING;
  return draft(d, { type: 'pushed', job: spec, state, pendingDeps });
}

/** `removed` drafts for `jobs` (of one queue), at most idsPerRecordMax per record, in seq order. */
export function removedDrafts(d: Decide, queue: string, jobs: Iterable<Job>, reason: RemoveReason): RecordDraft[] {
  const sorted = sortBySeq(jobs);
  const out: RecordDraft[] = [];
  for (let i = 0; i < sorted.length; i += idsPerRecordMax) {
    const chunk = sorted.slice(i, i + idsPerRecordMax).map((j) => ({ jobId: j.id, prev: j.state }));
    out.push(draft(d, { type: 'removed', queue, jobs: chunk, reason }));
  }
  return out;
}

/** `removed` drafts for jobs whose ttl ran out (of one queue), then the next instance of each
 *  repeating one: its successor is pushed when it is first pulled, which now never happens, and a
 *  run skipped for its ttl must not end the schedule. */
export function expiredDrafts(d: Decide, queue: string, jobs: Iterable<Job>): RecordDraft[] {
  const sorted = sortBySeq(jobs);
  const out = removedDrafts(d, queue, sorted, RemoveReason.EXPIRED);
  for (const job of sorted) {
    const next = job.startedAt === null ? nextRepeatDraft(d, job) : null;
    if (next !== null) out.push(next);
  }
  return out;
}

/** `promoted` drafts: due order (runAt, then push order), chunked. */
export function promotedDrafts(d: Decide, queue: string, jobs: Iterable<Job>, manual: boolean): RecordDraft[] {
  const sorted = [...jobs].sort((a, b) => a.runAt - b.runAt || a.seq - b.seq);
  const out: RecordDraft[] = [];
  for (let i = 0; i < sorted.length; i += idsPerRecordMax) {
    const jobIds = sorted.slice(i, i + idsPerRecordMax).map((j) => j.id);
    out.push(draft(d, { type: 'promoted', queue, jobIds, manual }));
  }
  return out;
}

/** attempt n (1-based) waits backoff * 2^(n-1) (exponential) or backoff (fixed). */
export function retryDelayMs(job: Job, attempt: number): number {
  const spec = job;
  if (spec.backoffType === BackoffType.FIXED) return spec.backoff;
  return Math.min(spec.backoff * 2 ** Math.min(attempt - 1, 60), durationMsMax);
}

export function failedDraft(d: Decide, job: Job, error: string, cause: string): RecordDraft {
  const attempt = job.attempts + 1;
  const base = { type: 'failed' as const, queue: job.queue, jobId: job.id, error, token: job.lockToken ?? '', cause };
  if (attempt < job.maxAttempts) {
    const retryDelay = retryDelayMs(job, attempt);
    return draft(d, { ...base, outcome: FailOutcome.RETRY, runAt: d.now + retryDelay, retryDelay });
  }
  return draft(d, { ...base, outcome: FailOutcome.DEAD, runAt: 0, retryDelay: 0 });
}

export function stalledDraft(d: Decide, job: Job, workerMaxStalled: number | null): RecordDraft {
  const maxStalled = job.maxStalled ?? workerMaxStalled ?? maxStalledDefault;
  const outcome = job.stalledCount + 1 > maxStalled ? StallOutcome.STALL_FAILED : StallOutcome.REQUEUED;
  return draft(d, { type: 'stalled', queue: job.queue, jobId: job.id, outcome, token: job.lockToken ?? '' });
}

/** After a job reached COMPLETED or FAILED: retention removals. (A repeating job's next instance
 *  was scheduled when this one first ran: nextRepeatDraft.) */
export function finishDrafts(d: Decide, job: Job, workerPolicy: KeepPolicy | null): RecordDraft[] {
  const completed = job.state === JobState.COMPLETED;
  if (!completed && job.state !== JobState.FAILED) return [];
  const out: RecordDraft[] = [];
  const policy = (completed ? job.removeOnComplete : job.removeOnFail) ?? workerPolicy;
  if (policy !== null) {
    const reason = completed ? RemoveReason.REMOVE_ON_COMPLETE : RemoveReason.REMOVE_ON_FAIL;
    const victims = policy.remove ? [job] : retentionVictims(d, job, policy);
    if (victims.length > 0) out.push(...removedDrafts(d, job.queue, victims, reason));
  }
  return out;
}

/** Oldest finished jobs of the queue beyond `count`, or finished more than `ageMs` ago. */
function retentionVictims(d: Decide, job: Job, policy: KeepPolicy): Job[] {
  const queue = d.state.queues.get(job.queue);
  if (queue === undefined) return [];
  const list = job.state === JobState.COMPLETED ? queue.completed : queue.failed;
  let excess = policy.count === null ? 0 : list.size - policy.count;
  const victims: Job[] = [];
  for (const j of list) {
    const old = policy.ageMs !== null && (j.finishedAt ?? 0) < d.now - policy.ageMs;
    if (excess <= 0 && !old) break;
    victims.push(j);
    excess--;
  }
  return victims;
}

/** The next instance of a repeating job, pushed when this instance is first pulled (as BullMQ
 *  adds it when the current one starts), with the schedule's key: once per instance, so that a retry of the instance
 *  (from the DLQ, after a stall, after a failed attempt) never schedules it a second time.
 *  Null when the job does not repeat or its limit is reached. */
export function nextRepeatDraft(d: Decide, job: Job): RecordDraft | null {
  const repeat = job.repeat;
  if (repeat === null) return null;
  const runAt = nextRepeatRunAt(repeat, job.runAt, d.now);
  if (runAt === null) return null;
  const spec: JobSpec = {
    ...job.spec,
    id: d.ids.next(),
    runAt,
    priority: job.priority,
    customId: false,
    dependsOn: [],
    repeat: { ...repeat, count: repeat.count + 1 },
  };
  return pushedDraft(d, spec);
}
