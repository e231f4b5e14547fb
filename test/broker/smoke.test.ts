import t from 'tap';
import { startBroker } from '../fixtures/broker.js';

const ctx = { actor: null };

t.test('push-pull-ack-roundtrip', async (t) => {
  const f = await startBroker();
  t.teardown(() => f.cleanup());
  const b = f.broker;
  const pushed = await b.push('emails', { data: { to: 'a' }, priority: 3 }, ctx);
  t.ok(pushed.ok, JSON.stringify(pushed));
  const pulled = await b.pull('emails', { timeoutMs: 0 }, ctx);
  t.ok(pulled.ok);
  if (!pulled.ok || !pushed.ok) return;
  t.equal(pulled.job?.id, pushed.id);
  t.equal(pulled.job?.state, 'active');
  t.type(pulled.job?.startedAt, 'number');
  const acked = await b.ack(pushed.id, { result: { x: 1 }, token: pulled.token as string }, ctx);
  t.same(acked, { ok: true });
  t.same(b.jobResult(pushed.id), { ok: true, result: { x: 1 } });
  t.equal(b.jobState(pushed.id), 'completed');
});
