// GET …/jobs/list pages: the sorted statuses (active, delayed, waiting-children) select the page
// with a bounded heap instead of sorting every job, with the same result as a full sort.

import t from 'tap';
import { byDueOrder, firstInOrder, listJobs } from '../../src/broker/queries.js';
import type { ListStatus } from '../../src/broker/types.js';
import { JobState } from '../../src/record/types.js';
import { apply, createState, type Job } from '../../src/state/index.js';
import { smallPushDraft } from '../fixtures/records.js';
import { mulberry32 } from '../fixtures/random.js';

function queueOf(delayed: number, waiting: number, seed: number) {
  const random = mulberry32(seed);
  const state = createState();
  for (let i = 0; i < delayed + waiting; i++) {
    const draft = smallPushDraft(i);
    if (draft.body.type !== 'pushed') throw new Error('not a push');
    if (i < delayed) {
      draft.body.state = JobState.DELAYED;
      // Few distinct due times: ties are broken by seq.
      draft.body.job.runAt = 2e12 + Math.floor(random() * 50);
    }
    apply(state, { ...draft, offset: i });
  }
  const queue = state.queues.get('bench');
  if (queue === undefined) throw new Error('no queue');
  return queue;
}

t.test('a-list-page-selected-by-heap-is-the-page-of-a-full-sort', async (t) => {
  const queue = queueOf(3_000, 40, 7);
  const model = [...listJobs(queue, ['waiting'], 0, 1_000), ...byDueOrder(queue.delayed)].map((j) => j.id);
  const statuses: ListStatus[] = ['waiting', 'active', 'completed', 'failed', 'delayed'];
  for (const [start, length] of [[0, 10], [0, 100], [35, 10], [40, 1], [41, 100], [2_990, 100], [3_039, 5], [3_040, 10], [5_000, 10]] as const) {
    const page = listJobs(queue, statuses, start, length).map((j) => j.id);
    t.same(page, model.slice(start, start + length), `start ${start}, length ${length}`);
  }
  const delayed = [...queue.delayed];
  const order = (a: Job, b: Job): number => a.runAt - b.runAt || a.seq - b.seq;
  for (const count of [0, 1, 2, 7, 100, 2_999, 3_000, 4_000]) {
    t.same(firstInOrder(queue.delayed, count, order), [...delayed].sort(order).slice(0, count), `first ${count}`);
  }
});

t.test('a-first-page-of-many-delayed-jobs-compares-each-job-about-once-where-a-sort-compares-it-log-n-times', async (t) => {
  // Each list request used to sort every delayed job: ~580 ms over 1,000,000. Counted in
  // comparisons, not timed: the heap of a 10-job page looks at most jobs once (those later than its
  // current tenth), where a sort compares each about log2(n) times.
  const queue = queueOf(300_000, 0, 11);
  const order = (a: Job, b: Job): number => a.runAt - b.runAt || a.seq - b.seq;
  let compared = 0;
  const counting = (a: Job, b: Job): number => {
    compared++;
    return order(a, b);
  };
  const page = firstInOrder(queue.delayed, 10, counting);
  const pageComparisons = compared;
  compared = 0;
  const sorted = [...queue.delayed].sort(counting);
  const sortComparisons = compared;
  t.same(page, sorted.slice(0, 10));
  const listed = listJobs(queue, ['waiting', 'active', 'completed', 'failed', 'delayed'], 0, 10).map((j) => j.id);
  t.same(listed, byDueOrder(queue.delayed).slice(0, 10).map((j) => j.id), 'the list route takes the page a full sort gives');
  t.ok(pageComparisons < 2 * queue.delayed.size, `page: ${pageComparisons} comparisons for ${queue.delayed.size} jobs`);
  t.ok(pageComparisons * 8 < sortComparisons, `page ${pageComparisons} comparisons, full sort ${sortComparisons}`);
});
