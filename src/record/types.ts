// TypeScript view of proto/tapeq.proto. A LogRecord is one frame of the log.
//
// `body.type` is the name of the oneof field in the proto `Record` message, so the codec maps
// between the two without a table. Optional proto3 fields are `null` when absent. Enums are the
// proto numbers; the *_NAMES tables give their names for logs and JSON.
//
// This module is shared by every layer (including the pure fold) and imports nothing.

export const JobState = {
  UNSPECIFIED: 0,
  WAITING: 1,
  DELAYED: 2,
  ACTIVE: 3,
  COMPLETED: 4,
  FAILED: 5,
  WAITING_CHILDREN: 6,
} as const;
export type JobState = (typeof JobState)[keyof typeof JobState];

/** Names used by the HTTP API (`GET /jobs/:id/state`) and events (`prev`). */
export const JOB_STATE_NAMES: Record<JobState, string> = {
  0: 'unknown',
  1: 'waiting',
  2: 'delayed',
  3: 'active',
  4: 'completed',
  5: 'failed',
  6: 'waiting-children',
};

export const BackoffType = { EXPONENTIAL: 0, FIXED: 1 } as const;
export type BackoffType = (typeof BackoffType)[keyof typeof BackoffType];

export const FailOutcome = { RETRY: 0, DEAD: 1 } as const;
export type FailOutcome = (typeof FailOutcome)[keyof typeof FailOutcome];

export const StallOutcome = { REQUEUED: 0, STALL_FAILED: 1 } as const;
export type StallOutcome = (typeof StallOutcome)[keyof typeof StallOutcome];

export const RemoveReason = {
  CANCELLED: 0,
  EXPIRED: 1,
  DRAINED: 2,
  CLEANED: 3,
  OBLITERATED: 4,
  DLQ_PURGED: 5,
  REMOVE_ON_COMPLETE: 6,
  REMOVE_ON_FAIL: 7,
} as const;
export type RemoveReason = (typeof RemoveReason)[keyof typeof RemoveReason];

export const REMOVE_REASON_NAMES: Record<RemoveReason, string> = {
  0: 'cancelled',
  1: 'expired',
  2: 'drained',
  3: 'cleaned',
  4: 'obliterated',
  5: 'dlq-purged',
  6: 'remove-on-complete',
  7: 'remove-on-fail',
};

export interface Actor {
  name: string;
  address: string;
}

/** removeOnComplete / removeOnFail as set on a job (null on the job: unset, the push worker's
 *  retention applies). `remove`: remove at once. Otherwise keep at most `count` finished jobs,
 *  none older than `ageMs`; neither set keeps every one (an explicit `false`). */
export interface KeepPolicy {
  remove: boolean;
  count: number | null;
  ageMs: number | null;
}

export interface Repeat {
  every: number | null;
  pattern: string;
  limit: number | null;
  immediately: boolean;
  count: number;
  tz: string;
  /** The schedule's identity (proto Repeat.key): '' only for schedules from older logs. */
  key: string;
}

export interface JobSpec {
  id: string;
  queue: string;
  name: string;
  /** JSON text exactly as received; parsed only when needed. */
  data: string;
  priority: number;
  runAt: number;
  maxAttempts: number;
  backoff: number;
  backoffType: BackoffType;
  ttl: number | null;
  timeout: number | null;
  uniqueKey: string;
  customId: boolean;
  tags: string[];
  groupId: string;
  lifo: boolean;
  removeOnComplete: KeepPolicy | null;
  removeOnFail: KeepPolicy | null;
  dependsOn: string[];
  repeat: Repeat | null;
  maxStalled: number | null;
}

export interface RemovedJob {
  jobId: string;
  prev: JobState;
}

export type RecordBody =
  | { type: 'pushed'; job: JobSpec; state: JobState; pendingDeps: string[] }
  | { type: 'duplicated'; queue: string; jobId: string; uniqueKey: string }
  | { type: 'pulled'; queue: string; jobId: string; token: string; owner: string; lockMs: number }
  | { type: 'completed'; queue: string; jobId: string; result: string | null; token: string }
  | {
      type: 'failed';
      queue: string;
      jobId: string;
      error: string;
      outcome: FailOutcome;
      runAt: number;
      retryDelay: number;
      token: string;
      cause: string;
    }
  /** lockMs > 0: the report renews an active job's lock to at least `timestamp + lockMs`. */
  | { type: 'progressed'; queue: string; jobId: string; progress: number; message: string | null; lockMs: number }
  | { type: 'logged'; queue: string; jobId: string; message: string }
  | { type: 'promoted'; queue: string; jobIds: string[]; manual: boolean }
  | { type: 'stalled'; queue: string; jobId: string; outcome: StallOutcome; token: string }
  | { type: 'released'; queue: string; jobId: string; token: string; reason: string }
  | { type: 'retried'; queue: string; jobId: string; prev: JobState }
  | { type: 'removed'; queue: string; jobs: RemovedJob[]; reason: RemoveReason }
  | { type: 'priorityChanged'; queue: string; jobId: string; priority: number }
  | { type: 'queuePaused'; queue: string }
  | { type: 'queueResumed'; queue: string }
  | { type: 'queueDrained'; queue: string; removed: number }
  | { type: 'queueObliterated'; queue: string }
  | { type: 'workerRegistered'; queue: string; config: string }
  | { type: 'workerRemoved'; queue: string };

export type RecordType = RecordBody['type'];
export type BodyOf<T extends RecordType> = Extract<RecordBody, { type: T }>;

/** Every record type, in proto field order. Tests use it to prove exhaustiveness. */
export const RECORD_TYPES: readonly RecordType[] = [
  'pushed',
  'duplicated',
  'pulled',
  'completed',
  'failed',
  'progressed',
  'logged',
  'promoted',
  'stalled',
  'released',
  'retried',
  'removed',
  'priorityChanged',
  'queuePaused',
  'queueResumed',
  'queueDrained',
  'workerRegistered',
  'workerRemoved',
  'queueObliterated',
];

/** A record before the log has given it an offset. */
export interface RecordDraft {
  timestamp: number;
  actor: Actor | null;
  body: RecordBody;
}

export interface LogRecord extends RecordDraft {
  offset: number;
}

/** Every job ids a record touches (for the per-job history index). */
export function jobIdsOf(body: RecordBody): string[] {
  switch (body.type) {
    case 'pushed':
      return [body.job.id];
    case 'promoted':
      return body.jobIds;
    case 'removed':
      return body.jobs.map((j) => j.jobId);
    case 'duplicated':
    case 'pulled':
    case 'completed':
    case 'failed':
    case 'progressed':
    case 'logged':
    case 'stalled':
    case 'released':
    case 'retried':
    case 'priorityChanged':
      return [body.jobId];
    case 'queuePaused':
    case 'queueResumed':
    case 'queueDrained':
    case 'queueObliterated':
    case 'workerRegistered':
    case 'workerRemoved':
      return [];
    default:
      return assertNever(body);
  }
}

/** Whether the record ends `jobId`'s part as a dependency, by the fold's rule (state/apply.ts): a
 *  completion, or a removal (a missing dependency counts as satisfied) unless the job had failed
 *  or the removal is its expiry, lets the jobs that waited on it run. */
export function releasesDependent(body: RecordBody, jobId: string): boolean {
  if (body.type === 'completed') return body.jobId === jobId;
  if (body.type !== 'removed' || body.reason === RemoveReason.EXPIRED) return false;
  return body.jobs.some((job) => job.jobId === jobId && job.prev !== JobState.FAILED);
}

/** The queue a record belongs to. */
export function queueOf(body: RecordBody): string {
  return body.type === 'pushed' ? body.job.queue : body.queue;
}

export function assertNever(x: never): never {
  throw new Error(`unreachable: ${JSON.stringify(x)}`);
}
