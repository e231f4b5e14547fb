// Job selection for the queue-wide actions (drain, clean, obliterate, promote-jobs, release):
// which jobs an action touches, in a deterministic order (seq, or due order). Reads the state only.

import { timingSafeEqual } from 'node:crypto';
import { JobState } from '../record/types.js';
import { sortBySeq, waitIterate, waitOldest, type Job, type QueueState, type State } from '../state/index.js';
import { byDueOrder } from './queries.js';
import { checkClean, checkPromoteJobs, type Checked } from './validate.js';

export function waitingJobs(queue: QueueState): Iterable<Job> {
  return waitIterate(queue.waiting);
}

/** Waiting and delayed jobs (what a drain removes). */
export function drainable(queue: QueueState | undefined): Job[] {
  if (queue === undefined) return [];
  return sortBySeq([...waitIterate(queue.waiting), ...queue.delayed]);
}

export function allJobs(queue: QueueState | undefined): Job[] {
  if (queue === undefined) return [];
  return sortBySeq([
    ...waitIterate(queue.waiting),
    ...queue.delayed,
    ...queue.active,
    ...queue.children,
    ...queue.completed,
    ...queue.failed,
  ]);
}

/** Jobs of the requested state that finished (completed/failed) or were created (waiting/delayed)
 *  at least `grace` ms before `nowMs` (as BullMQ's clean: grace 0 takes every one), oldest first,
 *  at most `limit`. */
export function cleanable(queue: QueueState | undefined, body: unknown, nowMs: number): Checked<Job[]> {
  const checked = checkClean(body);
  if (!checked.ok) return checked;
  const { graceMs, state, limit } = checked.value;
  if (queue === undefined) return { ok: true, value: [] };
  const cutoff = nowMs - graceMs;
  // The waiting list may hold a million cold rows (a restored queue): it reads them where they are
  // and makes into jobs only the ones it returns, never the rows a limit leaves.
  if (state === 'waiting') return { ok: true, value: waitOldest(queue.waiting, limit ?? Infinity, (createdAt) => createdAt <= cutoff) };
  const finished = state === 'completed' || state === 'failed';
  const candidates = state === 'completed' ? queue.completed : state === 'failed' ? queue.failed : sortBySeq(queue.delayed);
  const out: Job[] = [];
  for (const job of candidates) {
    if (limit !== null && out.length >= limit) break;
    const at = finished ? (job.finishedAt ?? 0) : job.createdAt;
    if (at <= cutoff) out.push(job);
  }
  return { ok: true, value: out };
}

export function promotable(queue: QueueState | undefined, body: unknown): Checked<Job[]> {
  const checked = checkPromoteJobs(body);
  if (!checked.ok) return checked;
  if (queue === undefined) return { ok: true, value: [] };
  const due = byDueOrder(queue.delayed);
  const count = checked.value.count;
  return { ok: true, value: count === null ? due : due.slice(0, count) };
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
