import t from 'tap';
import { JobState } from '../../src/record/types.js';
import { ColdJobs } from '../../src/state/cold-jobs.js';
import { Job, NO_IDS } from '../../src/state/job.js';
import { JobTable } from '../../src/state/job-table.js';
import { PayloadArena } from '../../src/state/payloads.js';
import { createWaitList, waitEntries, waitInsertCold, waitIterate, waitRemove } from '../../src/state/waitlist.js';
import { apply, createState } from '../../src/state/index.js';
import { smallPushDraft } from '../fixtures/records.js';

function coldStore(ids: string[], priority = (i: number) => i % 3): { arena: PayloadArena; cold: ColdJobs; table: JobTable; rows: number[] } {
  const arena = new PayloadArena();
  const cold = new ColdJobs(arena);
  const table = new JobTable(cold);
  const rows = ids.map((id, i) => {
    const idAt = arena.store(id);
    const dataAt = arena.store(`{"n":${i}}`);
    return cold.add(idAt, dataAt, 'q', 'default', null, 100 + i, 1_700_000_000_000 + i, priority(i), 1_700_000_000_000 + i);
  });
  return { arena, cold, table, rows };
}

t.test('a-cold-row-is-found-by-id-and-becomes-the-job-it-was-written-from', async (t) => {
  const { arena, cold, table, rows } = coldStore(['a', 'job-2', 'c']);
  for (const c of rows) t.ok(table.addCold(c), `row ${c} added`);
  t.equal(table.size, 3);
  t.equal(cold.rows, 3, 'nothing made yet');
  t.ok(table.has('job-2'));
  t.notOk(table.has('job-'), 'a prefix is not the id');
  t.notOk(table.has('job-22'), 'nor a longer id');
  t.equal(cold.rows, 3, 'has() makes no job');
  const job = table.get('job-2');
  t.ok(job !== undefined);
  t.equal(job?.id, 'job-2');
  t.equal(job?.data, '{"n":1}');
  t.equal(job?.seq, 101);
  t.equal(job?.createdAt, 1_700_000_000_001);
  t.equal(job?.priority, 1);
  t.equal(job?.state, JobState.WAITING);
  t.equal(job?.queue, 'q');
  t.equal(job?.options, null);
  t.equal(cold.rows, 2, 'get() made one job');
  t.equal(table.get('job-2'), job, 'the same object from then on');
  t.same([...table.made()].map((j) => j.id), ['job-2'], 'made() yields only jobs that exist');
  t.same([...table.values()].map((j) => j.id), ['a', 'job-2', 'c'], 'values() makes the rest, in insertion order');
  t.equal(cold.rows, 0);
  const live = arena.liveBytes;
  t.ok(table.delete('a'));
  t.equal(table.get('a'), undefined);
  t.equal(arena.liveBytes, live, 'a made job keeps its data in the arena until it detaches it');
});

t.test('a-duplicate-id-among-cold-rows-or-against-a-job-is-refused', async (t) => {
  const { table, rows } = coldStore(['x', 'y', 'x']);
  t.ok(table.addCold(rows[0] as number));
  t.ok(table.addCold(rows[1] as number));
  t.notOk(table.addCold(rows[2] as number), 'a second row with the id of a cold row');
  const job = (payloads: PayloadArena, id: string) => new Job(payloads, id, 'q', 'default', '{}', 9, 0, 0, 0, JobState.WAITING, NO_IDS, null);
  t.notOk(table.add(job(new PayloadArena(), 'y')), 'a job with the id of an untouched row');
  table.get('y');
  t.notOk(table.add(job(new PayloadArena(), 'y')), 'a job with the id of a made row');
});

t.test('an-id-beyond-ascii-is-never-a-cold-row', async (t) => {
  const arena = new PayloadArena();
  const cold = new ColdJobs(arena);
  const c = cold.add(arena.store('jöb'), arena.store('{}'), 'q', 'default', null, 1, 0, 0, 0);
  t.equal(c, -1, 'refused: the caller keeps the arena entries and makes a Job');
  t.equal(cold.rows, 0);
});

t.test('dropping-an-untouched-row-frees-its-id-and-data-and-every-row-gone-gives-the-columns-back', async (t) => {
  const { arena, cold, table, rows } = coldStore(['a', 'b']);
  for (const c of rows) table.addCold(c);
  const before = arena.liveBytes;
  t.ok(table.delete('a'));
  t.ok(arena.liveBytes < before, 'the row\'s arena entries are freed');
  t.equal(cold.rows, 1);
  t.equal(table.get('b')?.id, 'b');
  t.equal(cold.rows, 0, 'the last row made');
  t.equal(cold.stampOf(rows[0] as number), 0, 'a dropped row reads as no longer waiting');
});

t.test('a-wait-list-of-cold-rows-pulls-in-order-makes-jobs-on-the-way-and-skips-removed-ones', async (t) => {
  const { cold, table, rows } = coldStore(['r0', 'r1', 'r2', 'r3', 'r4', 'r5'], () => 0);
  const list = createWaitList(cold);
  for (const c of rows) {
    table.addCold(c);
    waitInsertCold(list, c, 0);
  }
  t.equal(list.size, 6);
  t.same([...waitEntries(list)], rows, 'entries stay numbers while untouched');
  t.equal(cold.rows, 6);
  const r2 = table.get('r2');
  waitRemove(list, r2!);
  t.same([...waitEntries(list)].map((e) => (typeof e === 'number' ? e : e.id)), [0, 1, 3, 4, 5], 'a removed made job drops out');
  t.same([...waitIterate(list)].map((j) => j.id), ['r0', 'r1', 'r3', 'r4', 'r5'], 'pull order');
  t.equal(cold.rows, 0, 'iterating made every job');
  for (const j of [...waitIterate(list)]) waitRemove(list, j);
  t.equal(list.size, 0);
});

t.test('a-row-nothing-holds-any-more-is-handed-out-again-and-with-none-held-the-columns-start-over', async (t) => {
  const { arena, cold, table, rows } = coldStore(['a', 'b', 'c'], () => 0);
  const list = createWaitList(cold);
  for (const c of rows) {
    table.addCold(c);
    waitInsertCold(list, c, 0);
  }
  t.same(rows, [0, 1, 2]);
  // Pull b: made (the index now holds the Job), removed from the wait list, then from the index.
  const b = table.get('b') as Job;
  waitRemove(list, b);
  t.equal(table.delete('b'), true);
  t.same([...waitEntries(list)], [0, 2], 'b\'s entry is dead; a and c are still rows');
  // b's entry is still in the back queue (not at its head): the row stays held until it leaves.
  const add = (id: string) => cold.add(arena.store(id), arena.store('{}'), 'q', 'default', null, 9, 0, 0, 0);
  t.equal(add('d'), 3, 'a row still named by a wait-list entry is not handed out');
  // Pull everything in order: each entry leaves the head, and every row is let go.
  for (const job of [...waitIterate(list)]) {
    waitRemove(list, job);
    table.delete(job.id);
  }
  t.equal(list.size, 0);
  t.equal(cold.rows, 1, 'd is still a row (never inserted anywhere)');
  table.addCold(3);
  table.delete('d');
  t.equal(cold.rows, 0);
  t.equal(add('e'), 0, 'with no row held, numbering starts over');
});

t.test('a-replay-of-pushes-with-distinct-names-reads-one-kind-per-push', async (t) => {
  // Each push's kind (queue, name, options) is found by map lookups: a scan of the queue's kinds
  // made 100,000 pushes of distinct names 46x slower than of one name (41 s against 0.9 s).
  // Counted, not timed: the reads of the kinds table (ColdJobs.kinds) while the pushes replay.
  const count = 5_000;
  const replay = (distinct: boolean): number => {
    const state = createState();
    state.cold.takesPushes = true;
    const cold = state.cold as unknown as { kinds: unknown[] };
    t.ok(Array.isArray(cold.kinds), 'the kinds table is where this test counts');
    let reads = 0;
    cold.kinds = new Proxy(cold.kinds, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) reads += 1;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    for (let i = 0; i < count; i++) {
      const draft = smallPushDraft(i);
      if (distinct && draft.body.type === 'pushed') draft.body.job.name = `name-${i}`;
      apply(state, { ...draft, offset: i });
    }
    t.equal(state.cold.rows, count, 'every push a row');
    return reads;
  };
  const one = replay(false);
  const distinct = replay(true);
  t.ok(one <= count, `one name: ${one} reads for ${count} pushes`);
  t.ok(distinct <= count, `distinct names: ${distinct} reads for ${count} pushes`);
});

t.test('pushes-become-rows-up-to-the-kinds-bound-and-ordinary-jobs-after', async (t) => {
  const state = createState();
  state.cold.takesPushes = true;
  for (let i = 0; i < 100_000; i++) {
    const draft = smallPushDraft(i);
    if (draft.body.type === 'pushed') draft.body.job.name = `name-${i}`;
    apply(state, { ...draft, offset: i });
  }
  t.equal(state.cold.rows, 65_536, 'rows up to the kinds bound, ordinary jobs after');
  t.equal(state.jobs.get('job-0000099999')?.name, 'name-99999');
  t.equal(state.jobs.get('job-0000000007')?.name, 'name-7', 'a row keeps its own name');
});
