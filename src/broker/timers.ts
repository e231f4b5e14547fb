// Time passing, turned into work the broker writes as records. A min-heap of due moments
// (delay → promote, ttl → expire, lock → stall, timeout → fail) holds one entry per moment a
// record created; entries are never updated in place: when one comes due it is checked against
// the job's current fields and dropped if the job moved on (lazy invalidation). The broker arms a
// single setTimeout for the earliest entry, sleeping at most timerSleepMsMax (1 s) at a time so
// that a wall clock stepped forward is seen; there is no per-job timer.
//
// TTL limits how long a job may wait for its first run: it applies while the job has never been
// pulled (startedAt null) and is WAITING, DELAYED or WAITING_CHILDREN. It counts from the push,
// except for a repeating job, whose instances are pushed ahead of their scheduled time: theirs
// counts from that time (runAt), so a ttl shorter than the interval skips a late run instead of
// expiring every instance before it is due and ending the schedule.

import { dueHeapSlackEntries } from '../constants.js';
import { FailOutcome, JobState, type LogRecord } from '../record/types.js';
import type { Job, State } from '../state/index.js';

export const DueKind = { DELAY: 0, TTL: 1, LOCK: 2, TIMEOUT: 3 } as const;
export type DueKind = (typeof DueKind)[keyof typeof DueKind];

interface Due {
  at: number;
  kind: DueKind;
  id: string;
}

export class DueHeap {
  private readonly items: Due[] = [];
  /** Entries right after the last rebuild from the state (noteState): all of them live then. */
  sizeRebuilt = 0;

  get size(): number {
    return this.items.length;
  }

  peekAt(): number | null {
    return this.items[0]?.at ?? null;
  }

  push(at: number, kind: DueKind, id: string): void {
    const items = this.items;
    items.push({ at, kind, id });
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((items[parent] as Due).at <= at) break;
      items[i] = items[parent] as Due;
      i = parent;
    }
    items[i] = { at, kind, id };
  }

  pop(): Due | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (top === undefined || last === undefined || items.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= items.length) break;
      const r = l + 1;
      const c = r < items.length && (items[r] as Due).at < (items[l] as Due).at ? r : l;
      if ((items[c] as Due).at >= last.at) break;
      items[i] = items[c] as Due;
      i = c;
    }
    items[i] = last;
    return top;
  }

  clear(): void {
    this.items.length = 0;
  }
}

export function ttlDueAt(job: Job): number | null {
  const ttl = job.ttl;
  if (ttl === null || job.startedAt !== null) return null;
  const s = job.state;
  if (s !== JobState.WAITING && s !== JobState.DELAYED && s !== JobState.WAITING_CHILDREN) return null;
  return (job.repeat === null ? job.createdAt : job.runAt) + ttl;
}

/** When `kind` is due for the job as it is now (null: not applicable any more). */
export function dueAt(job: Job, kind: DueKind): number | null {
  switch (kind) {
    case DueKind.DELAY:
      // A delayed job waiting for dependencies gets its entry when it is pushed: the fold moves it
      // to DELAYED when they complete, which no record of its own announces.
      return job.state === JobState.DELAYED || job.state === JobState.WAITING_CHILDREN ? job.runAt : null;
    case DueKind.TTL:
      return ttlDueAt(job);
    case DueKind.LOCK:
      return job.state === JobState.ACTIVE ? job.lockExpiresAt : null;
    case DueKind.TIMEOUT:
      return job.state === JobState.ACTIVE && job.timeout !== null && job.startedAt !== null
        ? job.startedAt + job.timeout
        : null;
    default:
      throw new Error(`dueAt: kind ${String(kind)}`);
  }
}

function noteJob(heap: DueHeap, job: Job): void {
  for (const kind of [DueKind.DELAY, DueKind.TTL, DueKind.LOCK, DueKind.TIMEOUT] as const) {
    const at = dueAt(job, kind);
    if (at !== null) heap.push(at, kind, job.id);
  }
}

/** Adds the due moments a just-applied record created. */
export function noteRecord(heap: DueHeap, state: State, record: LogRecord): void {
  const body = record.body;
  let id: string;
  if (body.type === 'pushed') {
    // A waiting job without a ttl (the common push) has no moment to wait for.
    if (body.state === JobState.WAITING && body.job.ttl === null) return;
    id = body.job.id;
  }
  else if (body.type === 'pulled') id = body.jobId;
  else if (body.type === 'failed' && body.outcome === FailOutcome.RETRY) id = body.jobId;
  else if (body.type === 'progressed' && body.lockMs > 0) return noteLock(heap, state, body.jobId);
  else if (body.type === 'promoted') return notePromoted(heap, state, body.jobIds);
  else return;
  const job = state.jobs.get(id);
  if (job !== undefined) noteJob(heap, job);
}

/** A heartbeat moves only the lock: the job's other moments already have their entries, and
 *  adding them again at every report piled up entries that stay until they come due (a day,
 *  for a day's timeout). */
function noteLock(heap: DueHeap, state: State, id: string): void {
  const job = state.jobs.get(id);
  const at = job === undefined ? null : dueAt(job, DueKind.LOCK);
  if (at !== null) heap.push(at, DueKind.LOCK, id);
}

/** A promotion brings a repeating job's runAt, and so its TTL, forward. */
function notePromoted(heap: DueHeap, state: State, ids: readonly string[]): void {
  for (const id of ids) {
    const job = state.jobs.get(id);
    if (job !== undefined && job.repeat !== null && job.ttl !== null) noteJob(heap, job);
  }
}

/** Entries are dropped only when they come due, so those of jobs long gone or moved on stay till
 *  then: a day's ttl on a job done in a millisecond, a year's delay on a job drained at once.
 *  Once the heap holds twice its entries after the last rebuild, plus one per job and a slack, it
 *  is rebuilt from the state: its size stays within twice the live moments plus the jobs held,
 *  and a rebuild, O(jobs), comes after at least as many new entries: O(1) amortized per entry. */
export function compactDueHeap(heap: DueHeap, state: State): void {
  if (heap.size > 2 * heap.sizeRebuilt + state.jobs.size + dueHeapSlackEntries) noteState(heap, state);
}

/** Rebuilds the heap from the state (start, or after an import). */
export function noteState(heap: DueHeap, state: State): void {
  heap.clear();
  // Cold rows (state/cold-jobs.ts) are waiting jobs without a ttl: nothing of theirs comes due.
  for (const job of state.jobs.made()) noteJob(heap, job);
  heap.sizeRebuilt = heap.size;
}

export interface DueWork {
  expire: Job[];
  promote: Job[];
  stall: Job[];
  timeout: Job[];
}

/** Pops every entry due at `now` that still holds; each job appears at most once per list. */
export function takeDue(heap: DueHeap, state: State, now: number): DueWork {
  const work: DueWork = { expire: [], promote: [], stall: [], timeout: [] };
  const seen = new Set<string>();
  for (let at = heap.peekAt(); at !== null && at <= now; at = heap.peekAt()) {
    const due = heap.pop() as Due;
    const job = state.jobs.get(due.id);
    if (job === undefined) continue;
    const current = dueAt(job, due.kind);
    if (current === null || current > now) continue;
    // Due while it still waits for dependencies: nothing to promote; their completion makes it
    // WAITING at once, since its time has passed.
    if (due.kind === DueKind.DELAY && job.state === JobState.WAITING_CHILDREN) continue;
    const key = `${due.kind}:${due.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    if (due.kind === DueKind.DELAY) work.promote.push(job);
    else if (due.kind === DueKind.TTL) work.expire.push(job);
    else if (due.kind === DueKind.LOCK) work.stall.push(job);
    else work.timeout.push(job);
  }
  return work;
}
