// The broker's public contract: what the HTTP, WebSocket and push-worker layers may call.
//
// Every state-changing method follows validate → decide → append → apply and resolves only when
// its records are durable under the log's policy. Business rejections are values (`Outcome` with a
// stable `code`), never exceptions; `src/api/errors.ts` maps codes to HTTP statuses in one place.
// Storage faults are values too (code STORAGE_FAULT) and flip the broker to not-ready.

import type { Actor } from '../record/types.js';
import type { JsonText } from './json-text.js';

export type ErrorCode =
  | 'BAD_REQUEST' //          400: validation failure; message names the field
  | 'NOT_FOUND' //            404: "Job not found", "Queue not found", "Worker not found"
  | 'NOT_ACTIVE' //           400: "Job not found or not active" (seed 004 ack/fail text)
  | 'LOCK_MISMATCH' //        409: "Lock token mismatch"
  | 'CONFLICT' //             409: the job is not in a state that allows the action
  | 'READ_ONLY' //            409: a point-in-time server refuses writes
  | 'TOO_MANY_WAITERS' //     503: long-poll waiter limit reached
  | 'UNAVAILABLE' //          503: replaying at startup or draining for shutdown
  | 'STORAGE_FAULT' //        500 (507 for a full disk): the log failed; nothing was acknowledged
  | 'NO_SPACE'; //            507

export type Failure = { ok: false; code: ErrorCode; error: string };
export type Outcome<T extends object = object> = ({ ok: true } & T) | Failure;

/** Who is calling. `owner` identifies the lock holder for pulls (a WebSocket client id, a worker). */
/** A pull's outcome as the transports send it: the job as its JSON text (view.ts, jobJson). */
export type PullOutcome = Outcome<{ job: JsonText | null; token: string | null }>;

export interface Ctx {
  actor: Actor | null;
  owner?: string;
}

/** BullMQ-style retention as shown in job JSON: boolean, a count, or {count, age (s)}. */
export type KeepView = boolean | number | { count?: number; age?: number };

/** Job JSON as served by the API (seed 004 "Get a Job" fields plus tapeq's additions). */
export interface JobView {
  id: string;
  queue: string;
  name: string;
  data: unknown;
  priority: number;
  createdAt: number;
  runAt: number;
  startedAt: number | null;
  completedAt: number | null;
  attempts: number;
  maxAttempts: number;
  backoff: number | { type: 'fixed' | 'exponential'; delay: number };
  progress: number;
  /** The message of the latest progress report, null when it had none. */
  progressMessage: string | null;
  tags: readonly string[];
  lifo: boolean;
  removeOnComplete: KeepView;
  removeOnFail: KeepView;
  state: string;
  ttl: number | null;
  timeout: number | null;
  uniqueKey: string | null;
  groupId: string | null;
  dependsOn: readonly string[];
  /** `key`: the schedule every instance belongs to (absent for schedules from older logs). */
  repeat: { every?: number; pattern?: string; limit?: number; count: number; key?: string } | null;
  result: unknown;
  failedReason: string | null;
  stalledCount: number;
}

export type Counts = {
  waiting: number;
  active: number;
  delayed: number;
  completed: number;
  failed: number;
  'waiting-children': number;
  paused: number;
};

/** `paused`: the waiting jobs of a paused queue (which `waiting` then does not list). */
/** A status of the job list; `prioritized` is the waiting jobs with a priority (as clean's). */
export type ListStatus = 'waiting' | 'paused' | 'active' | 'completed' | 'failed' | 'delayed' | 'waiting-children' | 'prioritized';

/** Push worker registration (SPEC section 6), already validated. */
export interface WorkerConfig {
  queue: string;
  endpoint: { url: string; method: 'POST' | 'PUT' | 'PATCH'; headers: Record<string, string>; timeout: number };
  opts: {
    concurrency: number;
    limiter: { max: number; duration: number } | null;
    removeOnComplete: { count?: number; age?: number } | null;
    removeOnFail: { count?: number; age?: number } | null;
    maxStalledCount: number;
  };
}

export interface StatsView {
  queued: number;
  processing: number;
  delayed: number;
  dlq: number;
  completed: number;
  waitingChildren: number;
  pushPerSec: number;
  pullPerSec: number;
  totalPushed: number;
  totalPulled: number;
  totalCompleted: number;
  totalFailed: number;
  totalStalled: number;
  jobIndex: number;
  queues: number;
}

export interface BrokerApi {
  /** False while replaying, draining or after a storage fault. */
  readonly ready: boolean;
  /** Set for a point-in-time (read-only) server. */
  readonly readOnly: boolean;

  push(queue: string, input: unknown, ctx: Ctx): Promise<Outcome<{ id: string }>>;
  /** push, answered in two parts: the job's id (or why it was refused) at once, and `durable`,
   *  which settles with null once the job's record is durable, or with the failure. Every push
   *  of one group commit gets the same `durable`, so a caller answering many pushes (the
   *  WebSocket session) waits on it once. */
  pushNow(queue: string, input: unknown, ctx: Ctx, envelope?: ReadonlySet<string>): { id: string; durable: Promise<Failure | null> } | Failure;
  /** All-or-nothing validation; items may be seed-004 shaped or BullMQ {name, data, opts}. */
  pushBulk(queue: string, inputs: unknown[], ctx: Ctx): Promise<Outcome<{ ids: string[] }>>;
  pull(
    queue: string,
    opts: { timeoutMs: number; lockMs?: number; signal?: AbortSignal },
    ctx: Ctx,
  ): Promise<Outcome<{ job: JobView | null; token: string | null }>>;
  /** pull, the job as its JSON text (what the HTTP and WebSocket replies send). */
  pullJson(queue: string, opts: { timeoutMs: number; lockMs?: number; signal?: AbortSignal }, ctx: Ctx): Promise<PullOutcome>;
  ack(id: string, body: { result?: unknown; token?: string }, ctx: Ctx): Promise<Outcome>;
  fail(id: string, body: { error?: string; token?: string }, ctx: Ctx): Promise<Outcome>;
  cancel(id: string, ctx: Ctx): Promise<Outcome>;
  progress(id: string, body: { progress: number; message?: string }, ctx: Ctx): Promise<Outcome>;
  addLog(id: string, message: string, ctx: Ctx): Promise<Outcome>;
  promote(id: string, ctx: Ctx): Promise<Outcome>;
  retry(id: string, ctx: Ctx): Promise<Outcome>;
  changePriority(id: string, priority: unknown, ctx: Ctx): Promise<Outcome>;

  getJob(id: string): JobView | null;
  jobState(id: string): string | null;
  jobResult(id: string): Outcome<{ result: unknown }>;
  getLogs(id: string, start: number, length: number): Outcome<{ logs: string[]; count: number }>;
  /** True when the job is active and `token` is its current lock token (job-token auth). */
  isJobToken(id: string, token: string): boolean;

  listQueues(): Array<{ name: string; paused: boolean; counts: Counts }>;
  counts(queue: string): Counts;
  listJobs(queue: string, statuses: ListStatus[], start: number, length: number): { counts: Counts; jobs: JobView[] };
  pause(queue: string, ctx: Ctx): Promise<Outcome>;
  resume(queue: string, ctx: Ctx): Promise<Outcome>;
  isPaused(queue: string): boolean;
  drain(queue: string, ctx: Ctx): Promise<Outcome<{ removed: number }>>;
  clean(queue: string, body: unknown, ctx: Ctx): Promise<Outcome<{ removed: string[] }>>;
  /** Refused (CONFLICT) while jobs of the queue are active, unless `force`. */
  obliterate(queue: string, ctx: Ctx, force?: boolean): Promise<Outcome>;
  promoteJobs(queue: string, body: unknown, ctx: Ctx): Promise<Outcome<{ promoted: number }>>;
  dlq(queue: string, start: number, length: number): { jobs: JobView[]; count: number };
  dlqRetry(queue: string, id: string | undefined, ctx: Ctx): Promise<Outcome<{ retried: number }>>;
  dlqPurge(queue: string, ctx: Ctx): Promise<Outcome<{ purged: number }>>;

  registerWorker(config: WorkerConfig, ctx: Ctx): Promise<Outcome>;
  removeWorker(queue: string, ctx: Ctx): Promise<Outcome>;
  workers(): WorkerConfig[];
  /** Release every job held by `owner` (a closed WebSocket), one `released` record each. */
  releaseOwner(owner: string, reason: string): Promise<void>;

  stats(): StatsView;
  /** The jobs' data off the JS heap: bytes of its entries (each payload after a 2-byte length)
   *  and of the chunks holding them. */
  payloadBytes(): { liveBytes: number; heldBytes: number };
}
