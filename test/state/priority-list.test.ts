// The wait list's priorities, highest first, against a sorted-array model through seeded random
// adds and deletes; and an add moves at most one run's entries, whatever order priorities come in.

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

t.test('rising-priorities-move-at-most-one-run-of-entries-per-add', async (t) => {
  // Each new highest priority went to the front of one sorted array: 300,000 took 21 s, because
  // every add moved every entry. Counted, not timed: the entries each splice shifts or removes.
  const runEntriesMax = 1024; // 2 × runLengthMax: the longest a run gets before it splits
  const count = 300_000;
  const movesOf = (sign: number): number => {
    const list = new PriorityList();
    const splice = Array.prototype.splice;
    let moved = 0;
    Array.prototype.splice = function (this: unknown[], start: number, ...rest: unknown[]) {
      moved += Math.max(0, this.length - start);
      return splice.call(this, start, ...(rest as [number, ...unknown[]]));
    } as typeof splice;
    try {
      for (let i = 0; i < count; i++) list.add(sign * i);
    } finally {
      Array.prototype.splice = splice;
    }
    t.equal(list.size, count);
    t.same([...list].slice(0, 3), sign > 0 ? [count - 1, count - 2, count - 3] : [0, -1, -2]);
    return moved;
  };
  const falling = movesOf(-1);
  const rising = movesOf(1);
  t.ok(rising <= count * runEntriesMax, `rising: ${rising} entries moved for ${count} adds`);
  t.ok(falling <= count * 2, `falling: ${falling} entries moved for ${count} adds`);
});
