// One registered push worker: pulls jobs of its queue and calls its endpoint, within its
// concurrency, its start-rate limiter and its own backoff.
//
//   wake(credit) ─▶ pump ─▶ pull (timeoutMs 0, lock = timeout + margin) ─▶ call ─▶ ack | fail
//                    ▲                                                        │
//                    └──────────────── a slot frees / a timer fires ◀─────────┘
//
// Invariants:
// - inFlight + pulling <= concurrency: a pull holds a slot, so the endpoint never sees more than
//   `concurrency` calls of this worker at once (a replaced worker's lower concurrency applies to
//   new pulls; calls already running finish). The calls of a removed worker of the same queue
//   still running (a DELETE then a POST) hold slots of the new one too (callsBefore), and its
//   limiter's start history carries over (limiterBefore), as a replace keeps both.
// - A call never outlives its job's lock: it is made with the registration its pull was made
//   under, whose timeout the lock was granted for. A pull on its way when the worker is replaced
//   is called as the old registration says, like the calls already running; a call with the new,
//   longer timeout would let the job stall and be handed out again while it still runs. Its start
//   counts in the limiter that reserved its slot (none if the old registration had none).
// - `credit` estimates how many jobs records made available (Infinity = unknown, pull until the
//   queue answers empty). Nothing polls: without credit, a free slot or a timer, nothing runs.
//   A pull that finds the queue empty drops the credit, unless a wake arrived meanwhile.
// - A call ends at the endpoint's timeout or the job's own `timeout`, whichever is shorter. A call
//   its job's timeout ended is neither acked nor failed here: the broker's timer fails that
//   attempt at the pull record's time + `timeout`, which comes before the call (started after the
//   pull) reaches it, so a fail from here could only be refused as late.
// - Backoff: calls that got no answer at all (network error, the endpoint's timeout) pause new
//   pulls for 100 ms, doubling per consecutive unanswered round up to 5 s; any answer resets it.
//   Calls that were already running when the pause began do not escalate it again; a replaced
//   registration starts without a pause. A call ended by its job's own, shorter `timeout` neither
//   pauses nor resets: that job is slow, which says nothing of the endpoint, and the worker's
//   other jobs must not wait for it. The job's own retry delay is the broker's business (fail →
//   backoff → DLQ).
// - A late ack/fail (LOCK_MISMATCH, NOT_ACTIVE: the attempt stalled or the job was cancelled) is
//   logged and dropped; the broker guarantees it cannot complete a newer attempt.
// - After stop(): no pull or call starts. A pull that was already on its way and returns a job
//   after stop is not called: the job stays locked under this runner's `owner`, unique to this
//   runner, until WorkerDispatcher releases what the owner still holds once the runner is idle
//   (a successor for the same queue has an owner of its own, so its jobs are never released).
// - abandonCalls() (a shutdown out of patience) ends the calls still running; one that ends
//   without an answer is neither acked nor failed, so its job stays locked under `owner` for the
//   dispatcher to release. An answer that arrived anyway is still recorded.
//
// Methods are synchronous; the async work (pulls, calls, acks) overlaps freely and only touches
// the counters above from the event loop's single thread.

import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { BrokerApi, Ctx, JobView, WorkerConfig } from '../broker/types.js';
import {
  workerBackoffMsFirst,
  workerBackoffMsMax,
  workerConcurrencyMax,
  workerErrorBodyChars,
  workerLockMarginMs,
  workerResponseBytesMax,
} from '../constants.js';
import type { EndpointClient } from './http-client.js';
import { StartLimiter } from './limiter.js';
import { judge } from './response.js';

export interface RunnerDeps {
  broker: BrokerApi;
  client: EndpointClient;
  logger: (line: string) => void;
  now: () => number;
  /** Calls of this queue's removed workers still running (a DELETE then a POST): they count
   *  against this one's concurrency until they end. */
  callsBefore?: () => number;
  /** The start history of this queue's removed worker still running, taken over when this one has
   *  a limiter too, so that a DELETE then a POST cannot reset the window as a re-POST cannot. */
  limiterBefore?: StartLimiter | null;
  /** Told when a call ends (its slot frees), for a successor waiting on callsBefore. */
  onCallEnded?: () => void;
  /** Told what the endpoint made of each call it was sent (not of a call abandoned at shutdown or
   *  ended by its job's own timeout, whose attempts the broker settles). */
  onCallJudged?: (outcome: CallOutcomeName) => void;
}

/** What an endpoint made of a call: answered with a result the broker took (2xx), answered
 *  otherwise (the attempt fails), or not answered (timeout, connection error: the attempt fails
 *  and the worker pauses). */
export type CallOutcomeName = 'success' | 'failure' | 'unanswered';

export class WorkerRunner {
  readonly queue: string;
  readonly owner: string;
  readonly #deps: RunnerDeps;
  readonly #ctx: Ctx;
  #config: WorkerConfig;
  #limiter: StartLimiter | null;
  #inFlight = 0;
  #pulling = 0;
  #credit = 0;
  #wakeSeq = 0;
  #pumpQueued = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #timerAtMs = 0;
  #unansweredRounds = 0;
  #pausedUntilMs = 0;
  #pauseSetAtMs = Number.NEGATIVE_INFINITY;
  readonly #idleWaiters: Array<() => void> = [];
  readonly #abandon = new AbortController();

  constructor(config: WorkerConfig, deps: RunnerDeps) {
    this.queue = config.queue;
    // One owner per runner, not per queue: releasing a removed runner's late pulls must not
    // release the jobs its successor for the same queue is calling.
    this.owner = `worker:${config.queue}:${randomUUID()}`;
    this.#deps = deps;
    this.#ctx = { actor: { name: 'worker', address: '' }, owner: this.owner };
    // Each running call listens on the abandon signal, at most workerConcurrencyMax at once (a
    // replace's lower or higher concurrency included): past Node's default of 10 it would print a
    // listener-leak warning.
    setMaxListeners(workerConcurrencyMax + 1, this.#abandon.signal);
    this.#config = config;
    this.#limiter = limiterOf(config, deps.limiterBefore ?? null);
  }

  get config(): WorkerConfig {
    return this.#config;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get startLimiter(): StartLimiter | null {
    return this.#limiter;
  }

  /** A slot elsewhere (a removed worker's call) may have freed: pump with the credit held. */
  nudge(): void {
    if (!this.#stopped) this.#schedulePump();
  }

  /** A replaced registration: new pulls use it; pulls on their way and running calls keep theirs. */
  reconfigure(config: WorkerConfig): void {
    this.#config = config;
    // The back-off judged the old registration, which the new one may fix (another URL, a longer
    // timeout): it starts afresh, and calls already running under the old one cannot escalate it.
    this.#unansweredRounds = 0;
    this.#pausedUntilMs = 0;
    this.#pauseSetAtMs = this.#deps.now();
    const limiter = config.opts.limiter;
    if (limiter === null) this.#limiter = null;
    else if (this.#limiter === null) this.#limiter = new StartLimiter(limiter);
    else this.#limiter.reconfigure(limiter);
    this.wake(Number.POSITIVE_INFINITY);
  }

  /** `credit` jobs may have become available (Infinity when unknown). Coalesced per tick. */
  wake(credit: number): void {
    if (this.#stopped || credit <= 0) return;
    this.#credit += credit;
    this.#wakeSeq += 1;
    this.#schedulePump();
  }

  /** No new pulls or calls; resolves once running calls and pulls ended. Jobs pulled too late
   *  stay locked under `owner` for the caller to release. */
  stop(): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve);
      this.#settle();
    });
  }

  /** Ends the running calls (after stop(), when a shutdown cannot wait for them any longer). */
  abandonCalls(): void {
    this.#abandon.abort();
  }

  #schedulePump(): void {
    if (this.#pumpQueued) return;
    this.#pumpQueued = true;
    queueMicrotask(() => {
      this.#pumpQueued = false;
      this.#pump();
    });
  }

  #pump(): void {
    if (this.#stopped) return;
    // A start is counted when the call is handed to the pool: not before the client can take it.
    if (!this.#deps.client.loaded) {
      this.#deps.client.load().then(
        () => this.#schedulePump(),
        (error: unknown) => this.#deps.logger(`tapeq: worker ${this.queue}: loading the HTTP client failed: ${String(error)}`),
      );
      return;
    }
    const now = this.#deps.now();
    if (now < this.#pausedUntilMs) {
      this.#armTimer(this.#pausedUntilMs - now, now);
      return;
    }
    const callsBefore = this.#deps.callsBefore?.() ?? 0;
    while (this.#credit > 0 && this.#inFlight + this.#pulling + callsBefore < this.#config.opts.concurrency) {
      const limiter = this.#limiter;
      if (limiter !== null) {
        const waitMs = limiter.tryReserve(now);
        if (waitMs > 0) {
          if (Number.isFinite(waitMs)) this.#armTimer(waitMs, now);
          return;
        }
      }
      this.#credit -= 1;
      this.#pulling += 1;
      void this.#pullOne(this.#wakeSeq, limiter);
    }
  }

  /** `limiter` is the one that reserved this pull's slot (none when there was none): a replace
   *  may swap the runner's limiter while the pull is on its way, and only the limiter that gave
   *  the reservation can take it back or turn it into a start. */
  async #pullOne(wakeSeqAtStart: number, limiter: StartLimiter | null): Promise<void> {
    const config = this.#config;
    const lockMs = config.endpoint.timeout + workerLockMarginMs;
    const startedAtMs = this.#deps.now();
    let pulled: { job: JobView; token: string } | null = null;
    let pullFailed = false;
    try {
      const out = await this.#deps.broker.pull(this.queue, { timeoutMs: 0, lockMs }, this.#ctx);
      if (!out.ok) {
        pullFailed = true;
        this.#deps.logger(`tapeq: worker ${this.queue}: pull refused: ${out.code} ${out.error}`);
      } else if (out.job !== null && out.token !== null) {
        pulled = { job: out.job, token: out.token };
      }
    } catch (error) {
      pullFailed = true;
      this.#deps.logger(`tapeq: worker ${this.queue}: pull threw: ${String(error)}`);
    }
    this.#pulling -= 1;
    if (pulled === null) {
      limiter?.unused();
      if (pullFailed) {
        this.#credit += 1;
        this.#pause(this.#deps.now(), startedAtMs);
      } else if (this.#wakeSeq === wakeSeqAtStart) {
        this.#credit = 0;
      }
    } else if (this.#stopped) {
      limiter?.unused();
    } else {
      this.#startCall(pulled.job, pulled.token, config, limiter);
    }
    this.#schedulePump();
    this.#settle();
  }

  #startCall(job: JobView, token: string, config: WorkerConfig, limiter: StartLimiter | null): void {
    const startedAtMs = this.#deps.now();
    limiter?.started(startedAtMs);
    this.#inFlight += 1;
    void this.#call(job, token, config, startedAtMs).finally(() => {
      this.#inFlight -= 1;
      this.#schedulePump();
      this.#settle();
      this.#deps.onCallEnded?.();
    });
  }

  async #call(job: JobView, token: string, config: WorkerConfig, startedAtMs: number): Promise<void> {
    const { url, method, headers, timeout } = config.endpoint;
    const timeoutMs = callTimeoutMs(timeout, job);
    const outcome = await this.#deps.client.call({
      url,
      method,
      headers,
      body: JSON.stringify({ job, token }),
      timeoutMs,
      responseBytesMax: workerResponseBytesMax,
      signal: this.#abandon.signal,
    });
    // Abandoned unanswered: not the endpoint's failure, so no attempt is spent; the job is
    // released with the runner's other held jobs.
    if (outcome.kind === 'unreachable' && this.#abandon.signal.aborted) return;
    // Ended by the job's own timeout: the broker has failed (or is failing) that attempt itself.
    if (outcome.kind === 'timedOut' && timeoutMs < timeout) return;
    const verdict = judge(outcome, method, url, workerErrorBodyChars);
    if (verdict.kind === 'fail' && !verdict.answered) this.#pause(this.#deps.now(), startedAtMs);
    else this.#unansweredRounds = 0;
    this.#deps.onCallJudged?.(verdict.kind === 'ack' ? 'success' : verdict.answered ? 'failure' : 'unanswered');
    try {
      let out =
        verdict.kind === 'ack'
          ? await this.#deps.broker.ack(job.id, { result: verdict.result, token }, this.#ctx)
          : await this.#deps.broker.fail(job.id, { error: verdict.reason, token }, this.#ctx);
      if (verdict.kind === 'ack' && !out.ok && out.code === 'BAD_REQUEST') {
        // A result the broker cannot keep (too large as JSON): the attempt fails now, saying why,
        // rather than the job waiting out its lock and being called again.
        out = await this.#deps.broker.fail(job.id, { error: `${out.error} (answer of ${method} ${url})`, token }, this.#ctx);
      }
      if (!out.ok) {
        const late = out.code === 'LOCK_MISMATCH' || out.code === 'NOT_ACTIVE';
        this.#deps.logger(
          `tapeq: worker ${this.queue}: ${verdict.kind} of job ${job.id} ${late ? 'dropped (late answer)' : 'refused'}: ` +
            `${out.code} ${out.error}`,
        );
      }
    } catch (error) {
      this.#deps.logger(`tapeq: worker ${this.queue}: ${verdict.kind} of job ${job.id} threw: ${String(error)}`);
    }
  }

  /** Escalates only for calls/pulls that started after the current pause was set (one step per round). */
  #pause(nowMs: number, callStartedAtMs: number): void {
    if (callStartedAtMs < this.#pauseSetAtMs) return;
    this.#unansweredRounds += 1;
    const exponent = Math.min(this.#unansweredRounds - 1, 16);
    const pauseMs = Math.min(workerBackoffMsMax, workerBackoffMsFirst * 2 ** exponent);
    this.#pauseSetAtMs = nowMs;
    this.#pausedUntilMs = nowMs + pauseMs;
  }

  #armTimer(delayMs: number, nowMs: number): void {
    const atMs = nowMs + delayMs;
    if (this.#timer !== null && this.#timerAtMs <= atMs) return;
    this.#clearTimer();
    this.#timerAtMs = atMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#pump();
    }, delayMs);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #settle(): void {
    if (!this.#stopped || this.#inFlight > 0 || this.#pulling > 0) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }
}

/** The registration's limiter: none without one; else the removed predecessor's start history
 *  when there is one, under the new settings. */
function limiterOf(config: WorkerConfig, before: StartLimiter | null): StartLimiter | null {
  const settings = config.opts.limiter;
  if (settings === null) return null;
  if (before === null) return new StartLimiter(settings);
  before.reconfigure(settings);
  return before;
}

/** The job's own `timeout`, when shorter, ends the call too: the broker fails the attempt then, so
 *  a call left running could only have its answer dropped while the retry's call ran beside it. */
function callTimeoutMs(endpointTimeoutMs: number, job: JobView): number {
  return job.timeout === null ? endpointTimeoutMs : Math.min(endpointTimeoutMs, job.timeout);
}
