// One job of the projection, laid out for a million of them: one object, one hidden class, with
// only what every job needs as own fields; the rest hangs off two references that are null for
// the common case.
//
//   Job (own fields, ~17 slots)        options: JobOptions | null   the push options beyond the
//     id queue name seq priority state           defaults (ttl, timeout, uniqueKey, tags, repeat…);
//     pendingDeps waitStamp                      immutable, shared between consecutive jobs of a
//     data: its position in the state's          queue pushed with the same options
//       PayloadArena (off the heap)
//     createdAt, runAt: two small ints each
//     options ──────────────────────────►
//     run ──────────────────────────────► run: JobRun | null   what running a job produces (lock,
//                                                attempts, progress, result, error, logs); created
//                                                the first time one of them leaves its default
//
// The accessors (`job.ttl`, `job.lockToken`, …) read through to those objects and answer the
// default when they are null, so callers see one flat job. Writing a default into a job that has
// no `run` allocates nothing. A waiting job pushed with default options therefore costs one heap
// object plus its id string: every field is a small integer or a shared reference, so the young
// generation's collector has only those two to copy (a data string and two timestamps as
// HeapNumbers were three more, and most of a replay's GC time). `job.data` decodes the payload
// from the arena on each read; a job leaving the state (dropJob) takes its data out first.
//
// Invariant: `queue` is the queue's own name string and `name` is shared when it is the default
// (state.ts hands them in), `pendingDeps`/`tags`/`dependsOn` share NO_IDS when empty.

import { backoffMsDefault, jobLogsLengthMax, jobLogsMax, maxAttemptsDefault } from '../constants.js';
import { BackoffType, JobState, type JobSpec, type KeepPolicy, type Repeat } from '../record/types.js';
import type { PayloadArena } from './payloads.js';

export const NO_IDS: readonly string[] = Object.freeze([]);

/** Timestamps are kept as two small integers, ms = high * timeSplit + low: a field holding a
 *  number beyond 2^31 would be a separate HeapNumber object for the garbage collector to copy. */
const timeSplit = 2 ** 24;

function highOf(ms: number): number {
  return Math.floor(ms / timeSplit);
}

/** The push options a job needs later; null on a job when all of them are the defaults. */
export interface JobOptions {
  readonly maxAttempts: number;
  readonly backoff: number;
  readonly backoffType: BackoffType;
  readonly ttl: number | null;
  readonly timeout: number | null;
  readonly uniqueKey: string;
  readonly customId: boolean;
  readonly tags: readonly string[];
  readonly groupId: string;
  readonly lifo: boolean;
  readonly removeOnComplete: Readonly<KeepPolicy> | null;
  readonly removeOnFail: Readonly<KeepPolicy> | null;
  readonly dependsOn: readonly string[];
  readonly repeat: Readonly<Repeat> | null;
  readonly maxStalled: number | null;
}

/** What running the job produced; null on a job until one of these leaves its default. */
export interface JobRun {
  attempts: number;
  stalledCount: number;
  startedAt: number | null;
  finishedAt: number | null;
  progress: number;
  progressMessage: string | null;
  result: string | null;
  error: string | null;
  lockToken: string | null;
  lockOwner: string | null;
  lockExpiresAt: number | null;
  /** Newest last; null until the first log line. */
  logs: string[] | null;
  /** Characters of `logs` in all. */
  logsLength: number;
}

function newRun(): JobRun {
  return {
    attempts: 0,
    stalledCount: 0,
    startedAt: null,
    finishedAt: null,
    progress: 0,
    progressMessage: null,
    result: null,
    error: null,
    lockToken: null,
    lockOwner: null,
    lockExpiresAt: null,
    logs: null,
    logsLength: 0,
  };
}

function sameKeep(a: Readonly<KeepPolicy> | null, b: Readonly<KeepPolicy> | null): boolean {
  if (a === null || b === null) return a === b;
  return a.remove === b.remove && a.count === b.count && a.ageMs === b.ageMs;
}

function sameIds(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((id, i) => id === b[i]);
}

/** Equal options (repeat is compared by identity: its count differs from one instance to the next). */
export function sameOptions(a: JobOptions, b: JobOptions): boolean {
  return (
    a.maxAttempts === b.maxAttempts &&
    a.backoff === b.backoff &&
    a.backoffType === b.backoffType &&
    a.ttl === b.ttl &&
    a.timeout === b.timeout &&
    a.uniqueKey === b.uniqueKey &&
    a.customId === b.customId &&
    sameIds(a.tags, b.tags) &&
    a.groupId === b.groupId &&
    a.lifo === b.lifo &&
    sameKeep(a.removeOnComplete, b.removeOnComplete) &&
    sameKeep(a.removeOnFail, b.removeOnFail) &&
    sameIds(a.dependsOn, b.dependsOn) &&
    a.repeat === b.repeat &&
    a.maxStalled === b.maxStalled
  );
}

/** The option fields of a JobSpec or a JobImage. */
export type OptionFields = Omit<JobSpec, 'id' | 'queue' | 'name' | 'data' | 'priority' | 'runAt'>;

/** The options of a spec-like value, or null when every one is the default. Copies what it keeps. */
export function optionsOf(s: OptionFields): JobOptions | null {
  if (
    s.maxAttempts === maxAttemptsDefault &&
    s.backoff === backoffMsDefault &&
    s.backoffType === BackoffType.EXPONENTIAL &&
    s.ttl === null &&
    s.timeout === null &&
    s.uniqueKey === '' &&
    !s.customId &&
    s.tags.length === 0 &&
    s.groupId === '' &&
    !s.lifo &&
    s.removeOnComplete === null &&
    s.removeOnFail === null &&
    s.dependsOn.length === 0 &&
    s.repeat === null &&
    s.maxStalled === null
  ) {
    return null;
  }
  return {
    maxAttempts: s.maxAttempts,
    backoff: s.backoff,
    backoffType: s.backoffType,
    ttl: s.ttl,
    timeout: s.timeout,
    uniqueKey: s.uniqueKey,
    customId: s.customId,
    tags: s.tags.length === 0 ? NO_IDS : s.tags.slice(),
    groupId: s.groupId,
    lifo: s.lifo,
    removeOnComplete: s.removeOnComplete === null ? null : { ...s.removeOnComplete },
    removeOnFail: s.removeOnFail === null ? null : { ...s.removeOnFail },
    dependsOn: s.dependsOn.length === 0 ? NO_IDS : s.dependsOn.slice(),
    repeat: s.repeat === null ? null : { ...s.repeat },
    maxStalled: s.maxStalled,
  };
}

export class Job {
  /** WaitList entry stamp; 0 when not waiting. */
  waitStamp = 0;
  run: JobRun | null = null;
  /** The data: its position in `payloads`, or the text itself when the arena does not hold it. */
  private dataRef: number | string;
  private readonly createdHigh: number;
  private readonly createdLow: number;
  private runAtHigh: number;
  private runAtLow: number;

  constructor(
    /** Holds the data; the state's own arena. */
    private readonly payloads: PayloadArena,
    readonly id: string,
    readonly queue: string,
    readonly name: string,
    /** JSON text as received, or its position in `payloads` (PayloadArena.storeBytes). */
    data: string | number,
    /** Offset of the record that pushed the job: FIFO and delayed-order tie-break. */
    readonly seq: number,
    createdAt: number,
    public priority: number,
    runAt: number,
    public state: JobState,
    /** dependsOn ids still not completed. */
    public pendingDeps: readonly string[],
    readonly options: JobOptions | null,
  ) {
    if (typeof data === 'number') {
      this.dataRef = data;
    } else {
      const at = payloads.store(data);
      this.dataRef = at < 0 ? data : at;
    }
    this.createdHigh = highOf(createdAt);
    this.createdLow = createdAt - this.createdHigh * timeSplit;
    this.runAtHigh = highOf(runAt);
    this.runAtLow = runAt - this.runAtHigh * timeSplit;
  }

  /** JSON text as received (decoded from the arena on every read). */
  get data(): string {
    const ref = this.dataRef;
    return typeof ref === 'string' ? ref : this.payloads.read(ref);
  }

  get createdAt(): number {
    return this.createdHigh * timeSplit + this.createdLow;
  }

  /** When a delayed job becomes due (ms). */
  get runAt(): number {
    return this.runAtHigh * timeSplit + this.runAtLow;
  }
  set runAt(ms: number) {
    this.runAtHigh = highOf(ms);
    this.runAtLow = ms - this.runAtHigh * timeSplit;
  }

  /** Takes the data out of the arena into a string of its own: the job is leaving the state, but
   *  whoever still holds it (an event, a response) may read it. */
  detachData(): void {
    const ref = this.dataRef;
    if (typeof ref === 'string') return;
    this.dataRef = this.payloads.read(ref);
    this.payloads.free(ref);
  }

  /** Moves the data out of a mostly empty arena chunk (PayloadArena.wasteful). */
  compactData(): void {
    const ref = this.dataRef;
    if (typeof ref === 'number' && this.payloads.sparse(ref)) this.dataRef = this.payloads.relocate(ref);
  }

  /** The job's run record, created on first use. */
  private ensureRun(): JobRun {
    return this.run ?? (this.run = newRun());
  }

  /** The spec this job would be pushed with now (priority and runAt are the current values). */
  get spec(): JobSpec {
    return {
      id: this.id,
      queue: this.queue,
      name: this.name,
      data: this.data,
      priority: this.priority,
      runAt: this.runAt,
      maxAttempts: this.maxAttempts,
      backoff: this.backoff,
      backoffType: this.backoffType,
      ttl: this.ttl,
      timeout: this.timeout,
      uniqueKey: this.uniqueKey,
      customId: this.customId,
      tags: this.tags.slice(),
      groupId: this.groupId,
      lifo: this.lifo,
      removeOnComplete: this.removeOnComplete === null ? null : { ...this.removeOnComplete },
      removeOnFail: this.removeOnFail === null ? null : { ...this.removeOnFail },
      dependsOn: this.dependsOn.slice(),
      repeat: this.repeat === null ? null : { ...this.repeat },
      maxStalled: this.maxStalled,
    };
  }

  get maxAttempts(): number {
    return this.options === null ? maxAttemptsDefault : this.options.maxAttempts;
  }
  get backoff(): number {
    return this.options === null ? backoffMsDefault : this.options.backoff;
  }
  get backoffType(): BackoffType {
    return this.options === null ? BackoffType.EXPONENTIAL : this.options.backoffType;
  }
  get ttl(): number | null {
    return this.options === null ? null : this.options.ttl;
  }
  get timeout(): number | null {
    return this.options === null ? null : this.options.timeout;
  }
  get uniqueKey(): string {
    return this.options === null ? '' : this.options.uniqueKey;
  }
  get customId(): boolean {
    return this.options === null ? false : this.options.customId;
  }
  get tags(): readonly string[] {
    return this.options === null ? NO_IDS : this.options.tags;
  }
  get groupId(): string {
    return this.options === null ? '' : this.options.groupId;
  }
  get lifo(): boolean {
    return this.options === null ? false : this.options.lifo;
  }
  get removeOnComplete(): Readonly<KeepPolicy> | null {
    return this.options === null ? null : this.options.removeOnComplete;
  }
  get removeOnFail(): Readonly<KeepPolicy> | null {
    return this.options === null ? null : this.options.removeOnFail;
  }
  get dependsOn(): readonly string[] {
    return this.options === null ? NO_IDS : this.options.dependsOn;
  }
  get repeat(): Readonly<Repeat> | null {
    return this.options === null ? null : this.options.repeat;
  }
  get maxStalled(): number | null {
    return this.options === null ? null : this.options.maxStalled;
  }

  /** Failed attempts so far (a fail or a stall counts one). */
  get attempts(): number {
    return this.run === null ? 0 : this.run.attempts;
  }
  set attempts(v: number) {
    if (this.run !== null || v !== 0) this.ensureRun().attempts = v;
  }
  get stalledCount(): number {
    return this.run === null ? 0 : this.run.stalledCount;
  }
  set stalledCount(v: number) {
    if (this.run !== null || v !== 0) this.ensureRun().stalledCount = v;
  }
  get startedAt(): number | null {
    return this.run === null ? null : this.run.startedAt;
  }
  set startedAt(v: number | null) {
    if (this.run !== null || v !== null) this.ensureRun().startedAt = v;
  }
  get finishedAt(): number | null {
    return this.run === null ? null : this.run.finishedAt;
  }
  set finishedAt(v: number | null) {
    if (this.run !== null || v !== null) this.ensureRun().finishedAt = v;
  }
  get progress(): number {
    return this.run === null ? 0 : this.run.progress;
  }
  set progress(v: number) {
    if (this.run !== null || v !== 0) this.ensureRun().progress = v;
  }
  get progressMessage(): string | null {
    return this.run === null ? null : this.run.progressMessage;
  }
  set progressMessage(v: string | null) {
    if (this.run !== null || v !== null) this.ensureRun().progressMessage = v;
  }
  /** JSON text of the ack result. */
  get result(): string | null {
    return this.run === null ? null : this.run.result;
  }
  set result(v: string | null) {
    if (this.run !== null || v !== null) this.ensureRun().result = v;
  }
  /** Last failure reason. */
  get error(): string | null {
    return this.run === null ? null : this.run.error;
  }
  set error(v: string | null) {
    if (this.run !== null || v !== null) this.ensureRun().error = v;
  }
  get lockToken(): string | null {
    return this.run === null ? null : this.run.lockToken;
  }
  set lockToken(v: string | null) {
    if (this.run !== null || v !== null) this.ensureRun().lockToken = v;
  }
  get lockOwner(): string | null {
    return this.run === null ? null : this.run.lockOwner;
  }
  set lockOwner(v: string | null) {
    if (this.run !== null || v !== null) this.ensureRun().lockOwner = v;
  }
  get lockExpiresAt(): number | null {
    return this.run === null ? null : this.run.lockExpiresAt;
  }
  set lockExpiresAt(v: number | null) {
    if (this.run !== null || v !== null) this.ensureRun().lockExpiresAt = v;
  }
  /** Newest last, at most constants.jobLogsMax lines of constants.jobLogsLengthMax characters in
   *  all; null until the first log line. Written through addLog. */
  get logs(): string[] | null {
    return this.run === null ? null : this.run.logs;
  }
  /** Appends a log line, then drops the oldest lines while more than jobLogsMax lines or
   *  jobLogsLengthMax characters are kept. The lines kept are the longest run of newest lines
   *  within both bounds, so adding a job's lines one by one or adding the kept ones again (a
   *  snapshot written by an older version kept more) keeps the same lines. */
  addLog(message: string): void {
    const run = this.ensureRun();
    (run.logs ?? (run.logs = [])).push(message);
    run.logsLength += message.length;
    trimLogs(run);
  }

  /** Takes a run read from a snapshot file, which stores no logsLength: counts its lines and keeps
   *  them within the bounds as addLog does (a snapshot written by an older version kept more). */
  adoptRun(run: JobRun): void {
    run.logsLength = 0;
    for (const line of run.logs ?? []) run.logsLength += line.length;
    trimLogs(run);
    this.run = run;
  }
}

/** Drops the oldest log lines while more than jobLogsMax lines or jobLogsLengthMax characters
 *  are kept (the newest line always stays). */
function trimLogs(run: JobRun): void {
  const logs = run.logs;
  if (logs === null) return;
  let drop = 0;
  while (logs.length - drop > jobLogsMax || (run.logsLength > jobLogsLengthMax && logs.length - drop > 1)) {
    run.logsLength -= (logs[drop] as string).length;
    drop++;
  }
  if (drop > 0) logs.splice(0, drop);
}
