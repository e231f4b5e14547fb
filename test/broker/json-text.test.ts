// canonicalEnd (broker/json-text.ts) may accept a text only if it is exactly what JSON.stringify
// writes for the value JSON.parse reads from it: a text it accepts is stored in the log as is.
// Random values (each written by JSON.stringify, then bent into the other ways JSON can spell
// the same value, or broken) check that whatever it accepts round-trips to itself, and that
// JSON.stringify's own output of everyday data is accepted. A failure prints its seed.

import t from 'tap';
import { canonicalEnd } from '../../src/broker/json-text.js';
import { mulberry32 } from '../fixtures/random.js';

const seed = Number(process.env.TAPEQ_SEED ?? Date.now() % 2 ** 31);
t.comment(`seed ${seed} (TAPEQ_SEED=${seed} replays this run)`);
const random = mulberry32(seed);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const chars = ['a', 'Z', '0', ' ', '"', '\\', '/', '\n', '\t', '\b', '\f', '\r', '\u0001', '\u001f', '\u007f', 'é', '\u2028', '€', '😀', '\ud800', '\udc00', '{', ',', ':'];
const keyChars = ['a', 'b', 'k', '_', '1', '9', '-', ' ', '"', 'é'];
const numbers = [0, -0, 1, -1, 7, 1.5, -2.25, 0.1, 1e21, 1e-7, 123456789012345, 2 ** 53 + 2, 12345678901234567890, Number.MAX_VALUE, 5e-324];

function randomString(pool: readonly string[], lengthMax: number): string {
  let s = '';
  for (let n = Math.floor(random() * lengthMax); n > 0; n--) s += pick(pool);
  return s;
}

function randomValue(depth: number): unknown {
  const r = random();
  if (depth > 3 || r < 0.45) {
    return pick([() => randomString(chars, 6), () => pick(numbers), () => Math.floor(random() * 1e6), () => pick([true, false, null])])();
  }
  if (r < 0.7) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(depth + 1));
  const out: Record<string, unknown> = {};
  for (let n = Math.floor(random() * 5); n > 0; n--) out[randomString(keyChars, 4)] = randomValue(depth + 1);
  return out;
}

/** Other spellings of the same JSON (or broken JSON): each is a text canonicalEnd might see. */
const bends: Array<(s: string) => string> = [
  (s) => s.replace(/,/, ', '),
  (s) => s.replace(/:/, ' : '),
  (s) => ` ${s}`,
  (s) => s.replace(/\//, '\\/'),
  (s) => s.replace(/a/, '\\u0061'),
  (s) => s.replace(/(\d)(?=[,\]}]|$)/, '$1.0'),
  (s) => s.replace(/(\d+)(?=[,\]}]|$)/, '$1e0'),
  (s) => s.replace(/"([^"\\]*)":/, '"$1":0,"$1":'),
  (s) => s.replace(/\{"/, '{"7":1,"'),
  (s) => s.replace(/\{/, '{"0":1,'),
  (s) => s.slice(0, Math.floor(random() * s.length)),
  (s) => s.replace(/\]/, ',]'),
  (s) => s.replace(/0/, '00'),
  (s) => s.replace(/\d/, '-0'),
  (s) => s.replace(/"/, '\u0001"'),
  (s) => s.replace(/e/, '\\ud800'),
];

t.test('whatever-it-accepts-is-json-stringify-of-json-parse-of-itself', async (t) => {
  let plain = 0;
  let accepted = 0;
  let bentAccepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const value = randomValue(0);
    const text = JSON.stringify(value);
    const bent = i % 2 === 0 ? text : pick(bends)(text);
    if (bent === text) plain += 1;
    const end = canonicalEnd(bent, 0);
    if (end === -1) continue;
    const prefix = bent.slice(0, end);
    let round: string | undefined;
    try {
      round = JSON.stringify(JSON.parse(prefix));
    } catch (error) {
      t.fail(`accepted ${JSON.stringify(prefix)}, which JSON.parse refuses: ${String(error)} (seed ${seed})`);
      return;
    }
    if (round !== prefix) {
      t.fail(`accepted ${JSON.stringify(prefix)}, stored as ${JSON.stringify(round)} (seed ${seed})`);
      return;
    }
    if (bent === text) accepted += 1;
    else if (end === bent.length) bentAccepted += 1;
  }
  t.ok(accepted > plain / 10, `${accepted} of ${plain} stringify outputs accepted as they are`);
  t.comment(`${bentAccepted} bent texts accepted whole (each round-tripped to itself)`);
});

t.test('everyday-job-data-is-accepted-as-json-stringify-writes-it', async (t) => {
  const data = [
    { email: 'someone@example.com', template: 'welcome', locale: 'en', n: 1, pad: 'x'.repeat(20) },
    { orderId: 'A-1029', items: [{ sku: 'X1', qty: 2, price: 19.99 }], total: 39.98, paid: true, note: null },
    { text: 'line one\nline two\t"quoted" \\ back', emoji: '😀', accents: 'crème brûlée', url: 'https://x.test/a?b=c' },
    [1, -2, 3.5, 1e21, 1e-7, 'two', [], {}],
    'just a string',
    42,
    -0.5,
    true,
    null,
    { nested: { deeper: { deepest: [{ a: [1, { b: 2 }] }] } } },
  ];
  for (const value of data) {
    const text = JSON.stringify(value);
    t.equal(canonicalEnd(text, 0), text.length, text);
  }
});

t.test('each-other-spelling-is-refused', async (t) => {
  const refused: Array<[string, string]> = [
    ['{"a":1,"a":2}', 'a repeated key (JSON.parse keeps the last)'],
    ['{"b":1,"1":2}', 'an array-index key (JSON.stringify writes it first)'],
    ['{"01":1}', 'any key that starts with a digit'],
    ['"a\\/b"', 'an escaped slash'],
    ['"\\u0041"', 'a \\u escape'],
    ['"\\u0001"', 'even one JSON.stringify would write (left to JSON.parse)'],
    ['"\ud800"', 'a lone surrogate (JSON.stringify escapes it)'],
    ['"\udc00\ud800"', 'surrogates in the wrong order'],
    ['"a\u0001"', 'a raw control character (not JSON)'],
    ['1.0', 'a trailing zero'],
    ['1e2', 'an exponent JSON.stringify would not write'],
    ['1E+21', 'a capital E'],
    ['-0', 'negative zero (written 0)'],
    ['12345678901234567890', 'more digits than a double keeps'],
    ['[01]', 'a leading zero (not JSON)'],
    ['[1, 2]', 'whitespace'],
    ['{"a" :1}', 'whitespace before a colon'],
    ['[1,]', 'a trailing comma'],
    ['"open', 'a string the text ends in'],
    ['tru', 'a cut literal'],
    ['{"a":1', 'an object the text ends in'],
    ['undefined', 'not JSON'],
    ['['.repeat(65) + ']'.repeat(65), 'nesting past 64 levels'],
    [`{${Array.from({ length: 33 }, (_, i) => `"k${i}":${i}`).join(',')}}`, 'more than 32 keys in one object'],
  ];
  for (const [text, why] of refused) t.equal(canonicalEnd(text, 0), -1, why);
  t.equal(canonicalEnd('['.repeat(64) + ']'.repeat(64), 0), 128, '64 levels are accepted');
  t.equal(canonicalEnd('{"a":[1,2]},"next"', 0), 11, 'the end is where the value ends, not the text');
  t.equal(canonicalEnd('x{"a":1}', 1), 8, 'from the index given');
});
