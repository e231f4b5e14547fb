// A push worker of a queue that a drain, or a clean of every waiting job, goes through in steps
// (broker.ts: stepped): its pulls get no job while the action holds the queue, and once it ends
// the worker must take the jobs pushed meanwhile as it takes any others, up to its concurrency;
// also when the clean's last step was left with nothing to remove (no record marks its end).
import t from 'tap';
import { actionStepJobsMax } from '../../src/constants.js';
import { until } from './endpoint.js';
import { startStackWithEndpoint } from './harness.js';

const ctx = { actor: null };

for (const action of ['drain', 'clean'] as const) {
  t.test(`jobs-pushed-during-a-stepped-${action}-reach-the-push-worker-up-to-its-concurrency-once-it-ends`, async (t) => {
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
    // Paused, so that the worker takes none of the jobs the action is to remove.
    t.ok((await b.pause('q', ctx)).ok);
    const many = actionStepJobsMax * 2 + 500;
    const ids: string[] = [];
    for (let i = 0; i < many; i += 1_000) {
      const r = await b.pushBulk('q', Array.from({ length: Math.min(1_000, many - i) }, (_, j) => ({ data: i + j })), ctx);
      if (!r.ok) throw new Error(r.error);
      ids.push(...r.ids);
    }
    await s.registerWorker({ queue: 'q', endpoint: { url: ep.url, method: 'POST' }, opts: { concurrency: 5 } });
    const late: string[] = [];
    // The clean's last step is left empty: the jobs it would take are cancelled meanwhile.
    const gone = action === 'clean' ? ids.slice(-500) : [];
    let between = false;
    setImmediate(() => {
      // Between the action's first and second steps: the worker is woken (resume, pushes) while
      // its pulls get no job, so it drops its credit.
      between = true;
      void b.resume('q', ctx);
      for (let i = 0; i < 3; i++) {
        const r = b.pushNow('q', { data: `late ${i}` }, ctx);
        if ('id' in r) late.push(r.id);
      }
      for (const id of gone) void b.cancel(id, ctx);
    });
    const answer = action === 'drain' ? await b.drain('q', ctx) : await b.clean('q', { grace: 0, state: 'waiting' }, ctx);
    t.ok(between, `the pushes came between two steps of the ${action}`);
    if (!answer.ok) throw new Error(answer.error);
    t.equal('removed' in answer && (typeof answer.removed === 'number' ? answer.removed : answer.removed.length), many - gone.length);
    await until(`a call for each job pushed during the ${action}`, () => ep.open() === late.length);
    t.same(ep.calls.map((c) => c.body.job.id).sort(), [...late].sort(), 'the worker called its endpoint for each of them at once');
  });
}
