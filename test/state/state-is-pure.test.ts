// The fold must not read a clock, randomness, timers, the process or do I/O (STYLE habit 1).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';

const forbidden = ['Date', 'Math.random', 'setTimeout', 'setInterval', 'performance', 'process.', "from 'node:", 'await'];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

t.test('state-is-pure', async (t) => {
  const dir = new URL('../../../src/state/', import.meta.url).pathname;
  const all = files(dir);
  t.ok(all.length >= 5, 'found the state sources');
  for (const file of all) {
    const text = readFileSync(file, 'utf8');
    for (const word of forbidden) t.notOk(text.includes(word), `${file} does not use ${word}`);
    const imports = [...text.matchAll(/from '([^']+)'/g)].map((m) => m[1] as string);
    for (const spec of imports) {
      t.ok(spec.startsWith('./') || spec === '../constants.js' || spec === '../record/types.js', `${file} imports ${spec}`);
    }
  }
});
