// The job index against a Map model: same answers and the same iteration order through adds,
// deletes, tombstone reuse and rebuilds, whatever the hash seed.
import t from 'tap';
import { Job } from '../../src/state/job.js';
import { JobTable, seedJobTables } from '../../src/state/job-table.js';
import { PayloadArena } from '../../src/state/payloads.js';
import { JobState } from '../../src/record/types.js';
import { NO_IDS } from '../../src/state/state.js';
import { mulberry32 } from '../fixtures/random.js';

const payloads = new PayloadArena();

function job(id: string): Job {
  return new Job(payloads, id, 'q', 'default', '{}', 0, 0, 0, 0, JobState.WAITING, NO_IDS, null);
}

t.test('answers like a Map, in insertion order, through 50,000 random operations', async (t) => {
  const wrong: string[] = [];
  for (const seed of [1, 2, 0x5eed]) {
    const random = mulberry32(seed);
    seedJobTables(seed * 7919);
    const table = new JobTable();
    const model = new Map<string, Job>();
    // Ids from a small pool, so that deletes hit, re-adds reuse tombstones and rebuilds compact.
    const idOf = () => (random() < 0.5 ? `id-${Math.floor(random() * 3000)}` : `0190c2a4-${Math.floor(random() * 3000)}`);
    for (let i = 0; i < 50_000; i++) {
      const id = idOf();
      const r = random();
      const at = `seed ${seed} op ${i}`;
      if (r < 0.55) {
        const j = job(id);
        const added = table.add(j);
        if (added !== !model.has(id)) wrong.push(`${at}: add ${id}`);
        if (added) model.set(id, j);
      } else if (r < 0.9) {
        if (table.delete(id) !== model.delete(id)) wrong.push(`${at}: delete ${id}`);
      } else {
        if (table.get(id) !== model.get(id)) wrong.push(`${at}: get ${id}`);
        if (table.has(id) !== model.has(id)) wrong.push(`${at}: has ${id}`);
      }
      if (i % 5_000 === 0 || i === 49_999) {
        t.equal(table.size, model.size, `seed ${seed} op ${i}: size`);
        t.same([...table.values()].map((j) => j.id), [...model.keys()], `seed ${seed} op ${i}: insertion order`);
      }
    }
  }
  t.same(wrong.slice(0, 5), [], `every add, delete, get and has answered as the Map did (${wrong.length} differences)`);
});

t.test('a duplicate id is refused and changes nothing', async (t) => {
  const table = new JobTable();
  const first = job('a');
  t.ok(table.add(first));
  t.notOk(table.add(job('a')));
  t.equal(table.size, 1);
  t.equal(table.get('a'), first);
});

t.test('ids that differ in one character, in any position, all stay findable', async (t) => {
  const table = new JobTable();
  const base = '0190c2a4-7d1e-7abc-8def-0123456789ab';
  const ids: string[] = [];
  for (let at = 0; at < base.length; at++) {
    for (const c of 'xyz') ids.push(base.slice(0, at) + c + base.slice(at + 1));
  }
  for (const id of ids) t.ok(table.add(job(id)), `added ${id}`);
  for (const id of ids) t.equal(table.get(id)?.id, id);
  t.equal(table.get(base), undefined, 'the unmodified id was never added');
});

t.test('deleting while iterating is allowed; adding while iterating is refused', async (t) => {
  const table = new JobTable();
  for (let i = 0; i < 100; i++) table.add(job(`j${i}`));
  const seen: string[] = [];
  for (const j of table.values()) {
    seen.push(j.id);
    table.delete(`j${Number(j.id.slice(1)) + 1}`);
  }
  t.same(seen, Array.from({ length: 50 }, (_, i) => `j${2 * i}`), 'every other job: each deletes the next one');
  t.throws(() => {
    let i = 0;
    for (const _ of table.values()) for (let k = 0; k < 64; k++) table.add(job(`new-${i++}`));
  }, /add\(\) while iterating/);
});

t.test('keeps order and lookups when rebuilds compact to whole chunks of entries', async (t) => {
  // 8,192 live jobs (two whole chunks of 4,096 entries) with one add and one delete per step: a
  // rebuild runs in an add, so it compacts exactly 8,192 entries and then appends past the last
  // whole chunk.
  const table = new JobTable();
  const model = new Map<string, Job>();
  let next = 0;
  const addOne = () => {
    const j = job(`k${next++}`);
    table.add(j);
    model.set(j.id, j);
  };
  for (let i = 0; i < 8_192; i++) addOne();
  const wrong: string[] = [];
  for (let step = 0; step < 60_000; step++) {
    addOne();
    const oldest = model.keys().next().value as string;
    table.delete(oldest);
    model.delete(oldest);
    if (step % 10_000 === 9_999) {
      if ([...table.values()].map((j) => j.id).join() !== [...model.keys()].join()) wrong.push(`step ${step}: order`);
      for (const id of [...model.keys()].filter((_, i) => i % 997 === 0)) if (table.get(id) !== model.get(id)) wrong.push(`step ${step}: get ${id}`);
    }
  }
  t.same(wrong, []);
  t.equal(table.size, 8_192);
});

t.test('a bulk load lays out a table that answers like one filled job by job, and names a duplicate', async (t) => {
  const random = mulberry32(3);
  const ids = Array.from({ length: 20_000 }, (_, i) => (random() < 0.5 ? `id-${i}` : `0190c2a4-${i}-${Math.floor(random() * 1e9)}`));
  const bulk = new JobTable();
  const jobs = ids.map(job);
  bulk.beginBulk(ids.length);
  t.equal(jobs.filter((j) => !bulk.add(j)).length, 0, 'every add appends');
  t.throws(() => bulk.get('id-1'), /lookup during a bulk load/, 'no lookup before endBulk');
  t.equal(bulk.endBulk(), null, 'no duplicate');
  t.equal(bulk.size, ids.length);
  const wrong = ids.filter((id, i) => bulk.get(id) !== jobs[i] || !bulk.has(id));
  t.same(wrong, [], 'every job found');
  t.notOk(bulk.has('id-20000'), 'and nothing else');
  t.same([...bulk.values()].map((j) => j.id), ids, 'insertion order');
  t.ok(bulk.delete(ids[0] as string));
  t.ok(bulk.add(job('after')), 'adds one by one afterwards');
  t.equal(bulk.get('after')?.id, 'after');

  const twice = new JobTable();
  twice.beginBulk(4);
  for (const id of ['a', 'b', 'c', 'b']) twice.add(job(id));
  t.equal(twice.endBulk(), 'b', 'the duplicate id');
  t.throws(() => twice.beginBulk(1), /empty table/, 'a bulk load starts on an empty table');
});
