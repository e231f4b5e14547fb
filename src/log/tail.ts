// Following the log: an async iterator that yields every durable record from `from` on, in
// batches, and then waits for new ones. Bounded: it holds at most one batch (readBatchRecords) at
// a time; records still in the tail ring come from memory, older ones from disk, so a slow
// consumer costs disk reads, never memory. Batches, not records: a live follower wakes once per
// group commit, and one async step per record would cost more than handling it. close() (or
// return()) ends it, also while it waits. One consumer per iterator; next() calls must not
// overlap (the for-await contract).

import type { LogRecord } from '../record/types.js';
import { readBatchRecords } from './reader.js';

export interface TailSource {
  readonly durableOffset: number;
  readonly isOpen: boolean;
  /** Records [from, to), at most one batch, all durable. */
  readBatch(from: number, to: number): Promise<LogRecord[]>;
  /** Calls `wake` once, at the next commit or close; the function returned drops it unwoken (a
   *  tail closed while it waits, so that an idle log does not keep one per closed reader). */
  waitForDurable(wake: () => void): () => void;
}

export type TailIterator = AsyncIterableIterator<LogRecord[]> & { close(): void };

export function tailLog(source: TailSource, from: number): TailIterator {
  let closed = false;
  let wake: (() => void) | null = null;
  async function* follow(): AsyncGenerator<LogRecord[]> {
    let next = from;
    while (!closed) {
      const durable = source.durableOffset;
      if (next < durable) {
        const batch = await source.readBatch(next, Math.min(durable, next + readBatchRecords));
        const last = batch[batch.length - 1];
        if (last === undefined) throw new Error(`log tail: no records in [${next}, ${durable}) below the durable offset`);
        if (closed) return;
        yield batch;
        next = last.offset + 1;
        continue;
      }
      if (!source.isOpen) return;
      await new Promise<void>((resolve) => {
        const cancel = source.waitForDurable(resolve);
        wake = () => {
          cancel();
          resolve();
        };
      });
      wake = null;
    }
  }
  const it = follow();
  const iterator: TailIterator = {
    [Symbol.asyncIterator]() {
      return iterator;
    },
    next() {
      return it.next();
    },
    async return() {
      iterator.close();
      return it.return(undefined);
    },
    close() {
      closed = true;
      wake?.();
    },
  };
  return iterator;
}
