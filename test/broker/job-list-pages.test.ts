// Pages of the job list and of the DLQ are slices of the whole ordered list, whatever the page:
// the list and DLQ reads no longer sort or copy every job of a status (queries.ts: waitPage,
// firstInOrder, newestPage, oldestPage), and this pins that they answer as the full sort did —
// across priorities, LIFO fronts, dead entries left by removals, equal due times, and pages that
// start inside, at the edge of, or past a status. `prioritized` (BullMQ's status, the waiting
// jobs with a priority) is paged the same way, and listed once beside the status holding them.

import t from 'tap';
import { sortBySeq, waitIterate, type Job, type QueueState } from '../../src/state/index.js';
import type { ListStatus } from '../../src/broker/types.js';
import { manualClock, startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };
const statuses: ListStatus[] = ['waiting', 'paused', 'active', 'delayed', 'completed', 'failed', 'waiting-children', 'prioritized'];

/** The whole list of `status` as the queries used to build it: every job, sorted, then sliced. */
function fullList(q: QueueState, status: ListStatus): Job[] {
  switch (status) {
    case 'waiting':
      return q.paused ? [] : [...waitIterate(q.waiting)];
    case 'paused':
      return q.paused ? [...waitIterate(q.waiting)] : [];
    case 'active':
      return sortBySeq(q.active);
    case 'completed':
      return [...q.completed].reverse();
    case 'failed':
      return [...q.failed].reverse();
    case 'delayed':
      return [...q.delayed].sort((a, b) => a.runAt - b.runAt || a.seq - b.seq);
    case 'waiting-children':
      return sortBySeq(q.children);
    case 'prioritized':
      return [...waitIterate(q.waiting)].filter((j) => j.priority !== 0);
    default:
      throw new Error(String(status));
  }
}

t.test('every-page-of-the-job-list-is-a-slice-of-the-fully-sorted-list', async (t) => {
  const clock = manualClock();
  const f = await startBroker({ clock: clock.now });
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const ids = async (inputs: unknown[]): Promise<string[]> => {
    const r = await b.pushBulk('q', inputs, ctx);
    if (!r.ok) throw new Error(r.error);
    return r.ids;
  };
  // Finished first: pulled from the head while nothing else waits.
  for (const id of await ids(Array.from({ length: 9 }, (_, i) => ({ data: i })))) {
    await b.pull('q', { timeoutMs: 0 }, ctx);
    await b.ack(id, {}, ctx);
    clock.advance(1);
  }
  for (const id of await ids(Array.from({ length: 7 }, (_, i) => ({ data: i, maxAttempts: 1 })))) {
    await b.pull('q', { timeoutMs: 0 }, ctx);
    await b.fail(id, { error: 'x' }, ctx);
    clock.advance(1);
  }
  // Waiting over three priorities, some LIFO (the bucket's front), then holes in front and back.
  const waiting = await ids(Array.from({ length: 60 }, (_, i) => ({ data: i, priority: [0, 5, 9][i % 3], lifo: i % 7 === 0 })));
  for (const id of [waiting[3], waiting[7], waiting[14], waiting[30], waiting[31], waiting[59]]) await b.cancel(id as string, ctx);
  // A bucket with no hole (a deep page jumps over it) and one whose holes are all in front.
  await ids(Array.from({ length: 12 }, (_, i) => ({ data: i, priority: 2 })));
  const fronted = await ids(Array.from({ length: 12 }, (_, i) => ({ data: i, priority: 1, lifo: i < 4 })));
  await b.cancel(fronted[1] as string, ctx);
  // Active: the first three in pull order.
  for (let i = 0; i < 3; i++) await b.pull('q', { timeoutMs: 0 }, ctx);
  // Delayed, with equal due times (ties go by push order), pushed out of due order.
  await ids(Array.from({ length: 25 }, (_, i) => ({ data: i, delay: 1_000 * ((i * 7) % 5) + 1_000 })));
  // Waiting for a job that never finishes.
  await ids(Array.from({ length: 4 }, (_, i) => ({ data: i, dependsOn: [waiting[10] as string] })));

  const q = b.state.queues.get('q') as QueueState;
  const check = (label: string): void => {
    const counts = { ...b.counts('q'), prioritized: [...waitIterate(q.waiting)].filter((j) => j.priority !== 0).length };
    const holder = q.paused ? 'paused' : 'waiting';
    const sets = [
      ...statuses.map((s) => [s]),
      ['waiting', 'active', 'completed', 'failed', 'delayed'],
      ['delayed', 'paused', 'failed', 'waiting-children', 'waiting'],
      ['completed', 'prioritized', 'delayed'],
      ['prioritized', 'completed', 'waiting', 'paused'],
    ] as ListStatus[][];
    for (const set of sets) {
      // Prioritized jobs are listed once: under the status holding every waiting job when it is asked for too.
      const walked = set.includes(holder) ? set.filter((s) => s !== 'prioritized') : set;
      const all = walked.flatMap((s) => fullList(q, s).map((j) => j.id));
      t.equal(all.length, new Set(all).size, `${label} ${set.join(',')}: no job twice`);
      t.equal(all.length, walked.reduce((n, s) => n + counts[s], 0), `${label} ${set.join(',')}: the lists hold what the counts say`);
      for (const start of [0, 1, 2, 5, 13, 20, 24, 25, 26, 40, 47, 52, 60, 70, all.length - 3, all.length - 1, all.length, all.length + 5]) {
        for (const length of [1, 3, 10, 100]) {
          const got = b.listJobs('q', set, start, length).jobs.map((j) => j.id);
          const want = all.slice(Math.max(0, start), Math.max(0, start) + length);
          if (JSON.stringify(got) !== JSON.stringify(want)) t.same(got, want, `${label} ${set.join(',')} start ${start} length ${length}`);
        }
      }
    }
    const dlq = [...q.failed].map((j) => j.id);
    for (const start of [0, 1, 3, dlq.length - 1, dlq.length, dlq.length + 2]) {
      for (const length of [0, 1, 2, 10]) {
        t.same(b.dlq('q', start, length), { jobs: dlq.slice(start, start + length).map((id) => b.getJob(id)), count: dlq.length }, `${label} dlq ${start}/${length}`);
      }
    }
  };
  t.ok(q.waiting.size > 40 && q.delayed.size === 25 && q.active.size === 3 && q.children.size === 4);
  const prioritized = [...waitIterate(q.waiting)].filter((j) => j.priority !== 0).length;
  t.ok(prioritized > 20 && prioritized < q.waiting.size, 'some waiting jobs have a priority, some not');
  check('running');
  await b.pause('q', ctx);
  check('paused');
});
