// Push-worker dispatcher (SPEC section 6): one WorkerRunner per registered worker, woken by the
// records the broker applies. No polling: every pull is caused by a record, a freed slot or a
// runner's own limiter/backoff timer.
//
// Which records wake whom (credit = jobs that may have become pullable in that queue):
//
//   workerRegistered   create the runner, or reconfigure it (new pulls use the new config)  ∞
//   workerRemoved      stop the runner: running calls finish, nothing new starts
//   pushed (waiting)   +1          promoted  +jobIds     released / retried  +1
//   stalled (requeued) +1          failed (RETRY, due now)  +1               queueResumed  ∞
//   queueDrained  ∞ (a drain in steps held the queue's pulls: jobs pushed meanwhile, which its
//                   pulls got none of, are pullable now); the end of any such hold (a clean
//                   of every waiting job too) comes as onPullsResumed, also ∞
//   completed, removed (any queue) may release dependents anywhere: runners whose queue has
//                      waiting jobs get +1 (checked through `counts`, after the batch)
//
// A removed runner's late pulls (a pull in flight when the removal was applied) are released back
// to the queue with `releaseOwner` once the removed runner is idle (so its running calls keep
// their locks); a successor registered meanwhile is woken by the `released` records and pulls
// them under a lock of its own timeout. Each runner is its own lock owner, so this never touches
// the jobs a successor for the same queue is calling.
//
// Worker settings the broker applies, not the dispatcher: removeOnComplete / removeOnFail of the
// worker are the retention policy the broker uses when a job of that queue finishes without a
// policy of its own (Broker.workerPolicy → finishDrafts: `removed` records, oldest first, keeping
// at most `count` and none older than `age` s); maxStalledCount is read by the broker's stall
// timer (job setting, else the worker's, else maxStalledDefault). Both work for every job of the
// queue, however it was pulled, and survive restarts because the registration is a log record.
//
// The limiter counts a start when the call is handed to the socket pool; a call that first has to
// open its connection reaches the endpoint a little later than it was counted.
//
// close() stops every runner and waits for running calls to be acked or failed for up to
// workerShutdownGraceMs; calls still running then are abandoned and their jobs released (the
// endpoint's work is not counted as a failed attempt or a stall). Then it closes the HTTP pools.
// start() and close() are each called once.

import type { BrokerApi, WorkerConfig } from '../broker/types.js';
import { FailOutcome, JobState, StallOutcome, type LogRecord } from '../record/types.js';
import { HttpClient } from './http-client.js';
import {
  workerConnectionsPerOriginMax,
  workerConnectTimeoutMs,
  workerKeepAliveMs,
  workerShutdownGraceMs,
} from '../constants.js';
import type { StartLimiter } from './limiter.js';
import { type CallOutcomeName, WorkerRunner } from './worker-runner.js';

/** A registered worker's calls since the server started (GET /prometheus). */
export interface WorkerCallStatus {
  queue: string;
  /** Calls running now, a removed predecessor's included (they hold the endpoint's slots). */
  inFlight: number;
  /** Calls ended, by what the endpoint made of them (worker-runner.ts CallOutcomeName). */
  calls: Record<CallOutcomeName, number>;
}

/** What the dispatcher needs from the broker: its API plus the applied-records feed. */
export interface DispatcherBroker extends BrokerApi {
  onRecords(listener: (records: LogRecord[]) => void): unknown;
  /** The end of a hold on a queue's pulls (a drain or clean in steps), which no record marks. */
  onPullsResumed?(listener: (queue: string) => void): unknown;
}

export interface DispatcherOptions {
  broker: DispatcherBroker;
  logger?: (line: string) => void;
  /** Milliseconds on any clock that only moves forward: the call limiter and the pauses measure
   *  elapsed time (default: the monotonic clock; on the wall clock a step back held every start
   *  for the step's length). */
  clock?: () => number;
}

export class WorkerDispatcher {
  readonly #broker: DispatcherBroker;
  readonly #logger: (line: string) => void;
  readonly #now: () => number;
  readonly #client: HttpClient;
  readonly #runners = new Map<string, WorkerRunner>();
  /** Removed runners until their calls ended and their held jobs were released. */
  readonly #stopping = new Map<WorkerRunner, Promise<void>>();
  /** The start-rate limiter of each queue's last removed worker, for its next one. */
  readonly #removedLimiters = new Map<string, StartLimiter>();
  /** Each registered worker's call outcomes; counted from its registration, kept by a re-POST. */
  readonly #calls = new Map<string, Record<CallOutcomeName, number>>();
  #unsubscribe: (() => void) | null = null;
  #started = false;
  #closed = false;

  constructor(options: DispatcherOptions) {
    this.#broker = options.broker;
    this.#logger = options.logger ?? ((line: string) => console.error(line));
    this.#now = options.clock ?? (() => performance.now());
    this.#client = new HttpClient({
      connectionsPerOriginMax: workerConnectionsPerOriginMax,
      keepAliveMs: workerKeepAliveMs,
      connectTimeoutMs: workerConnectTimeoutMs,
    });
  }

  /** The HTTP client the runners share (the benchmark calls endpoints through the same pools). */
  get client(): HttpClient {
    return this.#client;
  }

  start(): void {
    if (this.#started) throw new Error('WorkerDispatcher.start called twice');
    this.#started = true;
    const off = this.#broker.onRecords((records) => this.#onRecords(records));
    const offResumed = this.#broker.onPullsResumed?.((queue) => {
      if (!this.#closed) this.#wake(queue, Infinity);
    });
    this.#unsubscribe = () => {
      if (typeof off === 'function') (off as () => void)();
      if (typeof offResumed === 'function') (offResumed as () => void)();
    };
    for (const config of this.#broker.workers()) this.#register(config);
  }

  async close(graceMs = workerShutdownGraceMs): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribe?.();
    for (const queue of [...this.#runners.keys()]) this.#remove(queue, 'server shutting down');
    const idle = (): Promise<void> => Promise.all([...this.#stopping.values()]).then(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const patience = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    if ((await Promise.race([idle(), patience])) === 'late') {
      const running = [...this.#stopping.keys()].reduce((sum, runner) => sum + runner.inFlight, 0);
      this.#logger(`tapeq: shutdown: ${running} push-worker call(s) still running after ${graceMs} ms; abandoned, their jobs released`);
      for (const runner of this.#stopping.keys()) runner.abandonCalls();
    }
    clearTimeout(timer);
    while (this.#stopping.size > 0) await idle();
    await this.#client.close();
  }

  /** Every registered worker's calls, by queue name. */
  status(): WorkerCallStatus[] {
    const out: WorkerCallStatus[] = [];
    for (const [queue, runner] of this.#runners) {
      const calls = this.#calls.get(queue) ?? { success: 0, failure: 0, unanswered: 0 };
      out.push({ queue, inFlight: runner.inFlight + this.#callsStopping(queue), calls: { ...calls } });
    }
    return out.sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
  }

  #onRecords(records: LogRecord[]): void {
    if (this.#closed) return;
    let settled = false;
    for (const record of records) {
      const body = record.body;
      switch (body.type) {
        case 'workerRegistered': {
          const config = this.#broker.workers().find((w) => w.queue === body.queue);
          if (config !== undefined) this.#register(config);
          break;
        }
        case 'workerRemoved':
          this.#remove(body.queue);
          break;
        case 'pushed':
          if (body.state === JobState.WAITING) this.#wake(body.job.queue, 1);
          break;
        case 'promoted':
          this.#wake(body.queue, body.jobIds.length);
          break;
        case 'released':
        case 'retried':
          this.#wake(body.queue, 1);
          break;
        case 'stalled':
          if (body.outcome === StallOutcome.REQUEUED) this.#wake(body.queue, 1);
          break;
        case 'failed':
          if (body.outcome === FailOutcome.RETRY && body.runAt <= record.timestamp) this.#wake(body.queue, 1);
          break;
        case 'queueResumed':
        case 'queueDrained':
          this.#wake(body.queue, Number.POSITIVE_INFINITY);
          break;
        case 'completed':
        case 'removed':
          settled = true;
          break;
        default:
          break;
      }
    }
    if (settled) this.#wakeWhereWaiting();
  }

  #wake(queue: string, credit: number): void {
    this.#runners.get(queue)?.wake(credit);
  }

  /** A settled dependency may have made jobs waiting in any queue. A busy runner gets the credit
   *  too: it spends it when a slot frees (often the very call whose ack settled the dependency),
   *  and no later record may ever wake it for that job. */
  #wakeWhereWaiting(): void {
    for (const runner of this.#runners.values()) {
      if (this.#broker.isPaused(runner.queue)) continue;
      if (this.#broker.counts(runner.queue).waiting > 0) runner.wake(1);
    }
  }

  #register(config: WorkerConfig): void {
    const existing = this.#runners.get(config.queue);
    if (existing !== undefined) {
      existing.reconfigure(config);
    } else {
      const queue = config.queue;
      const limiterBefore = this.#removedLimiters.get(queue) ?? null;
      this.#removedLimiters.delete(queue);
      const runner = new WorkerRunner(config, {
        broker: this.#broker,
        client: this.#client,
        logger: this.#logger,
        now: this.#now,
        // Looked up when asked, not held: a runner keeps no reference to the ones it followed.
        callsBefore: () => this.#callsStopping(queue),
        limiterBefore,
        // A removed runner's call freed a slot its successor may be waiting for (a runner's own
        // calls pump it already).
        onCallEnded: () => {
          const current = this.#runners.get(queue);
          if (current !== runner) current?.nudge();
        },
        // A removed worker's late calls count for its successor, if one is registered by then.
        onCallJudged: (outcome) => {
          const calls = this.#calls.get(queue);
          if (calls !== undefined) calls[outcome] += 1;
        },
      });
      this.#calls.set(queue, { success: 0, failure: 0, unanswered: 0 });
      this.#runners.set(config.queue, runner);
      runner.wake(Number.POSITIVE_INFINITY);
    }
    this.#prunePools();
  }

  /** Calls the removed runners of `queue` still run (their pulls on the way are released, not
   *  called: they hold no slot of the endpoint). */
  #callsStopping(queue: string): number {
    let calls = 0;
    for (const runner of this.#stopping.keys()) if (runner.queue === queue) calls += runner.inFlight;
    return calls;
  }

  #remove(queue: string, reason = 'worker removed'): void {
    const runner = this.#runners.get(queue);
    if (runner === undefined) return;
    this.#runners.delete(queue);
    this.#calls.delete(queue);
    // Its start history waits for the queue's next worker (a DELETE then a POST): one limiter per
    // queue that had a worker, the queues being bounded (queuesMax).
    if (runner.startLimiter !== null) this.#removedLimiters.set(queue, runner.startLimiter);
    const stopped = runner.stop().then(() => this.#releaseHeld(runner, reason));
    this.#stopping.set(runner, stopped);
    void stopped.finally(() => {
      this.#stopping.delete(runner);
      this.#prunePools();
    });
  }

  /** What the idle, removed runner still holds was pulled after its removal and never called, or
   *  its call was abandoned by a shutdown. */
  async #releaseHeld(runner: WorkerRunner, reason: string): Promise<void> {
    await this.#broker.releaseOwner(runner.owner, reason).catch((error: unknown) => {
      this.#logger(`tapeq: worker ${runner.queue}: releasing held jobs failed: ${String(error)}`);
    });
  }

  #prunePools(): void {
    const origins = new Set<string>();
    for (const runner of this.#runners.values()) origins.add(new URL(runner.config.endpoint.url).origin);
    if (!this.#closed) this.#client.prune(origins);
  }
}
