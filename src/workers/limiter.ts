// Start-rate limiter of one push worker (BullMQ's `limiter: {max, duration}`): at most `max` calls
// start in any window of `duration` ms. Jobs held back by it wait in their queue; they never fail.
//
// A slot is reserved before the pull (so a job is never locked only to wait here) and either turns
// into a start when the pull returns a job, or is given back when it returns none. Invariant, for
// every instant t: starts in (t - duration, t] + reserved <= max. A reservation converts to a start
// at a later time, so no window of `duration` ms ever sees more than `max` starts.
//
// Start times live in an array read from `#first` on: a start that leaves the window only moves
// that index, and the array is compacted once the dead front is as long as the live part, so a
// start costs O(1) amortized however many (up to `max`) the window holds.
//
// Plain synchronous bookkeeping: no timers, no clock of its own (callers pass `nowMs`).

export interface LimiterConfig {
  max: number;
  duration: number;
}

export class StartLimiter {
  #config: LimiterConfig;
  /** Start times, oldest first, live from `#first` on; at most `max` are live (older ones can no
   *  longer matter). */
  readonly #starts: number[] = [];
  #first = 0;
  #reserved = 0;

  constructor(config: LimiterConfig) {
    this.#config = config;
  }

  /** A replaced worker keeps its start history, so a re-POST cannot reset the window. */
  reconfigure(config: LimiterConfig): void {
    this.#config = config;
  }

  /** 0 when a slot was reserved, else the ms until one may free up (callers retry then). */
  tryReserve(nowMs: number): number {
    this.#forget(nowMs);
    if (this.#starts.length - this.#first + this.#reserved < this.#config.max) {
      this.#reserved += 1;
      return 0;
    }
    const oldest = this.#starts[this.#first];
    // Every slot is reserved by a pull still in flight: its completion wakes the caller again.
    if (oldest === undefined) return Number.POSITIVE_INFINITY;
    return Math.max(1, oldest + this.#config.duration - nowMs);
  }

  /** The reserved slot became a call that starts now. */
  started(nowMs: number): void {
    this.#release();
    this.#starts.push(nowMs);
    if (this.#starts.length - this.#first > this.#config.max) this.#drop(1);
  }

  /** The reserved slot was not used (the pull returned no job or failed). */
  unused(): void {
    this.#release();
  }

  #release(): void {
    if (this.#reserved <= 0) throw new Error('limiter: release without a reservation');
    this.#reserved -= 1;
  }

  #forget(nowMs: number): void {
    let count = 0;
    for (let i = this.#first; i < this.#starts.length && (this.#starts[i] as number) + this.#config.duration <= nowMs; i++) count++;
    if (count > 0) this.#drop(count);
  }

  /** Drops the `count` oldest live starts. */
  #drop(count: number): void {
    this.#first += count;
    if (this.#first * 2 >= this.#starts.length) {
      this.#starts.splice(0, this.#first);
      this.#first = 0;
    }
  }
}
