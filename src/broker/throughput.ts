// pushPerSec / pullPerSec: the pushes and pulls this broker applied in the last complete second of
// the monotonic clock.
//
// Not the log's time: a record's timestamp is the broker's time, which never goes backwards, so
// while the wall clock is behind the newest record (after a step back, or on a log written where
// the clock ran ahead) every record is stamped with that same instant. Counted by record time,
// those seconds held no records at all (the rates read 0 while jobs flowed) and, once the wall
// clock passed that instant, one second held all of them (a spike). The monotonic clock sees no
// steps, like the rate limits and the push workers' limiter.
//
// The count is of records applied by this process, so a replay at startup is not traffic: after a
// restart the rates start from 0. Two seconds of counts, O(1) per batch; synchronous.

export interface SecondCounts {
  pushed: number;
  pulled: number;
}

export class Throughput {
  /** The monotonic second that `current` counts. */
  private second: number;
  private current: SecondCounts = { pushed: 0, pulled: 0 };
  /** The second before `second` (zero when nothing was applied in it). */
  private previous: SecondCounts = { pushed: 0, pulled: 0 };

  constructor(private readonly monotonicMs: () => number) {
    this.second = this.secondNow();
  }

  /** Counts a batch of records just applied: `pushed` pushes and `pulled` pulls. */
  add(pushed: number, pulled: number): void {
    if (pushed === 0 && pulled === 0) return;
    this.roll();
    this.current.pushed += pushed;
    this.current.pulled += pulled;
  }

  /** The counts of the last complete second. */
  lastSecond(): SecondCounts {
    this.roll();
    return { ...this.previous };
  }

  private secondNow(): number {
    return Math.floor(this.monotonicMs() / 1000);
  }

  private roll(): void {
    const second = this.secondNow();
    if (second <= this.second) return;
    this.previous = second === this.second + 1 ? this.current : { pushed: 0, pulled: 0 };
    this.current = { pushed: 0, pulled: 0 };
    this.second = second;
  }
}
