import t from 'tap';
import { IdGenerator } from '../../src/broker/ids.js';

t.test('uuidv7-ids-are-well-formed-and-strictly-increasing-within-a-millisecond', async (t) => {
  const gen = new IdGenerator(() => 1_700_000_000_000);
  const ids = Array.from({ length: 10_000 }, () => gen.next());
  for (const id of ids.slice(0, 50)) t.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  let sorted = true;
  for (let i = 1; i < ids.length; i++) if ((ids[i] as string) <= (ids[i - 1] as string)) sorted = false;
  t.ok(sorted, 'each id sorts after the previous one');
  t.equal(new Set(ids).size, ids.length);
  t.equal(parseInt((ids[0] as string).replace(/-/g, '').slice(0, 12), 16), 1_700_000_000_000);
});
