// Resume: a client reconnecting with Last-Event-ID (SSE) or ?from (WS) gets every event after that
// offset exactly once, history from disk then the live tail, also across a broker restart.
// The randomized test prints its seed; rerun with SEED=<n> to replay it.

import t from 'tap';
import { SseClient, WsClient } from './clients.js';
import { eventsInLog, push, type RealtimeHarness, startRealtime } from './harness.js';

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

t.test('thousand-random-sse-reconnects-miss-nothing-and-repeat-nothing', async (t) => {
  const seed = process.env.SEED !== undefined ? Number(process.env.SEED) : Date.now() % 2_147_483_647;
  t.comment(`seed ${seed}`);
  const random = mulberry32(seed);
  const h = await startRealtime();
  t.teardown(() => h.close());
  const total = 2_000;
  const received: number[] = [];
  let last: number | null = null;
  let producer: Promise<void> | null = null;

  for (let round = 0; round < 1_000; round++) {
    // Reconnect the way EventSource does: same URL (with a stale ?from), Last-Event-ID header.
    const headers: Record<string, string> = last === null ? {} : { 'last-event-id': String(last) };
    const sse = await SseClient.connect(h.http(round % 2 === 0 ? '/events' : '/events?from=0'), headers);
    await sse.inbox.take(undefined, 5_000, 'connected');
    producer ??= produce(h, total, random);
    const want = round === 0 ? 1 : Math.floor(random() * 7);
    for (let i = 0; i < want && received.length < total; i++) {
      const { id } = await sse.nextEvent(5_000);
      received.push(id);
      last = id;
    }
    sse.close();
  }
  await producer;
  const sse = await SseClient.connect(h.http('/events'), { 'last-event-id': String(last) });
  while (received.length < total) received.push((await sse.nextEvent(5_000)).id);
  sse.close();

  const expected = (await eventsInLog(h)).map((e) => e.offset);
  t.equal(expected.length, total);
  t.ok(received.every((id, i) => i === 0 || id > (received[i - 1] as number)), 'strictly increasing, no duplicate');
  t.strictSame(received, expected, 'exactly the log’s events, no gap');
});

/** Pushes `total` jobs in small concurrent bursts with random pauses, so reconnects land both
 * in history and at the live edge. */
async function produce(h: RealtimeHarness, total: number, random: () => number): Promise<void> {
  for (let sent = 0; sent < total; ) {
    const burst = Math.min(total - sent, 1 + Math.floor(random() * 8));
    await Promise.all(Array.from({ length: burst }, (_, i) => push(h, `r${(sent + i) % 3}`, { data: sent + i })));
    sent += burst;
    if (random() < 0.2) await new Promise((r) => setTimeout(r, Math.floor(random() * 3)));
  }
}

t.test('resume-across-a-broker-restart-reads-old-events-from-disk-then-live', async (t) => {
  let h = await startRealtime();
  t.teardown(() => h.close());
  const before = [await push(h, 'rs', { data: 0 }), await push(h, 'rs', { data: 1 }), await push(h, 'rs', { data: 2 })];
  const sse = await SseClient.connect(h.http('/events/queues/rs?from=0'));
  const seen: Array<{ id: number; jobId: unknown }> = [];
  // ?from=0 means "after offset 0": the first push (offset 0) is not repeated.
  for (let i = 0; i < 2; i++) {
    const e = await sse.nextEvent();
    seen.push({ id: e.id, jobId: e.event.jobId });
  }
  t.strictSame(seen.map((s) => s.jobId), before.slice(1));

  h = await h.restart();
  await sse.closed;
  t.pass('an open stream is ended when the server stops');
  const after = [await push(h, 'rs', { data: 3 }), await push(h, 'rs', { data: 4 })];

  const lastId = seen[1]?.id as number;
  const resumed = await SseClient.connect(h.http('/events/queues/rs'), { 'last-event-id': String(lastId) });
  const got = [(await resumed.nextEvent()).event.jobId, (await resumed.nextEvent()).event.jobId];
  t.strictSame(got, after, 'only what came after the last id');
  const fromMiddle = await SseClient.connect(h.http('/events/queues/rs'), { 'last-event-id': String(seen[0]?.id) });
  const all = [];
  for (let i = 0; i < 3; i++) all.push((await fromMiddle.nextEvent()).event.jobId);
  t.strictSame(all, [before[2], ...after], 'pre-restart history from disk, then post-restart records');
  const live = await push(h, 'rs', { data: 5 });
  t.equal((await resumed.nextEvent()).event.jobId, live, 'then the live tail');
  t.equal((await fromMiddle.nextEvent()).event.jobId, live);
  resumed.close();
  fromMiddle.close();

  const ws = await WsClient.connect(h.ws(`/ws/queues/rs?from=${lastId}`));
  t.teardown(() => ws.close());
  const wsGot = [await ws.nextEvent(), await ws.nextEvent(), await ws.nextEvent()];
  t.strictSame(wsGot.map((e) => e.jobId), [...after, live], 'WS ?from has the same meaning');
  t.ok(wsGot.every((e, i) => typeof e.offset === 'number' && (i === 0 || e.offset > (wsGot[i - 1]?.offset as number))));
});

t.test('an-eventsource-that-reconnects-before-its-first-event-misses-nothing', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  await push(h, 'other', { data: 0 });
  // An EventSource sends Last-Event-ID only once a message gave it an id.
  const reconnect = async (lastEventId: string | null): Promise<SseClient> => {
    const sse = await SseClient.connect(h.http('/events/queues/quiet'), lastEventId === null ? {} : { 'last-event-id': lastEventId });
    return sse;
  };
  const first = await reconnect(null);
  const hello = await first.inbox.take(undefined, 5_000, 'connected');
  t.match(JSON.parse(hello.data), { connected: true });
  first.close();
  await first.closed;
  const missed = [await push(h, 'quiet', { data: 1 }), await push(h, 'quiet', { data: 2 })];
  const second = await reconnect(hello.id);
  t.teardown(() => second.close());
  await second.inbox.take(undefined, 5_000, 'connected');
  const live = await push(h, 'quiet', { data: 3 });
  const got = [];
  for (let i = 0; i < 3; i++) got.push((await second.nextEvent()).event.jobId);
  t.strictSame(got, [...missed, live], 'the events pushed while it was away, then the live one');
});

t.test('from-minus-one-replays-the-whole-log-including-offset-0', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const empty = await SseClient.connect(h.http('/events'));
  t.equal(empty.status, 200);
  const hello = await empty.inbox.take(undefined, 5_000, 'connected');
  t.equal(hello.id, '-1', 'on an empty log the stream starts before offset 0');
  empty.close();
  const ids = [await push(h, 'all', { data: 0 }), await push(h, 'all', { data: 1 })];
  const sse = await SseClient.connect(h.http('/events'), { 'last-event-id': '-1' });
  t.teardown(() => sse.close());
  t.strictSame([(await sse.nextEvent()).event.jobId, (await sse.nextEvent()).event.jobId], ids, 'Last-Event-ID -1');
  const ws = await WsClient.connect(h.ws('/ws?from=-1'));
  t.teardown(() => ws.close());
  const first = await ws.nextEvent();
  t.match(first, { jobId: ids[0], offset: 0 }, '?from=-1 on a WebSocket');
});
