// Shared by the tests of the queue-wide actions that run in steps (broker.ts: stepped).

import { actionStepJobsMax } from '../../src/constants.js';
import type { Broker } from '../../src/broker/broker.js';

export const ctx = { actor: null };
/** More jobs than two steps take: an action over them runs in three. */
export const many = actionStepJobsMax * 2 + 500;

/** Pushes `n` jobs (data 0…n-1, plus `input`'s fields) in bulks of 1,000; their ids in order. */
export async function pushMany(b: Broker, queue: string, n: number, input: object = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 1_000) {
    const r = await b.pushBulk(queue, Array.from({ length: Math.min(1_000, n - i) }, (_, j) => ({ data: i + j, ...input })), ctx);
    if (!r.ok) throw new Error(r.error);
    ids.push(...r.ids);
  }
  return ids;
}
