// The waiting list against an array model: pull order (priority, then FIFO with LIFO fronts)
// through random inserts and removals, and the invariant that makes a pull O(1) however deep the
// queue: the head entry of every bucket is live, so a pull never walks past jobs pulled before.

import t, { type Test } from 'tap';
import { JobState } from '../../src/record/types.js';
import { Job, NO_IDS } from '../../src/state/state.js';
import { PayloadArena } from '../../src/state/payloads.js';
import { createWaitList, headEntry, waitInsert, waitIterate, waitOldest, waitRemove, type WaitList } from '../../src/state/waitlist.js';
import { mulberry32 } from '../fixtures/random.js';

const payloads = new PayloadArena();

function job(n: number, priority: number): Job {
  return new Job(payloads, `j${n}`, 'q', 'default', '{}', n, 0, priority, 0, JobState.WAITING, NO_IDS, null);
}

/** The job a pull takes: the first in pull order. */
function head(list: WaitList): Job | undefined {
  const first = waitIterate(list).next();
  return first.done === true ? undefined : first.value;
}

/** Every bucket's first entry in pull order is a live one. */
function headsLive(list: WaitList): boolean {
  for (const bucket of list.buckets.values()) {
    const first = headEntry(list, bucket);
    if (first === undefined || first.job === null) return false;
  }
  return true;
}

/** Random inserts (front or back) and removals (mostly the head) against a model, checking the
 *  pull order, the size and that every bucket's head is live. */
function checkAgainstModel(t: Test, seeds: number[], ops: number, priorities: number, insertShare: number): void {
  const deadHeads: string[] = [];
  for (const seed of seeds) {
    const random = mulberry32(seed);
    const list = createWaitList();
    // The model: per priority (highest first) an array in pull order.
    const model = new Map<number, Job[]>();
    const live: Job[] = [];
    let n = 0;
    for (let i = 0; i < ops; i++) {
      if (live.length === 0 || random() < insertShare) {
        const priority = Math.floor(random() * priorities);
        const j = job(n++, priority);
        const atFront = random() < 0.2;
        waitInsert(list, j, atFront);
        const row = model.get(priority) ?? [];
        if (atFront) row.unshift(j);
        else row.push(j);
        model.set(priority, row);
        live.push(j);
      } else {
        // Mostly the head (a pull), sometimes anywhere (a cancel, an expiry).
        const first = head(list) as Job;
        const j = random() < 0.8 ? first : (live[Math.floor(random() * live.length)] as Job);
        waitRemove(list, j);
        const row = model.get(j.priority) as Job[];
        row.splice(row.indexOf(j), 1);
        if (row.length === 0) model.delete(j.priority);
        live.splice(live.indexOf(j), 1);
      }
      if (!headsLive(list)) deadHeads.push(`seed ${seed} op ${i}`);
      if (i % 1_000 === 0 || i === ops - 1) {
        const expected = [...model.keys()].sort((a, b) => b - a).flatMap((p) => model.get(p) as Job[]);
        t.same([...waitIterate(list)].map((j) => j.id), expected.map((j) => j.id), `seed ${seed} op ${i}: pull order`);
        t.equal(list.size, live.length, `seed ${seed} op ${i}: size`);
      }
    }
  }
  t.same(deadHeads.slice(0, 5), [], `every bucket's head is live after every operation (${deadHeads.length} failures)`);
}

t.test('pull order and live heads through 20,000 random inserts and removals', async (t) => {
  checkAgainstModel(t, [7, 8, 9], 20_000, 3, 0.5);
});

t.test('pull order and live heads across 500 priorities', async (t) => {
  checkAgainstModel(t, [12], 20_000, 500, 0.6);
});

t.test('pull order and live heads in one deep bucket, across many chunks of its back queue', async (t) => {
  checkAgainstModel(t, [10, 11], 40_000, 1, 0.7);
});

t.test('pulling a deep queue front to back leaves no dead entry to walk past', async (t) => {
  const list = createWaitList();
  const jobs = Array.from({ length: 10_000 }, (_, i) => job(i, 0));
  for (const j of jobs) waitInsert(list, j, false);
  let outOfOrder = 0;
  for (let i = 0; i < 9_000; i++) {
    const first = head(list);
    if (first !== jobs[i]) outOfOrder++;
    waitRemove(list, first as Job);
  }
  t.equal(outOfOrder, 0, 'pulled in FIFO order');
  const bucket = list.buckets.get(0);
  t.ok(bucket !== undefined);
  t.equal(bucket && headEntry(list, bucket)?.job, jobs[9_000], 'the bucket starts at the next job to pull');
  // Entries 0–8191 filled the first two chunks of 4,096: the head has left them, so they are gone.
  t.equal(bucket?.back.jobs.length, 1, 'chunks the head has left are dropped');
  t.equal(bucket?.back.jobs[0]?.filter((j) => j !== undefined).length, 1_000, 'consumed entries hold no job');
  t.equal(waitIterate(list).next().value, jobs[9_000]);
});

t.test('waitOldest takes the first pushed that it accepts, across priorities, fronts and removals', async (t) => {
  const random = mulberry32(12);
  const list = createWaitList();
  const live: Job[] = [];
  for (let n = 0; n < 3_000; n++) {
    // Seqs out of insertion order too (a requeued job keeps its seq, a priority change re-inserts).
    const j = job(random() < 0.1 ? 100_000 - n : n, Math.floor(random() * 4));
    waitInsert(list, j, random() < 0.2);
    live.push(j);
    if (random() < 0.3) {
      const gone = live.splice(Math.floor(random() * live.length), 1)[0] as Job;
      waitRemove(list, gone);
    }
  }
  const takes = (_createdAt: number, priority: number): boolean => priority !== 2;
  const model = live.filter((j) => takes(j.createdAt, j.priority)).sort((a, b) => a.seq - b.seq);
  for (const count of [0, 1, 7, 500, Infinity]) {
    t.same(waitOldest(list, count, takes).map((j) => j.id), model.slice(0, count).map((j) => j.id), `count ${count}`);
  }
});

t.test('a-waiting-job-of-a-priority-of-its-own-costs-a-few-slots-not-a-4096-slot-chunk', async (t) => {
  // Each bucket's first back chunk was two preallocated 4,096-slot arrays (64 KB): 60,000 jobs of
  // distinct priorities filled a 4 GB heap.
  const list = createWaitList();
  const count = 20_000;
  const jobs = Array.from({ length: count }, (_, i) => job(i, i % 2 === 0 ? i : -i));
  const before = process.memoryUsage().heapUsed;
  for (const j of jobs) waitInsert(list, j, false);
  const grownMb = (process.memoryUsage().heapUsed - before) / 2 ** 20;
  t.equal(list.buckets.size, count, 'one bucket per job');
  for (const bucket of list.buckets.values()) {
    if (bucket.back.jobs[0]?.length !== 1 || bucket.back.stamps[0]?.length !== 1) {
      t.fail(`bucket ${bucket.priority} holds ${bucket.back.jobs[0]?.length} slots for one job`);
      break;
    }
  }
  t.ok(grownMb < 100, `${count} buckets took ${grownMb.toFixed(1)} MB (1,250 MB at 64 KB each)`);
  const order = [...waitIterate(list)].map((j) => j.priority);
  t.same(order, [...order].sort((a, b) => b - a), 'still pulled highest priority first');
  for (const j of jobs) waitRemove(list, j);
  t.equal(list.priorities.size, 0, 'every priority gone with its last job');
});
