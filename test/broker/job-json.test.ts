// A job served as JSON text (jobJson: data and result written as stored, not parsed and
// serialised again) is byte for byte JSON.stringify(jobView(job)), through every state and every
// push option, seeded random jobs; and replyJson writes a reply as JSON.stringify does, a
// JsonText among its values as its text.

import t from 'tap';
import { JsonText, replyJson } from '../../src/broker/json-text.js';
import { jobJson, jobView } from '../../src/broker/view.js';
import { manualClock, startBroker } from '../fixtures/broker.js';
import { mulberry32 } from '../fixtures/random.js';

const ctx = { actor: null };
const seed = Number(process.env.TAPEQ_SEED ?? Date.now() % 2 ** 31);

const texts = ['plain', 'émail', 'quote " and \\ slash', 'tab\tnew\nline', 'emoji 😀', '<\u2028>', ''];
const numbers = [0, 1, -1, 42, 0.5, -2.25, 1e21, 1.5e-7, 123456789012, Number.MAX_SAFE_INTEGER];

function randomValue(random: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const roll = random();
  if (depth > 2 || roll < 0.35) return pick<unknown>([...texts, ...numbers, true, false, null]);
  if (roll < 0.65) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  const out: Record<string, unknown> = {};
  for (let i = Math.floor(random() * 5); i > 0; i--) out[pick(['a', 'b', 'key "q"', 'ü', '7', '__proto__x', 'n'])] = randomValue(random, depth + 1);
  return out;
}

function randomPush(random: () => number, earlier: string[], i: number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const maybe = (p: number, v: Record<string, unknown>): Record<string, unknown> => (random() < p ? v : {});
  const keep = (): unknown => pick<unknown>([true, false, 3, { count: 2 }, { age: 60 }, { count: 5, age: 3600 }]);
  if (random() < 0.3) {
    // BullMQ shape: a bare backoff number is a fixed delay.
    return {
      name: pick(texts.filter((x) => x !== '')),
      data: randomValue(random, 0),
      opts: {
        ...maybe(0.5, { attempts: 1 + Math.floor(random() * 5) }),
        ...maybe(0.5, { backoff: pick([500, { type: 'fixed', delay: 250 }, { type: 'exponential', delay: 100 }]) }),
        ...maybe(0.3, { priority: Math.floor(random() * 10) }),
        ...maybe(0.3, { removeOnComplete: keep() }),
        ...maybe(0.3, { removeOnFail: keep() }),
        ...maybe(0.2, { delay: 1_000 }),
        ...maybe(0.1, { repeat: pick([{ every: 60_000, limit: 3 }, { pattern: '*/5 * * * *' }]) }),
      },
    };
  }
  return {
    data: randomValue(random, 0),
    ...maybe(0.3, { name: pick(texts.filter((x) => x !== '')) }),
    ...maybe(0.5, { priority: Math.floor(random() * 20) - 10 }),
    ...maybe(0.3, { maxAttempts: 1 + Math.floor(random() * 4) }),
    ...maybe(0.3, { backoff: 2_000 }),
    ...maybe(0.2, { delay: 500 }),
    ...maybe(0.2, { ttl: 60_000 }),
    ...maybe(0.2, { timeout: 30_000 }),
    ...maybe(0.2, { uniqueKey: `unique ${i} ${pick(texts)}` }),
    ...maybe(0.3, { tags: [pick(texts), `t${i}`] }),
    ...maybe(0.2, { groupId: pick(texts.filter((x) => x !== '')) }),
    ...maybe(0.2, { lifo: true }),
    ...maybe(0.2, { removeOnComplete: keep() }),
    ...maybe(0.2, { removeOnFail: keep() }),
    ...maybe(0.1, { dependsOn: earlier.length > 0 ? [pick(earlier)] : [] }),
    ...maybe(0.05, { repeat: { every: 30_000 } }),
  };
}

t.test('a-job-as-json-text-is-json-stringify-of-its-view-in-every-state-and-with-every-option', async (t) => {
  t.comment(`seed ${seed} (TAPEQ_SEED=${seed} replays it)`);
  const random = mulberry32(seed);
  const clock = manualClock();
  const fixture = await startBroker({ clock: clock.now });
  t.teardown(() => fixture.cleanup());
  const { broker } = fixture;
  const ids: string[] = [];
  const held: Array<{ id: string; token: string }> = [];
  const states = new Set<string>();
  let compared = 0;
  let differing = '';
  const compareAll = (): void => {
    for (const id of ids) {
      const job = broker.state.jobs.get(id);
      if (job === undefined) continue;
      const expected = JSON.stringify(jobView(job));
      states.add(jobView(job).state);
      compared += 1;
      if (jobJson(job) !== expected && differing === '') differing = `${jobJson(job)}\n!==\n${expected}`;
    }
  };
  for (let i = 0; i < 600; i++) {
    clock.advance(Math.floor(random() * 400));
    const roll = random();
    if (roll < 0.45) {
      const out = await broker.push(random() < 0.5 ? 'alpha' : 'beta', randomPush(random, ids, i), ctx);
      if (out.ok) ids.push(out.id);
    } else if (roll < 0.7) {
      const out = await broker.pullJson(random() < 0.5 ? 'alpha' : 'beta', { timeoutMs: 0 }, ctx);
      if (out.ok && out.job !== null) {
        const view = JSON.parse(out.job.text) as { id: string };
        held.push({ id: view.id, token: out.token as string });
      }
    } else if (roll < 0.8 && held.length > 0) {
      const job = held[Math.floor(random() * held.length)] as { id: string; token: string };
      await broker.progress(job.id, { progress: Math.floor(random() * 101), ...(random() < 0.7 ? { message: texts[i % texts.length] as string } : {}) }, ctx);
    } else if (held.length > 0) {
      const [job] = held.splice(Math.floor(random() * held.length), 1) as [{ id: string; token: string }];
      if (random() < 0.6) await broker.ack(job.id, { ...(random() < 0.8 ? { result: randomValue(random, 0) } : {}), token: job.token }, ctx);
      else await broker.fail(job.id, { error: `boom ${texts[i % texts.length] as string}`, token: job.token }, ctx);
    }
    if (i % 50 === 49) compareAll();
  }
  // Every state at least once whatever the seed: a job that fails for good (some seeds fail none).
  const last = await broker.push('alpha', { data: 'last', maxAttempts: 1 }, ctx);
  if (last.ok) ids.push(last.id);
  for (let out = await broker.pullJson('alpha', { timeoutMs: 0 }, ctx); out.ok && out.job !== null; out = await broker.pullJson('alpha', { timeoutMs: 0 }, ctx)) {
    const view = JSON.parse(out.job.text) as { id: string };
    if (last.ok && view.id === last.id) await broker.fail(view.id, { error: 'the last one fails', token: out.token as string }, ctx);
    else held.push({ id: view.id, token: out.token as string });
  }
  compareAll();
  t.equal(differing, '', 'no job whose text differs');
  t.ok(compared > 1_000, `${compared} comparisons`);
  for (const state of ['waiting', 'active', 'delayed', 'completed', 'failed']) t.ok(states.has(state), `jobs compared while ${state}`);
});

t.test('a-pulled-job-comes-as-the-text-of-its-view-at-the-pull', async (t) => {
  const clock = manualClock();
  const fixture = await startBroker({ clock: clock.now });
  t.teardown(() => fixture.cleanup());
  const { broker } = fixture;
  const pushed = await broker.push('q', { data: { a: 'ü "x"' }, tags: ['t'], removeOnComplete: { count: 2 } }, ctx);
  if (!pushed.ok) throw new Error('push refused');
  const pulled = await broker.pullJson('q', { timeoutMs: 0 }, ctx);
  if (!pulled.ok || pulled.job === null) throw new Error('nothing pulled');
  const job = broker.state.jobs.get(pushed.id);
  if (job === undefined) throw new Error('job gone');
  t.equal(pulled.job.text, JSON.stringify(jobView(job)));
  t.match(JSON.parse(pulled.job.text), { id: pushed.id, state: 'active', data: { a: 'ü "x"' }, attempts: 0 });
  await broker.ack(pushed.id, { result: [1] }, ctx);
  t.equal(JSON.parse(pulled.job.text).state, 'active', 'the text is the job at the pull, not later');
});

t.test('reply-json-writes-a-reply-as-json-stringify-does', async (t) => {
  const job = new JsonText('{"id":"a","data":{"x":[1,"ü"]}}');
  const cases: object[] = [
    { ok: true, job, token: 'tok "1"' },
    { ok: true, job: null, token: null },
    { ok: true, id: 'x' },
    { ok: true, job, skipped: undefined, fn: () => 1, reqId: 7 },
    { job },
    { 2: 'two', ok: true, job, 1: 'one' },
    {},
  ];
  for (const reply of cases) t.equal(replyJson(reply), JSON.stringify(reply), JSON.stringify(reply));
  t.equal(replyJson({ ok: true, job, token: 't' }), '{"ok":true,"job":{"id":"a","data":{"x":[1,"ü"]}},"token":"t"}', 'the text goes in as it is');
  t.equal(JSON.stringify({ nested: { job } }), '{"nested":{"job":{"id":"a","data":{"x":[1,"ü"]}}}}', 'deeper, toJSON gives the same JSON');
});
