import { Cron } from 'croner';
import t from 'tap';
import { checkPush, checkPushBulk } from '../../src/broker/validate.js';

const err = (input: unknown): string => {
  const r = checkPush(input);
  return r.ok ? 'ok' : r.error;
};

t.test('validation-errors-name-the-field', async (t) => {
  t.equal(err({}), 'data is required');
  t.equal(err({ data: 1, priority: 1.5 }), 'priority must be an integer');
  t.equal(err({ data: 1, foo: 1 }), 'foo is not an allowed field');
  t.equal(err({ data: 1, delay: -1 }), 'delay must be a non-negative integer');
  t.equal(err({ data: 1, maxAttempts: 0 }), 'maxAttempts must be at least 1');
  t.equal(err({ data: 1, tags: ['a', 2] }), 'tags[1] must be a string');
  t.equal(err({ data: 1, lifo: 'yes' }), 'lifo must be a boolean');
  t.equal(err({ data: 1, repeat: { every: 10, pattern: '* * * * *' } }), 'repeat needs exactly one of every or pattern');
  t.equal(err({ data: 1, repeat: { every: 10, foo: 1 } }), 'repeat.foo is not an allowed field');
  t.equal(err({ data: 1, jobId: 'a', dependsOn: ['a'] }), 'dependsOn must not contain the job itself');
  t.equal(err({ name: 'n', data: 1, opts: { foo: 1 } }), 'opts.foo is not an allowed field');
  t.equal(err({ name: 'n', data: 1, opts: { attempts: 'x' } }), 'opts.attempts must be an integer');
  t.equal(err({ name: 'n', data: 1, opts: { backoff: { type: 'linear' } } }), 'opts.backoff.type must be "fixed" or "exponential"');
  t.equal(err({ name: 'n', data: 1, opts: { removeOnFail: { count: 1, age: 1, ages: 2 } } }), 'opts.removeOnFail.ages is not an allowed field');
  t.equal(err({ name: 'n', data: 1, opts: { jobId: 'a', dependsOn: ['a'] } }), 'opts.dependsOn must not contain the job itself');
  t.equal(err({ name: 'n', data: 1, opts: {}, extra: 1 }), 'extra is not an allowed field');
  t.equal(err({ data: 1, maxAttempts: 2, opts: {} }), 'maxAttempts cannot be used beside opts: a job with opts takes its options in opts');
  t.equal(err([1]), 'job must be an object');
});

t.test('both-shapes-normalize-to-the-same-options', async (t) => {
  const seed = checkPush({ data: { a: 1 }, maxAttempts: 5, backoff: 200, removeOnComplete: true, delay: 10 });
  const bull = checkPush({ data: { a: 1 }, opts: { attempts: 5, backoff: { type: 'exponential', delay: 200 }, removeOnComplete: true, delay: 10 } });
  t.same(seed, bull);
  const p = checkPush({ name: 'n', data: null, opts: { priority: 3, removeOnFail: { count: 2, age: 60 } } });
  t.ok(p.ok);
  if (p.ok) {
    t.equal(p.value.priority, -3, 'BullMQ priority p → -p');
    t.same(p.value.removeOnFail, { remove: false, count: 2, ageMs: 60_000 });
    t.equal(p.value.data, 'null');
  }
});

t.test('every-seed-option-is-a-seed-field-and-misplaced-beside-opts', async (t) => {
  const samples: Record<string, unknown> = {
    priority: 1, maxAttempts: 2, delay: 0, backoff: 10, ttl: 1, timeout: 1, uniqueKey: 'u', jobId: 'j', tags: [],
    groupId: 'g', lifo: true, removeOnComplete: true, removeOnFail: true, durable: true, dependsOn: [], repeat: null,
  };
  for (const [key, value] of Object.entries(samples)) {
    t.equal(err({ data: 1, [key]: value }), 'ok', `${key} is a seed-004 field`);
    t.match(err({ data: 1, [key]: value, opts: {} }), new RegExp(`^${key} cannot be used beside opts`), `${key} beside opts`);
  }
});

t.test('envelope-fields-are-passed-over-only-when-named-and-only-at-the-top', async (t) => {
  const envelope = new Set(['cmd', 'queue', 'reqId']);
  const bare = checkPush({ data: { a: 1 }, priority: 3 });
  const seed = checkPush({ cmd: 'PUSH', queue: 'q', data: { a: 1 }, priority: 3, reqId: 7 }, envelope);
  t.ok(seed.ok && bare.ok);
  t.strictSame(seed, bare, 'a message with its envelope is the same job as the job alone');
  const bull = checkPush({ cmd: 'PUSH', queue: 'q', name: 'n', data: 1, opts: { attempts: 2 }, reqId: 'r' }, envelope);
  t.match(bull, { ok: true, value: { name: 'n', maxAttempts: 2 } }, 'in the BullMQ shape too');
  t.strictSame(checkPush({ cmd: 'PUSH', data: 1 }), { ok: false, error: 'cmd is not an allowed field' }, 'without an envelope they are unknown fields');
  t.strictSame(checkPush({ data: 1, opts: { queue: 'q' } }, envelope), { ok: false, error: 'opts.queue is not an allowed field' }, 'inside opts they are not envelope');
  t.strictSame(checkPush({ queue: 'q', reqId: 1 }, envelope), { ok: false, error: 'data is required' });
});

t.test('data-is-bounded-by-its-utf8-bytes-not-its-characters', async (t) => {
  const max = 512 * 1024;
  // Two bytes of JSON for the quotes; 'é' is 2 bytes of UTF-8, '😀' 4 (two UTF-16 units).
  t.ok(checkPush({ data: 'x'.repeat(max - 2) }).ok, 'exactly the limit');
  t.strictSame(checkPush({ data: 'x'.repeat(max - 1) }), { ok: false, error: `data must be at most ${max} bytes as JSON` });
  t.ok(checkPush({ data: 'é'.repeat((max - 2) / 2) }).ok, 'the limit in two-byte characters');
  t.notOk(checkPush({ data: `${'é'.repeat((max - 2) / 2)}x` }).ok, 'one byte over in two-byte characters');
  t.notOk(checkPush({ data: '😀'.repeat(max / 4) }).ok, 'four-byte characters over the limit at a quarter of its length in bytes');
  const euros = Math.floor((max - 2) / 3);
  t.ok(checkPush({ data: '€'.repeat(euros) }).ok, 'three-byte characters up to the limit');
  t.notOk(checkPush({ data: '€'.repeat(euros + 1) }).ok, 'one three-byte character more is over it');
});

t.test('bulk-validation-is-all-or-nothing-and-names-each-item-field-by-its-path', async (t) => {
  const r = checkPushBulk([{ data: 1 }, { data: 2, bad: true }]);
  t.same(r, { ok: false, error: 'jobs[1].bad is not an allowed field' });
  const bulkErr = (inputs: unknown[]): string => {
    const out = checkPushBulk(inputs);
    return out.ok ? 'ok' : out.error;
  };
  t.equal(bulkErr([{ data: 1 }, 5]), 'jobs[1] must be an object');
  t.equal(bulkErr([{ data: 1, delay: -1 }]), 'jobs[0].delay must be a non-negative integer');
  t.equal(bulkErr([{ name: 'n', data: 1, opts: { backoff: { type: 'linear' } } }]), 'jobs[0].opts.backoff.type must be "fixed" or "exponential"');
  t.equal(bulkErr([{ name: 'n', data: 1, opts: { foo: 1 } }]), 'jobs[0].opts.foo is not an allowed field');
  t.equal(bulkErr([{ data: 1 }, { name: 'n', opts: {} }]), 'jobs[1].data is required');
});

t.test('cron-patterns-are-parsed-not-searched-and-a-year-field-is-refused', async (t) => {
  // Searching a pattern for its next run costs up to ~100 ms when it has none (croner walks every
  // year it allows, up to 9999): validation did it for every job of a bulk push, before the first
  // such job was refused, so one request could hold the event loop for minutes. Validation now
  // parses only; the broker's one search per job stops the bulk at the first pattern with no run.
  const proto = Cron.prototype as unknown as { nextRun: (...args: unknown[]) => unknown };
  const nextRun = proto.nextRun;
  let searches = 0;
  proto.nextRun = function (this: unknown, ...args: unknown[]) {
    searches++;
    return nextRun.apply(this, args);
  };
  t.teardown(() => {
    proto.nextRun = nextRun;
  });
  const jobs = Array.from({ length: 1_000 }, (_, i) => ({ data: i, repeat: { pattern: `${i % 60} ${Math.floor(i / 60)} 0 31 2 *` } }));
  t.ok(checkPushBulk(jobs).ok, 'syntactically valid patterns pass validation');
  t.equal(searches, 0, 'validation never searched a pattern for its runs');

  const shape = 'repeat.pattern must be a cron pattern of 5 or 6 fields ([seconds] minutes hours day-of-month month day-of-week)';
  t.equal(err({ data: 1, repeat: { pattern: '0 0 0 31 2 * 2026-9999' } }), `${shape}: its year field must be * or absent (got "2026-9999")`);
  t.equal(err({ data: 1, repeat: { pattern: '0 0 0 * * * *' } }), 'ok', 'a year field of * is every year');
  t.equal(err({ data: 1, repeat: { pattern: '* * * * *', tz: 'Europe/Nowhere' } }), 'repeat.tz must be an IANA time zone name (got "Europe/Nowhere")');
  t.equal(searches, 0);
});

t.test('a-bad-cron-pattern-is-refused-in-tapeqs-words-naming-the-bad-field', async (t) => {
  // Croner's text said "exactly five, six, or seven space separated parts are required" (tapeq
  // refuses a year), numbered its own seven entries, and named the wrong bound of a field
  // ("Invalid value for day: 31" for a 32).
  const shape = 'repeat.pattern must be a cron pattern of 5 or 6 fields ([seconds] minutes hours day-of-month month day-of-week)';
  const cases: Array<[string, string]> = [
    ['bad cron', `${shape}: it has 2`],
    ['* * * * * * * *', `${shape}: it has 8`],
    ['   ', `${shape}: it has 0`],
    ['61 * * * *', `${shape}: its minutes field "61" is not valid`],
    ['* * 32 * *', `${shape}: its day-of-month field "32" is not valid`],
    ['* * * 13 *', `${shape}: its month field "13" is not valid`],
    ['* * * * 8', `${shape}: its day-of-week field "8" is not valid`],
    ['*/0 * * * *', `${shape}: its minutes field "*/0" is not valid`],
    ['0 61 * * * *', `${shape}: its minutes field "61" is not valid`],
    ['x * * * * *', `${shape}: its seconds field "x" is not valid`],
    ['0 0 0 32 * * *', `${shape}: its day-of-month field "32" is not valid`],
  ];
  for (const [pattern, error] of cases) t.equal(err({ data: 1, repeat: { pattern } }), error, pattern);
  t.equal(err({ name: 'n', data: 1, opts: { repeat: { pattern: 'bad cron' } } }), `opts.${shape}: it has 2`, 'in BullMQ opts, by its path');
  for (const pattern of ['* * * * *', '0 */5 * * * *', '0 9 * * MON-FRI', '0 0 L * *', '@daily']) t.equal(err({ data: 1, repeat: { pattern } }), 'ok', pattern);
});
