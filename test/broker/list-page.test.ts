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

t.test('a-first-page-of-many-delayed-jobs-costs-far-less-than-sorting-them', async (t) => {
  // Each list request sorted every delayed job: ~580 ms over 1,000,000.
  const queue = queueOf(300_000, 0, 11);
  let started = performance.now();
  const sorted = byDueOrder(queue.delayed);
  const sortMs = performance.now() - started;
  started = performance.now();
  const page = listJobs(queue, ['waiting', 'active', 'completed', 'failed', 'delayed'], 0, 10);
  const pageMs = performance.now() - started;
  t.same(page.map((j) => j.id), sorted.slice(0, 10).map((j) => j.id));
  t.ok(pageMs < sortMs / 3, `page ${pageMs.toFixed(0)} ms, full sort ${sortMs.toFixed(0)} ms`);
});
