// The wait list's priorities, highest first, against a sorted-array model through seeded random
// adds and deletes; and rising priorities (each new one the highest) cost what falling ones do.

import t from 'tap';
import { PriorityList } from '../../src/state/priority-list.js';
import { mulberry32 } from '../fixtures/random.js';

t.test('priority-list-keeps-its-priorities-highest-first-through-random-adds-and-deletes', async (t) => {
  for (const seed of [1, 2, 3, 42, 2026]) {
    const random = mulberry32(seed);
    const list = new PriorityList();
    const model: number[] = [];
    let ok = true;
    for (let op = 0; op < 20_000 && ok; op++) {
      // Few distinct values at first (collisions, empty runs), then many (run splits).
      const range = op < 5_000 ? 200 : 1_000_000;
      const p = Math.floor(random() * range) - range / 2;
      if (model.includes(p) || (model.length > 0 && random() < 0.4)) {
        const gone = model.includes(p) ? p : (model[Math.floor(random() * model.length)] as number);
        list.delete(gone);
        model.splice(model.indexOf(gone), 1);
      } else {
        list.add(p);
        model.push(p);
        model.sort((a, b) => b - a);
      }
      if (op % 997 === 0 || list.size !== model.length) ok = JSON.stringify([...list]) === JSON.stringify(model);
    }
    t.ok(ok, `seed ${seed}: same priorities in the same order`);
    t.same([...list], model, `seed ${seed}: at the end`);
  }
});

t.test('priority-list-refuses-a-priority-twice-and-one-it-does-not-hold', async (t) => {
  const list = new PriorityList();
  list.add(5);
  t.throws(() => list.add(5), /already listed/);
  t.throws(() => list.delete(6), /not listed/);
  list.delete(5);
  t.throws(() => list.delete(5), /not listed/);
  t.equal(list.size, 0);
});

t.test('rising-priorities-cost-what-falling-ones-cost', async (t) => {
  // Each new highest priority went to the front of one sorted array: 300,000 took 21 s.
  const fill = (count: number, sign: number): number => {
    const list = new PriorityList();
    const started = performance.now();
    for (let i = 0; i < count; i++) list.add(sign * i);
    const ms = performance.now() - started;
    t.equal(list.size, count);
    return ms;
  };
  fill(50_000, 1);
  const falling = fill(300_000, -1);
  const rising = fill(300_000, 1);
  t.ok(rising < Math.max(falling * 10, 500), `300,000 rising ${rising.toFixed(0)} ms, falling ${falling.toFixed(0)} ms`);
});
