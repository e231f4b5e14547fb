// Long-poll pulls waiting for a job: an in-memory FIFO per queue, bounded in total. A waiter is
// woken by the broker when its queue may have gained a waiting job; it leaves on its own timeout,
// on its AbortSignal, or when the broker closes. No polling loop: one setTimeout per waiter.
// Single-threaded; the methods never overlap.

import type { Ctx, PullOutcome } from './types.js';

export interface Waiter {
  queue: string;
  lockMs: number | null;
  owner: string;
  ctx: Ctx;
  /** Settles the waiting pull: with a pull's outcome, or null for "no job". */
  done: (result: Promise<PullOutcome> | null) => void;
}

export class Waiters {
  private readonly byQueue = new Map<string, Waiter[]>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  has(queue: string): boolean {
    return this.byQueue.has(queue);
  }

  queues(): string[] {
    return [...this.byQueue.keys()];
  }

  add(waiter: Waiter): void {
    const list = this.byQueue.get(waiter.queue);
    if (list === undefined) this.byQueue.set(waiter.queue, [waiter]);
    else list.push(waiter);
    this.count++;
  }

  peek(queue: string): Waiter | undefined {
    return this.byQueue.get(queue)?.[0];
  }

  /** The oldest waiter of `queue`, removed. */
  shift(queue: string): Waiter | undefined {
    const list = this.byQueue.get(queue);
    const waiter = list?.shift();
    if (list !== undefined && list.length === 0) this.byQueue.delete(queue);
    if (waiter !== undefined) this.count--;
    return waiter;
  }

  remove(waiter: Waiter): boolean {
    const list = this.byQueue.get(waiter.queue);
    const i = list === undefined ? -1 : list.indexOf(waiter);
    if (list === undefined || i < 0) return false;
    list.splice(i, 1);
    if (list.length === 0) this.byQueue.delete(waiter.queue);
    this.count--;
    return true;
  }

  /** Removes every waiter and returns them (the broker settles them with no job). */
  takeAll(): Waiter[] {
    const all = [...this.byQueue.values()].flat();
    this.byQueue.clear();
    this.count = 0;
    return all;
  }
}
