// A push worker of a queue that a drain goes through in steps (broker.ts: stepped): its pulls get
// no job while the drain holds the queue, and once the drain ends it must take the jobs pushed
// meanwhile as it takes any others, up to its concurrency.
import t from 'tap';
import { actionStepJobsMax } from '../../src/constants.js';
import { until } from './endpoint.js';
import { startStackWithEndpoint } from './harness.js';

const ctx = { actor: null };

t.test('jobs-pushed-during-a-stepped-drain-reach-the-push-worker-up-to-its-concurrency-once-it-ends', async (t) => {
  // Calls are held open until the test ends: the worker's free slots are what is measured.
  const held: Array<() => void> = [];
  const { s, ep } = await startStackWithEndpoint(
    t,
    (_c, res) => {
      held.push(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
    },
    {},
    () => {
      for (const release of held) release();
    },
  );
  const b = s.broker;
  // Paused, so that the worker takes none of the jobs the drain is to remove.
  t.ok((await b.pause('q', ctx)).ok);
  const many = actionStepJobsMax * 2 + 500;
  for (let i = 0; i < many; i += 1_000) {
    const r = await b.pushBulk('q', Array.from({ length: Math.min(1_000, many - i) }, (_, j) => ({ data: i + j })), ctx);
    if (!r.ok) throw new Error(r.error);
  }
  await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { concurrency: 5 } });
  const late: string[] = [];
  let between = false;
  setImmediate(() => {
    // Between the drain's first and second steps: the worker is woken (resume, pushes) while its
    // pulls get no job, so it drops its credit.
    between = true;
    void b.resume('q', ctx);
    for (let i = 0; i < 3; i++) {
      const r = b.pushNow('q', { data: `late ${i}` }, ctx);
      if ('id' in r) late.push(r.id);
    }
  });
  const drained = await b.drain('q', ctx);
  t.ok(between, 'the pushes came between two steps of the drain');
  t.same(drained, { ok: true, removed: many });
  await until('a call for each job pushed during the drain', () => ep.open() === late.length);
  t.same(ep.calls.map((c) => c.body.job.id).sort(), [...late].sort(), 'the worker called its endpoint for each of them at once');
});
