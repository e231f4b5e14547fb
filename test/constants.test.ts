import t from 'tap';
import { checkConstants, queueNamePattern } from '../src/constants.js';

t.test('constants-relations-hold', async (t) => {
  t.doesNotThrow(() => checkConstants());
});

t.test('queue-name-pattern-rejects-path-characters', async (t) => {
  for (const bad of ['../etc', 'a/b', 'a\\b', 'a b', '', 'é']) t.notOk(queueNamePattern.test(bad), bad);
  for (const good of ['emails', 'a.b-c_d:e', 'Q1']) t.ok(queueNamePattern.test(good), good);
});
