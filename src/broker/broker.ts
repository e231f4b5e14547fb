// The broker: validate → decide → append → apply → effects, for every state change.
//
// Each command runs its validation, decisions, `log.append` and `apply` synchronously in one turn
// of the event loop, so concurrent commands always decide against a state that already includes
// every earlier append (two pulls can never take the same job). Only then does it await
// durability. A failed append or sync is a storage fault: the command answers STORAGE_FAULT or
// NO_SPACE, the broker turns not-ready for good, and nothing after it is acknowledged. A
// queue-wide action over more than actionStepJobsMax jobs is the one exception: it runs as several
// such steps, one per turn (stepped), each deciding against the state it is applied to.
//
// Effects after each apply, in order: timer index, push/pull rates (throughput.ts), onRecords
// listeners, long-poll wake-ups (deferred to a microtask so a wake never re-enters a running
// command). Timers: one setTimeout for the earliest due moment, at most timerSleepMsMax ahead (see
// timers.ts); `runDueTimers()` is the same work, callable synchronously by simulations with an
// injected clock.
//
// Async methods may overlap freely; every mutation happens inside a synchronous section.

import {
  actionStepJobsMax,
  errorTextLengthMax,
  jobDataBytesMax,
  lockMsDefault,
  lockMsMax,
  logMessageLengthMax,
  pullWaitersMax,
  queuesMax,
  timerSleepMsMax,
  workerLockMarginMs,
  workersMax,
} from '../constants.js';
import {
  JOB_STATE_NAMES,
  JobState,
  queueOf,
  RemoveReason,
  type KeepPolicy,
  type LogRecord,
  type RecordDraft,
} from '../record/types.js';
import type { Appended } from '../log/log.js';
import { apply, queueExists, queueTotal, type Job, type State } from '../state/index.js';
import {
  draft,
  expiredDrafts,
  failedDraft,
  finishDrafts,
  nextRepeatDraft,
  planPush,
  pushRefusal,
  promotedDrafts,
  removedDrafts,
  stalledDraft,
  type Decide,
} from './commands.js';
import { IdGenerator } from './ids.js';
import { JsonText } from './json-text.js';
import { countsOf, listJobs, oldestPage, parseWorker, queueNames, statsOf } from './queries.js';
import { Throughput } from './throughput.js';
import { compactDueHeap, DueHeap, noteRecord, noteState, takeDue, ttlDueAt, type DueWork } from './timers.js';
import type {
  BrokerApi,
  Counts,
  Ctx,
  Failure,
  JobView,
  ListStatus,
  Outcome,
  PullOutcome,
  StatsView,
  WorkerConfig,
} from './types.js';
import { checkLogMessage, checkPriority, checkProgress, checkPull, checkPush, checkPushBulk, queueNameError, refusalAt, wellFormedError, type PushInput } from './validate.js';
import { isWellFormed, truncateText } from '../record/text.js';
import { jobJson, jobView } from './view.js';
import { Waiters, type Waiter } from './waiters.js';
import * as queueOps from './queue-ops.js';
import type { JobSource } from './queue-ops.js';

/** The part of the Log (src/log/log.ts) the broker uses. */
export interface BrokerLog {
  append(drafts: RecordDraft[], opts?: { durable?: boolean }): Appended;
  readonly failed: { code: string; message: string } | null;
  /** Why acknowledgements are held for now, or null (Log.held). */
  readonly held: string | null;
}

export interface BrokerOptions {
  log: BrokerLog;
  /** The state replayed up to the log's end; the broker owns it from now on. */
  state: State;
  clock?: () => number;
  /** Milliseconds on a clock that never steps (default performance.now): pushPerSec/pullPerSec. */
  monotonicClock?: () => number;
  lockMsDefault?: number;
  readOnly?: boolean;
  logger?: (line: string) => void;
  /** Most queues and push workers held at once (default constants.queuesMax, workersMax; tests
   *  use small ones). */
  queuesMax?: number;
  workersMax?: number;
}

export type RecordsListener = (records: LogRecord[]) => void;

type Pending = Promise<Failure | null>;

/** How a queue-wide action drafts its steps (Broker.stepped). */
interface StepPlan {
  /** Whether a job found when the request came is still for a later step to take. */
  still: (job: Job) => boolean;
  drafts: (d: Decide, jobs: Job[]) => RecordDraft[];
  /** The last step's drafts, given how many jobs the steps before took (default: `drafts`). */
  last?: (d: Decide, jobs: Job[], before: number) => RecordDraft[];
  /** Told each step's jobs once appended (the action keeps none itself: a drain of a million
   *  jobs would hold every one until its end). */
  took?: (jobs: Job[]) => void;
  /** A queue whose pulls get no job until the last step. */
  holdPullsOf?: string;
}

const noJob = { ok: true as const, job: null, token: null };

function fail(code: Failure['code'], error: string): Failure {
  return { ok: false, code, error };
}

export class Broker implements BrokerApi {
  readonly readOnly: boolean;
  readonly state: State;
  private readonly log: BrokerLog;
  private readonly clock: () => number;
  private readonly lockMsDefault: number;
  private readonly queuesMax: number;
  private readonly workersMax: number;
  private readonly logger: (line: string) => void;
  private readonly ids: IdGenerator;
  private readonly heap = new DueHeap();
  private readonly waiters = new Waiters();
  private readonly throughput: Throughput;
  private readonly listeners: RecordsListener[] = [];
  private readonly wakeQueues = new Set<string>();
  private readonly workerCache = new Map<string, WorkerConfig>();
  /** Queues whose pulls get no job while a drain, a clean of every waiting job or an obliterate
   *  runs over them in steps, with how many such actions run on each. */
  private readonly pullsHeld = new Map<string, number>();
  /** Told when a queue's last hold ends (onPullsResumed). */
  private readonly resumedListeners: Array<(queue: string) => void> = [];
  private fault: Failure | null = null;
  private draining = false;
  private closed = false;
  private started = false;
  private timer: NodeJS.Timeout | null = null;
  private armedAt = Number.POSITIVE_INFINITY;
  private lastDurable: Pending = Promise.resolve(null);
  /** The log's durable promise that lastDurable was made from. */
  private lastDurableOf: Promise<void> | null = null;

  constructor(opts: BrokerOptions) {
    this.log = opts.log;
    this.state = opts.state;
    this.clock = opts.clock ?? Date.now;
    this.lockMsDefault = opts.lockMsDefault ?? lockMsDefault;
    this.queuesMax = opts.queuesMax ?? queuesMax;
    this.workersMax = opts.workersMax ?? workersMax;
    this.readOnly = opts.readOnly === true;
    this.logger = opts.logger ?? (() => undefined);
    this.ids = new IdGenerator(() => this.now());
    this.throughput = new Throughput(opts.monotonicClock ?? (() => performance.now()));
    noteState(this.heap, this.state);
  }

  /** Not while acknowledgements are held either: a balancer that takes traffic away then helps
   *  the descriptor shortage end. */
  get ready(): boolean {
    return this.fault === null && !this.draining && !this.closed && this.log.held === null;
  }

  /** Arms the timers from the state: overdue moments (expired locks after a restart) fire at once. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.rearm();
  }

  /** Readiness goes false and no job is handed out any more: waiting long-polls are answered
   *  with no job now, and pulls get none. Every other command still runs until close(). */
  beginShutdown(): void {
    this.draining = true;
    for (const waiter of this.waiters.takeAll()) waiter.done(null);
  }

  /** Stops timers and wakes every long-poll waiter with no job. Does not close the log. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const waiter of this.waiters.takeAll()) waiter.done(null);
    await this.lastDurable;
  }

  /** Called synchronously after each batch of records is applied. Returns an unsubscribe. */
  onRecords(listener: RecordsListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** `listener(queue)` when the last hold on the queue's pulls ends (stepped): jobs may be
   *  pullable there that no record announced (pushed while held), or that a last step left. */
  onPullsResumed(listener: (queue: string) => void): () => void {
    this.resumedListeners.push(listener);
    return () => {
      const i = this.resumedListeners.indexOf(listener);
      if (i >= 0) this.resumedListeners.splice(i, 1);
    };
  }

  /** Record timestamps never go backwards, whatever the wall clock does. */
  now(): number {
    return Math.max(Math.floor(this.clock()), this.state.timestamp);
  }

  // ── The commit path ───────────────────────────────────────────────────────────────────────

  private gate(): Failure | null {
    if (this.fault !== null) return this.fault;
    if (this.closed) return fail('UNAVAILABLE', 'Broker is closed');
    if (this.readOnly) return fail('READ_ONLY', `Read-only: this server shows the state at offset ${this.state.offset} (serve --until); writes are refused`);
    return null;
  }

  private decide(ctx: Ctx | null): Decide {
    return { state: this.state, now: this.now(), actor: ctx?.actor ?? null, ids: this.ids };
  }

  private storageFault(error: unknown): Failure {
    if (this.fault !== null) return this.fault;
    const code = (error as { code?: unknown } | null)?.code;
    const message = error instanceof Error ? error.message : String(error);
    this.fault =
      code === 'LOG_NO_SPACE'
        ? fail('NO_SPACE', `No space left on device: ${message}`)
        : fail('STORAGE_FAULT', `Storage failure: ${message}`);
    this.logger(`tapeq: broker stops acknowledging writes: ${message}`);
    for (const waiter of this.waiters.takeAll()) waiter.done(null);
    return this.fault;
  }

  /** Appends and applies synchronously; the promise settles when the records are durable. */
  private append(drafts: RecordDraft[], durable = false): Pending {
    if (drafts.length === 0) return Promise.resolve(this.fault);
    if (this.fault !== null) return Promise.resolve(this.fault);
    let result: Appended;
    try {
      result = this.log.append(drafts, durable ? { durable: true } : undefined);
    } catch (error) {
      if (this.log.failed === null && (error as { code?: unknown }).code === 'LOG_RECORD_TOO_LARGE') {
        return Promise.resolve(fail('BAD_REQUEST', 'Record too large'));
      }
      return Promise.resolve(this.storageFault(error));
    }
    const records = result.records;
    // A completion or removal that settles a dependency can make jobs of any queue waiting (the
    // fold drops the dependency's entry from `dependents` as it does): long polls elsewhere wake.
    const dependentsBefore = this.state.dependents.size;
    const { totalPushed, totalPulled } = this.state.stats;
    for (const record of records) {
      apply(this.state, record);
      noteRecord(this.heap, this.state, record);
    }
    this.throughput.add(this.state.stats.totalPushed - totalPushed, this.state.stats.totalPulled - totalPulled);
    compactDueHeap(this.heap, this.state);
    this.afterApply(records, this.state.dependents.size < dependentsBefore);
    // Appends of one group-commit batch share its durable promise, so they share one Pending.
    if (result.durable !== this.lastDurableOf) {
      this.lastDurableOf = result.durable;
      this.lastDurable = result.durable.then(
        () => null,
        (error: unknown) => this.storageFault(error),
      );
    }
    return this.lastDurable;
  }

  private afterApply(records: LogRecord[], dependentsSettled: boolean): void {
    for (const listener of this.listeners) {
      try {
        listener(records);
      } catch (error) {
        this.logger(`tapeq: onRecords listener failed: ${String(error)}`);
      }
    }
    if (this.waiters.size > 0) {
      const before = this.wakeQueues.size;
      for (const record of records) {
        const queue = queueOf(record.body);
        if (this.waiters.has(queue)) this.wakeQueues.add(queue);
      }
      if (dependentsSettled) for (const queue of this.waiters.queues()) this.wakeQueues.add(queue);
      if (before === 0 && this.wakeQueues.size > 0) queueMicrotask(() => this.wake());
    }
    if (this.started && !this.closed) {
      const at = this.heap.peekAt();
      if (at !== null && at < this.armedAt) this.rearm();
    }
  }

  /** The first failure among `pending`, or null once all are durable. One pending (a single
   *  push, ack or fail: the hot path) is handed back as it is, without a Promise.all. */
  private settle(pending: Pending[]): Pending {
    if (pending.length === 1) return pending[0] as Pending;
    return Promise.all(pending).then((results) => results.find((r) => r !== null) ?? null);
  }

  private done<T extends object>(pending: Pending[], value: T): Promise<Outcome<T>> {
    return this.settle(pending).then((failure) => failure ?? { ok: true, ...value });
  }

  // ── Timers ────────────────────────────────────────────────────────────────────────────────

  private rearm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.armedAt = Number.POSITIVE_INFINITY;
    const at = this.heap.peekAt();
    // Once nothing can be written (a storage fault, closed), a due moment stays due: arming for
    // it again would fire at once, for ever.
    if (at === null || this.gate() !== null || !this.started) return;
    const delayMs = Math.min(Math.max(at - this.clock(), 0), timerSleepMsMax);
    this.armedAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.armedAt = Number.POSITIVE_INFINITY;
      this.runDueTimers();
    }, delayMs);
    this.timer.unref();
  }

  /** Writes the records for every moment due now (promotions, expiries, stalls, timeouts). */
  runDueTimers(): void {
    if (this.gate() === null) {
      const now = this.now();
      for (let at = this.heap.peekAt(); at !== null && at <= now && this.fault === null; at = this.heap.peekAt()) {
        this.processDue(takeDue(this.heap, this.state, now));
      }
    }
    if (this.started) this.rearm();
  }

  private processDue(work: DueWork): void {
    const d = this.decide(null);
    const expiring = work.expire.filter((job) => (ttlDueAt(job) ?? Infinity) <= d.now);
    for (const [queue, jobs] of groupByQueue(expiring)) {
      void this.append(expiredDrafts(d, queue, jobs));
    }
    const promoting = work.promote.filter((job) => job.state === JobState.DELAYED && job.runAt <= d.now);
    for (const [queue, jobs] of groupByQueue(promoting)) void this.append(promotedDrafts(d, queue, jobs, false));
    for (const job of work.stall) {
      if (job.state !== JobState.ACTIVE || (job.lockExpiresAt ?? Infinity) > d.now) continue;
      const maxStalled = this.workerConfig(job.queue)?.opts.maxStalledCount ?? null;
      void this.append([stalledDraft(this.decide(null), job, maxStalled)]);
      if ((job.state as JobState) === JobState.FAILED) void this.append(finishDrafts(this.decide(null), job, this.workerPolicy(job)));
    }
    for (const job of work.timeout) {
      const timeout = job.timeout;
      if (job.state !== JobState.ACTIVE || timeout === null || (job.startedAt ?? Infinity) + timeout > d.now) continue;
      this.failJob(job, `Job timed out after ${timeout} ms`, 'timeout', null);
    }
  }

  // ── Workers' settings that decisions use ──────────────────────────────────────────────────

  private workerConfig(queue: string): WorkerConfig | null {
    const text = this.state.workers.get(queue);
    if (text === undefined) return null;
    let config = this.workerCache.get(text);
    if (config === undefined) {
      config = parseWorker(text);
      this.workerCache.clear();
      this.workerCache.set(text, config);
    }
    return config;
  }

  /** The push worker's retention, used when the job has none of its own. */
  private workerPolicy(job: Job): KeepPolicy | null {
    const opts = this.workerConfig(job.queue)?.opts;
    const keep = job.state === JobState.COMPLETED ? opts?.removeOnComplete : opts?.removeOnFail;
    if (keep === undefined || keep === null) return null;
    return { remove: false, count: keep.count ?? null, ageMs: keep.age === undefined ? null : keep.age * 1000 };
  }

  // ── Jobs ──────────────────────────────────────────────────────────────────────────────────

  push(queue: string, input: unknown, ctx: Ctx): Promise<Outcome<{ id: string }>> {
    const pushed = this.pushNow(queue, input, ctx);
    if ('error' in pushed) return Promise.resolve(pushed);
    const id = pushed.id;
    return pushed.durable.then((failure) => failure ?? { ok: true, id });
  }

  pushNow(queue: string, input: unknown, ctx: Ctx, envelope?: ReadonlySet<string>): { id: string; durable: Pending } | Failure {
    const checked = checkPush(input, envelope ?? null);
    if (!checked.ok) return fail('BAD_REQUEST', checked.error);
    // One job, the hot path: no arrays and no Promise.all around a single pending append.
    const refused = this.pushRefusal(queue);
    if (refused !== null) return refused;
    const pushed = this.pushOne(queue, checked.value, ctx, input, null);
    return 'error' in pushed ? pushed : { id: pushed.id, durable: pushed.pending };
  }

  pushBulk(queue: string, inputs: unknown[], ctx: Ctx): Promise<Outcome<{ ids: string[] }>> {
    const checked = checkPushBulk(inputs);
    if (!checked.ok) return Promise.resolve(fail('BAD_REQUEST', checked.error));
    return this.pushMany(queue, checked.value, inputs, ctx);
  }

  /** `raw`: the items as they came (pushOne). */
  private pushMany(queue: string, inputs: PushInput[], raw: unknown[], ctx: Ctx): Promise<Outcome<{ ids: string[] }>> {
    const refused = this.pushRefusal(queue);
    if (refused !== null) return Promise.resolve(refused);
    const decide = this.decide(ctx);
    for (const [i, input] of inputs.entries()) {
      const item = pushRefusal(decide, queue, input);
      if (item !== null) return Promise.resolve(fail(item.code, refusalAt(item.error, raw[i], i)));
    }
    const ids: string[] = [];
    const pending: Pending[] = [];
    for (const [i, input] of inputs.entries()) {
      const pushed = this.pushOne(queue, input, ctx, raw[i], i);
      if ('error' in pushed) return Promise.resolve(pushed);
      ids.push(pushed.id);
      pending.push(pushed.pending);
      if (this.fault !== null) break;
    }
    return this.done(pending, { ids });
  }

  private pushRefusal(queue: string): Failure | null {
    const bad = queueNameError(queue);
    return bad !== null ? fail('BAD_REQUEST', bad) : (this.gate() ?? this.queueRoom(queue));
  }

  /** Refuses a request that would add a queue once queuesMax of them exist (names are free-form;
   *  a queue exists, idle ones included, until it is obliterated). */
  private queueRoom(queue: string): Failure | null {
    if (queueTotal(this.state) < this.queuesMax || queueExists(this.state, queue)) return null;
    return fail('CONFLICT', `Too many queues: at most ${this.queuesMax} (obliterate the ones no longer used)`);
  }

  /** `raw`: the job as it came, and `item` its index in a bulk push (null alone): a refusal names
   *  its field by the whole path, as validation's errors do (refusalAt). */
  private pushOne(queue: string, input: PushInput, ctx: Ctx, raw: unknown, item: number | null): { id: string; pending: Pending } | Failure {
    const plan = planPush(this.decide(ctx), queue, input);
    if (plan.kind === 'refused') return fail(plan.code, refusalAt(plan.error, raw, item));
    return { id: plan.id, pending: this.append(plan.drafts, input.durable) };
  }

  pull(
    queue: string,
    opts: { timeoutMs: number; lockMs?: number; signal?: AbortSignal },
    ctx: Ctx,
  ): Promise<Outcome<{ job: JobView | null; token: string | null }>> {
    return this.pullJson(queue, opts, ctx).then((outcome) =>
      outcome.ok ? { ok: true, job: outcome.job === null ? null : (JSON.parse(outcome.job.text) as JobView), token: outcome.token } : outcome,
    );
  }

  pullJson(queue: string, opts: { timeoutMs: number; lockMs?: number; signal?: AbortSignal }, ctx: Ctx): Promise<PullOutcome> {
    const bad = queueNameError(queue);
    if (bad !== null) return Promise.resolve(fail('BAD_REQUEST', bad));
    const checked = checkPull(opts);
    if (!checked.ok) return Promise.resolve(fail('BAD_REQUEST', checked.error));
    const gated = this.gate();
    if (gated !== null) return Promise.resolve(gated);
    if (this.draining) return Promise.resolve(noJob);
    const { timeoutMs, lockMs } = checked.value;
    const owner = ctx.owner ?? 'http';
    const now = this.pullNow(queue, lockMs, owner, ctx);
    if (now !== null) return now;
    if (timeoutMs === 0 || opts.signal?.aborted === true) return Promise.resolve(noJob);
    if (this.waiters.size >= pullWaitersMax) return Promise.resolve(fail('TOO_MANY_WAITERS', 'Too many waiting pulls'));
    return this.waitForJob(queue, lockMs, owner, ctx, timeoutMs, opts.signal);
  }

  private waitForJob(
    queue: string,
    lockMs: number | null,
    owner: string,
    ctx: Ctx,
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<PullOutcome> {
    return new Promise((resolve) => {
      const onAbort = (): void => {
        if (this.waiters.remove(waiter)) waiter.done(null);
      };
      const timer = setTimeout(onAbort, timeoutMs);
      const waiter: Waiter = {
        queue,
        lockMs,
        owner,
        ctx,
        done: (result) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(result ?? noJob);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  /** Hands waiting jobs to long-poll waiters of the queues that may have gained some. */
  private wake(): void {
    const queues = [...this.wakeQueues];
    this.wakeQueues.clear();
    for (const queue of queues) {
      for (let waiter = this.waiters.peek(queue); waiter !== undefined; waiter = this.waiters.peek(queue)) {
        if (this.gate() !== null) return;
        const result = this.pullNow(queue, waiter.lockMs, waiter.owner, waiter.ctx);
        if (result === null) break;
        this.waiters.shift(queue);
        waiter.done(result);
      }
    }
  }

  /** Takes the head job now, or null when none is available (empty or paused queue, or one a
   *  drain or obliterate is going through in steps: stepped). Expired
   *  jobs found at the head are removed on the way: a pull never hands out an expired job. */
  private pullNow(
    queue: string,
    lockMs: number | null,
    owner: string,
    ctx: Ctx,
  ): Promise<PullOutcome> | null {
    const q = this.state.queues.get(queue);
    if (q === undefined || q.paused || this.pullsHeld.has(queue)) return null;
    const now = this.now();
    const expired: Job[] = [];
    let pick: Job | null = null;
    for (const job of queueOps.waitingJobs(q)) {
      const ttlAt = ttlDueAt(job);
      if (ttlAt !== null && ttlAt <= now) {
        expired.push(job);
        continue;
      }
      pick = job;
      break;
    }
    if (expired.length > 0) void this.append(expiredDrafts(this.decide(null), queue, expired));
    if (pick === null) return null;
    const d = this.decide(ctx);
    const token = this.ids.next();
    const body = { type: 'pulled' as const, queue, jobId: pick.id, token, owner, lockMs: lockMs ?? this.lockFor(pick) };
    const drafts = [draft(d, body)];
    const next = pick.startedAt === null ? nextRepeatDraft(d, pick) : null;
    if (next !== null) drafts.push(next);
    const pending = this.append(drafts);
    const job = new JsonText(jobJson(pick));
    return this.done([pending], { job, token });
  }

  /** The lock of a pull that names none: LOCK_MS, or the job's processing timeout plus a margin
   *  when that is longer, so that the timeout (which fails the attempt) decides and not a stall
   *  that hands the job to a second consumer while the first may still finish in time. */
  private lockFor(job: Job): number {
    if (job.timeout === null) return this.lockMsDefault;
    return Math.max(this.lockMsDefault, Math.min(job.timeout + workerLockMarginMs, lockMsMax));
  }

  /** Checks shared by ack and fail: the job is active and, when a token is given, holds it. */
  private activeJob(id: string, token: string | undefined): Job | Failure {
    const gated = this.gate();
    if (gated !== null) return gated;
    const job = this.state.jobs.get(id);
    if (job === undefined) return fail('NOT_ACTIVE', 'Job not found or not active');
    if (token !== undefined && !queueOps.sameToken(job.lockToken, token)) return fail('LOCK_MISMATCH', 'Lock token mismatch');
    if (job.state !== JobState.ACTIVE) return fail('NOT_ACTIVE', 'Job not found or not active');
    return job;
  }

  ack(id: string, body: { result?: unknown; token?: string }, ctx: Ctx): Promise<Outcome> {
    const job = this.activeJob(id, body.token);
    if ('ok' in job) return Promise.resolve(job);
    let result: string | null;
    try {
      result = body.result === undefined ? null : (JSON.stringify(body.result) ?? null);
    } catch {
      // Nested too deeply for JSON.stringify (a RangeError): not JSON this server can store.
      return Promise.resolve(fail('BAD_REQUEST', 'result must be JSON'));
    }
    if (result !== null && Buffer.byteLength(result, 'utf8') > jobDataBytesMax) {
      return Promise.resolve(fail('BAD_REQUEST', `result must be at most ${jobDataBytesMax} bytes as JSON`));
    }
    const d = this.decide(ctx);
    const body_ = { type: 'completed' as const, queue: job.queue, jobId: id, result, token: job.lockToken ?? '' };
    const pending = [this.append([draft(d, body_)])];
    pending.push(this.append(finishDrafts(this.decide(ctx), job, this.workerPolicy(job))));
    return this.done(pending, {});
  }

  fail(id: string, body: { error?: string; token?: string }, ctx: Ctx): Promise<Outcome> {
    const job = this.activeJob(id, body.token);
    if ('ok' in job) return Promise.resolve(job);
    if (body.error !== undefined && typeof body.error !== 'string') {
      return Promise.resolve(fail('BAD_REQUEST', 'error must be a string'));
    }
    if (body.error !== undefined && !isWellFormed(body.error)) return Promise.resolve(fail('BAD_REQUEST', wellFormedError('error')));
    const error = truncateText(body.error ?? 'Job failed', errorTextLengthMax);
    return this.done(this.failJob(job, error, 'nack', ctx), {});
  }

  /** One failed attempt: retry with backoff, or dead → DLQ with retention. */
  private failJob(job: Job, error: string, cause: string, ctx: Ctx | null): Pending[] {
    const pending = [this.append([failedDraft(this.decide(ctx), job, error, cause)])];
    if (job.state === JobState.FAILED) pending.push(this.append(finishDrafts(this.decide(ctx), job, this.workerPolicy(job))));
    return pending;
  }

  /** Job lookup for the job actions: gate first, then NOT_FOUND. */
  private jobFor(id: string): Job | Failure {
    const gated = this.gate();
    if (gated !== null) return gated;
    return this.state.jobs.get(id) ?? fail('NOT_FOUND', 'Job not found');
  }

  cancel(id: string, ctx: Ctx): Promise<Outcome> {
    const job = this.jobFor(id);
    if ('ok' in job) return Promise.resolve(job);
    const drafts = removedDrafts(this.decide(ctx), job.queue, [job], RemoveReason.CANCELLED);
    return this.done([this.append(drafts)], {});
  }

  progress(id: string, body: { progress: number; message?: string }, ctx: Ctx): Promise<Outcome> {
    const checked = checkProgress(body);
    if (!checked.ok) return Promise.resolve(fail('BAD_REQUEST', checked.error));
    const job = this.jobFor(id);
    if ('ok' in job) return Promise.resolve(job);
    if (job.state === JobState.COMPLETED || job.state === JobState.FAILED) {
      return Promise.resolve(fail('CONFLICT', 'Job is already finished'));
    }
    const { progress, message } = checked.value;
    const d = this.decide(ctx);
    // A progress report is a heartbeat: the active job's lock runs on for another lock period
    // (never shorter than it was), so a consumer that reports does not lose a long job to a stall.
    const lockMs = job.state === JobState.ACTIVE ? this.lockFor(job) : 0;
    return this.done([this.append([draft(d, { type: 'progressed', queue: job.queue, jobId: id, progress, message, lockMs })])], {});
  }

  addLog(id: string, message: string, ctx: Ctx): Promise<Outcome> {
    const checked = checkLogMessage(message, logMessageLengthMax);
    if (!checked.ok) return Promise.resolve(fail('BAD_REQUEST', checked.error));
    const job = this.jobFor(id);
    if ('ok' in job) return Promise.resolve(job);
    const d = this.decide(ctx);
    return this.done([this.append([draft(d, { type: 'logged', queue: job.queue, jobId: id, message: checked.value })])], {});
  }

  promote(id: string, ctx: Ctx): Promise<Outcome> {
    const job = this.jobFor(id);
    if ('ok' in job) return Promise.resolve(job);
    if (job.state !== JobState.DELAYED) return Promise.resolve(fail('CONFLICT', 'Job is not delayed'));
    return this.done([this.append(promotedDrafts(this.decide(ctx), job.queue, [job], true))], {});
  }

  retry(id: string, ctx: Ctx): Promise<Outcome> {
    const job = this.jobFor(id);
    if ('ok' in job) return Promise.resolve(job);
    // SPEC section 4: failed (the DLQ) → waiting. A completed job is not run again by retry.
    if (job.state !== JobState.FAILED) return Promise.resolve(fail('CONFLICT', 'Job is not failed'));
    const d = this.decide(ctx);
    return this.done([this.append([draft(d, { type: 'retried', queue: job.queue, jobId: id, prev: job.state })])], {});
  }

  changePriority(id: string, priority: unknown, ctx: Ctx): Promise<Outcome> {
    const checked = checkPriority(priority);
    if (!checked.ok) return Promise.resolve(fail('BAD_REQUEST', checked.error));
    const job = this.jobFor(id);
    if ('ok' in job) return Promise.resolve(job);
    const s = job.state;
    if (s !== JobState.WAITING && s !== JobState.DELAYED && s !== JobState.WAITING_CHILDREN) {
      return Promise.resolve(fail('CONFLICT', 'Job is not waiting or delayed'));
    }
    const d = this.decide(ctx);
    const body = { type: 'priorityChanged' as const, queue: job.queue, jobId: id, priority: checked.value };
    return this.done([this.append([draft(d, body)])], {});
  }

  // ── Job reads ─────────────────────────────────────────────────────────────────────────────

  getJob(id: string): JobView | null {
    const job = this.state.jobs.get(id);
    return job === undefined ? null : jobView(job);
  }

  jobState(id: string): string | null {
    const job = this.state.jobs.get(id);
    return job === undefined ? null : JOB_STATE_NAMES[job.state];
  }

  jobResult(id: string): Outcome<{ result: unknown }> {
    const job = this.state.jobs.get(id);
    if (job === undefined) return fail('NOT_FOUND', 'Job not found');
    return { ok: true, result: job.result === null ? null : (JSON.parse(job.result) as unknown) };
  }

  getLogs(id: string, start: number, length: number): Outcome<{ logs: string[]; count: number }> {
    const job = this.state.jobs.get(id);
    if (job === undefined) return fail('NOT_FOUND', 'Job not found');
    const logs = job.logs ?? [];
    const from = Math.max(0, Math.floor(start));
    return { ok: true, logs: logs.slice(from, from + Math.max(0, Math.floor(length))), count: logs.length };
  }

  isJobToken(id: string, token: string): boolean {
    const job = this.state.jobs.get(id);
    return job !== undefined && job.state === JobState.ACTIVE && queueOps.sameToken(job.lockToken, token);
  }

  // ── Queues ────────────────────────────────────────────────────────────────────────────────

  listQueues(): Array<{ name: string; paused: boolean; counts: Counts }> {
    return queueNames(this.state).map((name) => {
      const q = this.state.queues.get(name);
      return { name, paused: q?.paused ?? false, counts: countsOf(q) };
    });
  }

  counts(queue: string): Counts {
    return countsOf(this.state.queues.get(queue));
  }

  listJobs(queue: string, statuses: ListStatus[], start: number, length: number): { counts: Counts; jobs: JobView[] } {
    const q = this.state.queues.get(queue);
    return { counts: countsOf(q), jobs: listJobs(q, statuses, start, length) };
  }

  isPaused(queue: string): boolean {
    return this.state.queues.get(queue)?.paused ?? false;
  }

  private queueGate(queue: string): Failure | null {
    const bad = queueNameError(queue);
    return bad !== null ? fail('BAD_REQUEST', bad) : this.gate();
  }

  pause(queue: string, ctx: Ctx): Promise<Outcome> {
    const gated = this.queueGate(queue);
    if (gated !== null) return Promise.resolve(gated);
    if (this.isPaused(queue)) return this.done([this.lastDurable], {});
    const full = this.queueRoom(queue);
    if (full !== null) return Promise.resolve(full);
    return this.done([this.append([draft(this.decide(ctx), { type: 'queuePaused', queue })])], {});
  }

  resume(queue: string, ctx: Ctx): Promise<Outcome> {
    const gated = this.queueGate(queue);
    if (gated !== null) return Promise.resolve(gated);
    if (!this.isPaused(queue)) return this.done([this.lastDurable], {});
    return this.done([this.append([draft(this.decide(ctx), { type: 'queueResumed', queue })])], {});
  }

  /**
   * Appends the records of a queue-wide action over `jobs` (decided when the request came) in
   * steps of at most actionStepJobsMax jobs, one step per event-loop turn, so that other clients
   * are served between the steps of a drain of a million jobs. An action of one step runs at once,
   * as before. A later step drafts only the jobs `still` holds for then (a job acked, retried or
   * removed meanwhile is left as it is: a step's records are decided against the state they are
   * applied to). `last` drafts the final step (default: `drafts` of its jobs). With
   * `holdPullsOf`, pulls of that queue get no job between the steps (a long poll waits): a drain
   * or a clean of every waiting job does not feed workers the jobs it is removing, nor an
   * obliterate hand out a job it would then remove while active, which it only does when forced.
   * The hold ends in the turn of the last append, which wakes the long polls and push workers it
   * kept waiting (pullsResumed), whether or not that step appended anything. A storage fault or a
   * close between steps ends the action with that failure, its message saying how many of the
   * jobs the steps taken had reached; those steps stay done, in the log as far as it synced.
   */
  private async stepped(jobs: JobSource | Job[], ctx: Ctx, plan: StepPlan): Promise<{ failure: Failure | null; done: number }> {
    const source = Array.isArray(jobs) ? queueOps.listSource(jobs) : jobs;
    const { still, drafts, last = drafts, took } = plan;
    const held = plan.holdPullsOf !== undefined && source.count > actionStepJobsMax ? plan.holdPullsOf : null;
    let holding = false;
    const release = (): void => {
      if (!holding || held === null) return;
      holding = false;
      const count = (this.pullsHeld.get(held) ?? 1) - 1;
      if (count > 0) this.pullsHeld.set(held, count);
      else this.pullsResumed(held);
    };
    if (held !== null) {
      this.pullsHeld.set(held, (this.pullsHeld.get(held) ?? 0) + 1);
      holding = true;
    }
    let done = 0;
    const pending: Pending[] = [];
    try {
      for (let first = true; ; first = false) {
        if (!first) {
          await new Promise((resolve) => setImmediate(resolve));
          if (this.gate() !== null) {
            release();
            return await this.stopped(pending, source.count, done);
          }
        }
        const taken = source.take(actionStepJobsMax);
        const step = first ? taken : taken.filter(still);
        const final = source.exhausted;
        const d = this.decide(ctx);
        if (final) release();
        pending.push(this.append(final ? last(d, step, done) : drafts(d, step)));
        // An append that failed at once (the log failed or closed) applied nothing of the step.
        if (this.gate() !== null) {
          release();
          return await this.stopped(pending, source.count, done);
        }
        done += step.length;
        took?.(step);
        if (final) return { failure: await this.settle(pending), done };
      }
    } finally {
      release();
    }
  }

  /** Ends the hold on `queue`'s pulls: its long polls are woken (after the final step's append,
   *  in this turn) and so are the push workers, whether or not that step appended anything. */
  private pullsResumed(queue: string): void {
    this.pullsHeld.delete(queue);
    if (this.waiters.has(queue)) {
      if (this.wakeQueues.size === 0) queueMicrotask(() => this.wake());
      this.wakeQueues.add(queue);
    }
    for (const listener of this.resumedListeners) {
      try {
        listener(queue);
      } catch (error) {
        this.logger(`tapeq: onPullsResumed listener failed: ${String(error)}`);
      }
    }
  }

  /** A stepped action ended early by a failure. The answer of one that had more than one step to
   *  take says how far it went, which the client cannot tell otherwise (the steps taken stay
   *  done); one of a single step answers as any command does. */
  private async stopped(pending: Pending[], count: number, done: number): Promise<{ failure: Failure; done: number }> {
    const failure = (await this.settle(pending)) ?? this.gate();
    if (failure === null) throw new Error('stopped: the action has no failure');
    if (count <= actionStepJobsMax) return { failure, done };
    return { failure: fail(failure.code, `${failure.error}; stopped after ${done} of ${count} jobs`), done };
  }

  async drain(queue: string, ctx: Ctx): Promise<Outcome<{ removed: number }>> {
    const gated = this.queueGate(queue);
    if (gated !== null) return gated;
    // A dependent the drain sets free (queueOps.drainable) waits for children until its step. No
    // job is pulled meanwhile (holdPullsOf), but one may be promoted, retried or removed.
    const still = (job: Job): boolean => job.state === JobState.WAITING || job.state === JobState.DELAYED || job.state === JobState.WAITING_CHILDREN;
    const remove = (d: Decide, jobs: Job[]): RecordDraft[] => removedDrafts(d, queue, jobs, RemoveReason.DRAINED);
    const last = (d: Decide, jobs: Job[], before: number): RecordDraft[] => {
      const drafts = remove(d, jobs);
      drafts.push(draft(d, { type: 'queueDrained', queue, removed: before + jobs.length }));
      return drafts;
    };
    const jobs = queueOps.drainable(this.state.queues.get(queue), (id) => this.state.jobs.get(id));
    const { failure, done } = await this.stepped(jobs, ctx, { still, drafts: remove, last, holdPullsOf: queue });
    return failure ?? { ok: true, removed: done };
  }

  async clean(queue: string, body: unknown, ctx: Ctx): Promise<Outcome<{ removed: string[] }>> {
    const gated = this.queueGate(queue);
    if (gated !== null) return gated;
    const q = this.state.queues.get(queue);
    const picked = queueOps.cleanable(q, body, this.now());
    if (!picked.ok) return fail('BAD_REQUEST', picked.error);
    const freed = queueOps.freedDependents(q, picked.value);
    const expected = picked.value[0]?.state;
    const freeing = new Set(freed);
    // A later step leaves a job that moved on, an active one whose lock was taken again, and a
    // dependent set free meanwhile by its dependency's own end.
    const still = (job: Job): boolean =>
      freeing.has(job)
        ? job.state === JobState.WAITING_CHILDREN
        : job.state === expected && (job.state !== JobState.ACTIVE || (job.lockExpiresAt ?? Infinity) <= this.now());
    const remove = (d: Decide, step: Job[]): RecordDraft[] => removedDrafts(d, queue, step, RemoveReason.CLEANED);
    const removed = new Set<Job>();
    const took = (step: Job[]): void => {
      for (const job of step) removed.add(job);
    };
    // A clean that takes every waiting job, as a drain, hands none of them to a worker between
    // its steps; one that takes some (a limit, a grace, prioritized only) leaves the others pullable.
    const all = expected === JobState.WAITING && picked.value.length === (q?.waiting.size ?? 0);
    const { failure } = await this.stepped(queueOps.dependentsFirst(freed, picked.value), ctx, { still, drafts: remove, took, ...(all ? { holdPullsOf: queue } : {}) });
    if (failure !== null) return failure;
    // The picked jobs oldest first, then the ones they set free, as the answer has always listed.
    const ids: string[] = [];
    for (const list of [picked.value, freed]) for (const job of list) if (removed.has(job)) ids.push(job.id);
    return { ok: true, removed: ids };
  }

  async obliterate(queue: string, ctx: Ctx, force = false): Promise<Outcome> {
    const gated = this.queueGate(queue);
    if (gated !== null) return gated;
    const q = this.state.queues.get(queue);
    // As BullMQ's obliterate: jobs being worked on are not thrown away unless asked to.
    const active = q?.active.size ?? 0;
    if (active > 0 && !force) {
      return fail('CONFLICT', `Queue has ${active} active job${active === 1 ? '' : 's'}: obliterate with {"force": true} to remove them too`);
    }
    const still = (job: Job): boolean => job.state !== JobState.UNSPECIFIED;
    const remove = (d: Decide, jobs: Job[]): RecordDraft[] => removedDrafts(d, queue, jobs, RemoveReason.OBLITERATED);
    // The last step removes every job the queue holds then (those of the step, and any pushed
    // since the request came) with the queue itself, in one append: no job outlives it. Pulls of
    // the queue are held meanwhile, so that no job becomes active only to be removed unforced.
    const last = (d: Decide): RecordDraft[] => {
      const now = this.state.queues.get(queue);
      const drafts = remove(d, queueOps.allJobs(now));
      if (this.state.workers.has(queue)) drafts.push(draft(d, { type: 'workerRemoved', queue }));
      if (queueExists(this.state, queue) || drafts.length > 0) drafts.push(draft(d, { type: 'queueObliterated', queue }));
      return drafts;
    };
    const { failure } = await this.stepped(queueOps.allJobsSource(q), ctx, { still, drafts: remove, last, holdPullsOf: queue });
    return failure ?? { ok: true };
  }

  async promoteJobs(queue: string, body: unknown, ctx: Ctx): Promise<Outcome<{ promoted: number }>> {
    const gated = this.queueGate(queue);
    if (gated !== null) return gated;
    const picked = queueOps.promotable(this.state.queues.get(queue), body);
    if (!picked.ok) return fail('BAD_REQUEST', picked.error);
    const still = (job: Job): boolean => job.state === JobState.DELAYED;
    const promote = (d: Decide, jobs: Job[]): RecordDraft[] => promotedDrafts(d, queue, jobs, true);
    const { failure, done } = await this.stepped(picked.value, ctx, { still, drafts: promote });
    return failure ?? { ok: true, promoted: done };
  }

  dlq(queue: string, start: number, length: number): { jobs: JobView[]; count: number } {
    const q = this.state.queues.get(queue);
    if (q === undefined) return { jobs: [], count: 0 };
    // One pass up to the page, no copy of the whole DLQ.
    const page = oldestPage(q.failed, Math.floor(start), Math.floor(length));
    return { jobs: page.map(jobView), count: q.failed.size };
  }

  async dlqRetry(queue: string, id: string | undefined, ctx: Ctx): Promise<Outcome<{ retried: number }>> {
    const gated = this.queueGate(queue);
    if (gated !== null) return gated;
    const q = this.state.queues.get(queue);
    let jobs: Job[] = q === undefined ? [] : [...q.failed];
    if (id !== undefined) {
      const job = this.state.jobs.get(id);
      if (job === undefined || q === undefined || !q.failed.has(job)) return fail('NOT_FOUND', 'Job not found');
      jobs = [job];
    }
    const still = (job: Job): boolean => job.state === JobState.FAILED;
    const retry = (d: Decide, step: Job[]): RecordDraft[] => step.map((job) => draft(d, { type: 'retried', queue, jobId: job.id, prev: job.state }));
    const { failure, done } = await this.stepped(jobs, ctx, { still, drafts: retry });
    return failure ?? { ok: true, retried: done };
  }

  async dlqPurge(queue: string, ctx: Ctx): Promise<Outcome<{ purged: number }>> {
    const gated = this.queueGate(queue);
    if (gated !== null) return gated;
    const q = this.state.queues.get(queue);
    const jobs = q === undefined ? [] : [...q.failed];
    const still = (job: Job): boolean => job.state === JobState.FAILED;
    const purge = (d: Decide, step: Job[]): RecordDraft[] => removedDrafts(d, queue, step, RemoveReason.DLQ_PURGED);
    const { failure, done } = await this.stepped(jobs, ctx, { still, drafts: purge });
    return failure ?? { ok: true, purged: done };
  }

  // ── Push workers ──────────────────────────────────────────────────────────────────────────

  registerWorker(config: WorkerConfig, ctx: Ctx): Promise<Outcome> {
    const gated = this.queueGate(config.queue);
    if (gated !== null) return Promise.resolve(gated);
    if (this.state.workers.size >= this.workersMax && !this.state.workers.has(config.queue)) {
      return Promise.resolve(fail('CONFLICT', `Too many workers: at most ${this.workersMax} (remove the ones no longer used)`));
    }
    const body = { type: 'workerRegistered' as const, queue: config.queue, config: JSON.stringify(config) };
    return this.done([this.append([draft(this.decide(ctx), body)])], {});
  }

  removeWorker(queue: string, ctx: Ctx): Promise<Outcome> {
    const gated = this.gate();
    if (gated !== null) return Promise.resolve(gated);
    if (!this.state.workers.has(queue)) return Promise.resolve(fail('NOT_FOUND', 'Worker not found'));
    return this.done([this.append([draft(this.decide(ctx), { type: 'workerRemoved', queue })])], {});
  }

  workers(): WorkerConfig[] {
    return [...this.state.workers.keys()].sort().map((queue) => this.workerConfig(queue) as WorkerConfig);
  }

  async releaseOwner(owner: string, reason: string): Promise<void> {
    if (this.gate() !== null) return;
    const jobs = queueOps.heldBy(this.state, owner);
    if (jobs.length === 0) return;
    const d = this.decide(null);
    const drafts = jobs.map((job) =>
      draft(d, { type: 'released', queue: job.queue, jobId: job.id, token: job.lockToken ?? '', reason }),
    );
    await this.append(drafts);
  }

  stats(): StatsView {
    return statsOf(this.state, this.throughput.lastSecond());
  }

  payloadBytes(): { liveBytes: number; heldBytes: number } {
    const { liveBytes, heldBytes } = this.state.payloads;
    return { liveBytes, heldBytes };
  }
}

function groupByQueue(jobs: Job[]): Map<string, Job[]> {
  const out = new Map<string, Job[]>();
  for (const job of jobs) {
    const list = out.get(job.queue);
    if (list === undefined) out.set(job.queue, [job]);
    else list.push(job);
  }
  return out;
}
