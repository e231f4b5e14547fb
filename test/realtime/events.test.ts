// Event shapes and order over SSE and WebSocket: every seed-004 event type, driven through the
// real broker, arrives on both transports in log order, with the log offset as SSE id (and only
// there) and as `offset` in WebSocket events.

import t from 'tap';
import { SseClient, WsClient } from './clients.js';
import { ctx, push, startRealtime } from './harness.js';

type Ev = Record<string, unknown>;

t.test('every-event-type-arrives-in-log-order-on-sse-and-ws', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const { broker } = h.fixture;
  const sse = await SseClient.connect(h.http('/events/queues/ev'));
  t.equal(sse.status, 200);
  t.equal(sse.response.headers['content-type'], 'text/event-stream');
  t.equal(sse.response.headers['cache-control'], 'no-cache');
  t.equal(sse.response.headers.connection, 'keep-alive');
  t.equal(sse.response.headers['access-control-allow-origin'], '*');
  const hello = await sse.inbox.take();
  t.equal(hello.id, String(h.fixture.log.durableOffset - 1), 'the connection message has the offset the stream starts after as its id');
  const helloData = JSON.parse(hello.data) as Ev;
  t.strictSame(Object.keys(helloData), ['connected', 'clientId']);
  t.match(helloData, { connected: true, clientId: /^[0-9a-f-]{36}$/ });
  const ws = await WsClient.connect(h.ws('/ws'));
  t.teardown(() => ws.close());

  const ok = async (p: Promise<{ ok: boolean }>): Promise<void> => {
    const out = await p;
    if (!out.ok) throw new Error(JSON.stringify(out));
  };
  const pull = async (lockMs?: number): Promise<string> => {
    const out = await broker.pull('ev', { timeoutMs: 0, ...(lockMs !== undefined ? { lockMs } : {}) }, ctx);
    if (!out.ok || out.job === null) throw new Error('nothing pulled');
    return out.job.id;
  };

  const a = await push(h, 'ev', { data: { n: 1 } });
  await pull();
  await ok(broker.progress(a, { progress: 50 }, ctx));
  await ok(broker.ack(a, {}, ctx));
  const b = await push(h, 'ev', { data: {}, maxAttempts: 2, backoff: 60_000 });
  await pull();
  await ok(broker.fail(b, { error: 'boom' }, ctx));
  await ok(broker.cancel(b, ctx));
  const d = await push(h, 'ev', { data: {}, maxAttempts: 1 });
  t.equal(await pull(), d);
  await ok(broker.fail(d, { error: 'fatal' }, ctx));
  await ok(broker.retry(d, ctx));
  const c = await push(h, 'ev', { data: {}, uniqueKey: 'u1' });
  t.equal(await push(h, 'ev', { data: {}, uniqueKey: 'u1' }), c, 'duplicate push answers the holder id');
  await ok(broker.drain('ev', ctx));
  const parent = await push(h, 'ev', { data: {} });
  const child = await push(h, 'ev', { data: {}, dependsOn: [parent] });
  t.equal(await pull(200), parent);

  const expected: Array<[string, string | null, Ev?]> = [
    ['pushed', a, { data: { n: 1 } }],
    ['pulled', a],
    ['progress', a, { progress: 50 }],
    ['completed', a],
    ['pushed', b, { data: {} }],
    ['pulled', b],
    ['failed', b, { error: 'boom' }],
    ['delayed', b],
    ['removed', b, { prev: 'delayed' }],
    ['pushed', d, { data: {} }],
    ['pulled', d],
    ['failed', d, { error: 'fatal' }],
    ['retried', d, { prev: 'failed' }],
    ['pushed', c, { data: {} }],
    ['duplicated', c],
    ['removed', d, { prev: 'waiting' }],
    ['removed', c, { prev: 'waiting' }],
    ['drained', null],
    ['pushed', parent, { data: {} }],
    ['pushed', child, { data: {} }],
    ['waiting-children', child],
    ['pulled', parent],
    ['stalled', parent],
  ];
  const seen: Array<{ id: number; event: Ev }> = [];
  for (let i = 0; i < expected.length; i++) seen.push(await sse.nextEvent(5_000));
  const wsSeen: Ev[] = [];
  for (let i = 0; i < expected.length; i++) wsSeen.push(await ws.nextEvent(5_000));

  // The two removed events of the drain share one record; their order inside it is the broker's.
  const order = (list: Array<[string, string | null]>): string[] => list.map(([type, id]) => `${type}:${id}`);
  const sseOrder = order(seen.map((s) => [s.event.eventType as string, s.event.jobId as string | null]));
  const expectedOrder = order(expected.map(([type, id]) => [type, id]));
  t.strictSame([...sseOrder].sort(), [...expectedOrder].sort(), 'every expected event, nothing else');
  t.strictSame(sseOrder.slice(0, 15), expectedOrder.slice(0, 15), 'log order before the drain');
  t.strictSame(sseOrder.slice(17), expectedOrder.slice(17), 'log order after the drain');

  for (const [i, { id, event }] of seen.entries()) {
    const [type, jobId, extra] = expected.find(([ty, j]) => ty === event.eventType && j === event.jobId) ?? [];
    t.equal(event.queue, 'ev');
    t.type(event.timestamp, 'number');
    t.notOk('offset' in event, 'SSE data carries the offset only as its id');
    if (extra !== undefined) t.match(event, extra, `${type} ${jobId} extras`);
    const prev = seen[i - 1];
    if (prev !== undefined) t.ok(id >= prev.id, 'ids never go back');
    const wsEvent = wsSeen[i] as Ev;
    t.strictSame(wsEvent, { ...event, offset: id }, 'WS event = SSE data + offset');
  }
  const byType = (type: string): Array<{ id: number; event: Ev }> => seen.filter((s) => s.event.eventType === type);
  t.strictSame(Object.keys(byType('pushed')[0]?.event ?? {}), ['eventType', 'queue', 'jobId', 'timestamp', 'data']);
  t.equal(byType('delayed')[0]?.id, byType('failed')[0]?.id, 'failed and its delayed retry share a record');
  t.ok(((byType('delayed')[0]?.event.delay as number) ?? 0) > 0, 'delayed carries the backoff in ms');
  const removedInDrain = byType('removed').slice(1);
  t.equal(removedInDrain[0]?.id, removedInDrain[1]?.id, 'the drain removes both jobs in one record');
  t.ok((byType('drained')[0]?.id ?? 0) > (removedInDrain[0]?.id ?? 0), 'drained follows the removal');
  sse.close();
});

t.test('stalled-job-that-exhausts-its-stalls-emits-stalled-then-failed', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/st'));
  t.teardown(() => ws.close());
  const id = await push(h, 'st', { data: {} });
  let pulled = 0;
  // maxStalledDefault is 1: the first stall requeues, the second fails the job.
  for (let i = 0; i < 2; i++) {
    const out = await h.fixture.broker.pull('st', { timeoutMs: 5_000, lockMs: 100 }, ctx);
    if (out.ok && out.job !== null) pulled += 1;
  }
  t.equal(pulled, 2);
  const types: string[] = [];
  for (;;) {
    const e = await ws.nextEvent(5_000);
    t.equal(e.jobId, id);
    types.push(e.eventType as string);
    if (e.eventType === 'failed') break;
  }
  t.strictSame(types, ['pushed', 'pulled', 'stalled', 'pulled', 'stalled', 'failed']);
});
