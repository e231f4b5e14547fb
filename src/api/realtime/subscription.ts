// One subscriber's event stream, shared by SSE and WebSocket: a log tail turned into seed-004
// events, filtered by queue, handed to a transport-specific sink with a bounded backlog.
//
// Invariants:
// - One `log.tail()` iterator per subscriber. It reads history from disk and then follows the
//   durable end, so a resumed client gets every event after its offset exactly once, in offset
//   order, with no gap between history and live. There is no per-subscriber queue: the log is the
//   buffer, and the only bytes held for a client are its socket's write buffer.
// - Backlog: after delivering a record's events, if the client's buffered bytes exceed
//   `backlogBytesMax`, no further record is pulled from the tail until the backlog drains to half
//   the limit. A client that does not drain within `stallMs` is cut off (`end: 'slow'`); it can
//   resume from the offset of the last event it received. So a slow-but-reading client catching up
//   on a long history is paced by the log, and one that stopped reading costs at most
//   `backlogBytesMax` plus one record's events, for at most `stallMs`.
// - `run()` is called once; `close()` may be called at any time, any number of times, and makes
//   `run()` resolve with `end: 'closed'`.

import type { BrokerEvent } from '../../broker/events.js';
import { eventsOf } from '../../broker/events.js';
import { queueOf, type LogRecord } from '../../record/types.js';
import type { RealtimeLimits } from './limits.js';

const NO_EVENTS: BrokerEvent[] = [];

/** Every event of a record belongs to the record's queue. Live subscribers read the same record
 *  objects from the log's tail ring, so the events (and the JSON.parse of a pushed job's data)
 *  are computed once per record, not once per subscriber; the cache lets go of a record when the
 *  ring does. Events are never mutated by subscribers. */
const eventsByRecord = new WeakMap<LogRecord, BrokerEvent[]>();
function eventsOfShared(record: LogRecord): BrokerEvent[] {
  let events = eventsByRecord.get(record);
  if (events === undefined) {
    events = eventsOf(record);
    eventsByRecord.set(record, events);
  }
  return events;
}

/** What the real-time layer needs from the log (src/log/log.ts `Log` satisfies it). */
export interface RealtimeLog {
  /** Durable records with offset >= `from`, oldest first and in batches, waiting for new ones
   *  at the end. */
  tail(from: number): AsyncIterableIterator<LogRecord[]> & { close(): void };
  /** Offset the next durable record will have (every record below it is durable). */
  readonly durableOffset: number;
  /** Oldest offset retention still holds. */
  readonly firstOffset: number;
}

/** The transport side of a subscription. */
export interface EventSink {
  /** Deliver the events of one record (never empty), in order, without waiting. */
  deliver(events: BrokerEvent[]): void;
  /** Bytes written to the client and not yet handed to the kernel. */
  backlogBytes(): number;
}

export type SubscriptionEnd = { end: 'closed' } | { end: 'slow' } | { end: 'error'; error: Error };

/** Polling period while waiting for a client over its backlog limit to drain. */
export const drainPollMs = 10;

export class Subscription {
  readonly #log: RealtimeLog;
  readonly #iterator: AsyncIterableIterator<LogRecord[]> & { close(): void };
  readonly #queue: string | null;
  readonly #sink: EventSink;
  readonly #limits: RealtimeLimits;
  /** The offset the stream starts after: every event it delivers has a greater one. A client
   *  that has received no event yet resumes from here without missing any. */
  readonly startAfter: number;
  /** The offset of the last record read (sent or filtered out): the stream is complete up to it. */
  #readTo: number;
  #closed = false;
  #started = false;

  /**
   * `after`: deliver events of records with offset > after (a resume), or null for live only
   * (records that become durable from now on). The start point is fixed here, at construction, so a
   * caller that constructs before telling the client it is connected misses nothing after that. A
   * resume from before the oldest retained record starts at that record: the client gets
   * everything retention still holds.
   */
  constructor(
    log: RealtimeLog,
    opts: { after: number | null; queue: string | null; sink: EventSink; limits: RealtimeLimits },
  ) {
    const from = opts.after === null ? log.durableOffset : Math.max(opts.after + 1, log.firstOffset);
    this.#log = log;
    this.#iterator = log.tail(from);
    this.startAfter = from - 1;
    this.#readTo = from - 1;
    this.#queue = opts.queue;
    this.#sink = opts.sink;
    this.#limits = opts.limits;
  }

  async run(): Promise<SubscriptionEnd> {
    if (this.#started) throw new Error('Subscription.run() called twice');
    this.#started = true;
    try {
      while (!this.#closed) {
        const next = await this.#iterator.next();
        if (next.done === true) break;
        for (const record of next.value) {
          if (this.#closed) break;
          this.#readTo = record.offset;
          const events = this.#select(record);
          if (events.length === 0) continue;
          this.#sink.deliver(events);
          if (this.#sink.backlogBytes() > this.#limits.backlogBytesMax && !(await this.#drained())) {
            return this.#closed ? { end: 'closed' } : { end: 'slow' };
          }
        }
      }
      return { end: 'closed' };
    } catch (error) {
      if (this.#closed) return { end: 'closed' };
      return { end: 'error', error: this.#overtaken() ?? (error instanceof Error ? error : new Error(String(error))) };
    } finally {
      this.close();
    }
  }

  /** Retention removed records this stream had not read yet (it caught up from disk slower than
   *  retention moved): said in the client's terms, with where a reconnect goes on from; null for
   *  any other failure. */
  #overtaken(): Error | null {
    const first = this.#log.firstOffset;
    if (first <= this.#readTo + 1) return null;
    return new Error(
      `Events after offset ${this.#readTo} were removed by retention before this stream sent them; ` +
        `the oldest kept is offset ${first}: reconnect to go on from there`,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#iterator.close();
  }

  #select(record: LogRecord): BrokerEvent[] {
    if (this.#queue !== null && queueOf(record.body) !== this.#queue) return NO_EVENTS;
    return eventsOfShared(record);
  }

  /** Wait until the backlog is at most half the limit; false on timeout or close. */
  async #drained(): Promise<boolean> {
    const deadline = performance.now() + this.#limits.stallMs;
    const target = this.#limits.backlogBytesMax / 2;
    while (this.#sink.backlogBytes() > target) {
      if (this.#closed || performance.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, drainPollMs));
    }
    return !this.#closed;
  }
}
