// WebSocket commands: pipelining with reqId correlation, every command against the real broker,
// error replies, the in-flight cap, and the release of pulled jobs when the socket closes.

import { once } from 'node:events';
import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { shutdownGraceMs, workerShutdownGraceMs } from '../../src/constants.js';
import { connections } from '../../src/api/connections.js';
import { WsClient } from './clients.js';
import { startBroker, type BrokerFixture } from '../fixtures/broker.js';
import { push, startRealtime } from './harness.js';

/** A reply without its reqId (WsClient.command already matched it). */
function bare(reply: Record<string, unknown>): Record<string, unknown> {
  const { reqId, ...rest } = reply;
  return typeof reqId === 'string' ? rest : reply;
}

/** A WebSocket client of a broker whose syncs wait until `release` is called. */
async function behindAHeldSync(t: Test): Promise<{ fixture: BrokerFixture; ws: WsClient; release: () => void }> {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const fixture = await startBroker({
    sync: 'always',
    fsHooks: {
      datasync: async (_file, real) => {
        await held;
        await real();
      },
    },
  });
  const h = await startRealtime({}, fixture);
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  return { fixture, ws, release };
}

t.test('hundred-pipelined-pushes-each-reply-carries-its-reqId', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  for (let i = 0; i < 100; i++) ws.send({ cmd: 'PUSH', queue: 'pipe', data: { i }, reqId: `p${i}` });
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => ws.reply(`p${i}`)));
  t.ok(replies.every((r) => r.ok === true && typeof r.id === 'string'));
  t.equal(new Set(replies.map((r) => r.id)).size, 100, 'distinct ids');
  const replyCount = ws.inbox.all.filter((m) => typeof m.reqId === 'string').length;
  t.equal(replyCount, 100, 'exactly one reply per command');
  for (const [i, r] of replies.entries()) t.match(h.fixture.broker.getJob(r.id as string), { data: { i } });
  const bulk = await ws.command({ cmd: 'PUSHB', queue: 'pipe', jobs: [{ data: 1 }, { name: 'n', data: 2, opts: { attempts: 2 } }] });
  t.match(bulk, { ok: true, ids: [String, String] });
});

t.test('pushes-waiting-on-one-sync-are-answered-in-command-order-and-refusals-at-once', async (t) => {
  const { fixture, ws, release } = await behindAHeldSync(t);
  const refused = [5, 15, 25, 35];
  const valid = Array.from({ length: 40 }, (_, i) => i).filter((i) => !refused.includes(i));
  for (let i = 0; i < 40; i++) {
    ws.send(refused.includes(i) ? { cmd: 'PUSH', queue: 'grp', data: i, priority: 'high', reqId: i } : { cmd: 'PUSH', queue: 'grp', data: { i }, reqId: i });
  }
  for (const i of refused) t.match(await ws.reply(i), { ok: false, error: /priority/ }, `push ${i} is refused while the others wait`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(ws.inbox.all.filter((m) => m.ok === true).length, 0, 'no push is answered before the sync that covers it');
  release();
  const replies = await Promise.all(valid.map((i) => ws.reply(i)));
  t.ok(replies.every((r) => r.ok === true && typeof r.id === 'string'), 'every valid push succeeds');
  t.strictSame(
    ws.inbox.all.filter((m) => m.ok === true).map((m) => m.reqId),
    valid,
    'answered in the order the commands came',
  );
  for (const [k, i] of valid.entries()) t.match(fixture.broker.getJob(replies[k]?.id as string), { data: { i } }, `push ${i} got its own id`);
});

t.test('replies-of-one-sync-arrive-in-order-and-intact-whether-framed-in-one-write-or-through-ws', async (t) => {
  const { fixture, ws, release } = await behindAHeldSync(t);
  // ASCII replies are framed by the session in one write; a non-ASCII one and one of 64 KiB or
  // more go through ws between them (frames.ts). Lengths around 125/126 and 65,535 bytes test
  // the one- and two-byte length forms.
  const reqIds = ['a', 'é', 'x'.repeat(90), 'x'.repeat(91), '日本', 'y'.repeat(65_490), 'z'.repeat(65_600), 'b', { n: 'ü' }, 'c'];
  for (const [i, reqId] of reqIds.entries()) ws.send({ cmd: 'PUSH', queue: 'frames', data: { i }, reqId });
  await new Promise((resolve) => setTimeout(resolve, 50));
  release();
  const replies = await Promise.all(reqIds.map((reqId) => ws.inbox.find((m) => JSON.stringify(m.reqId) === JSON.stringify(reqId), 5_000, 'a reply')));
  t.strictSame(
    ws.inbox.all.map((m) => m.reqId),
    reqIds,
    'one reply per push, in command order',
  );
  for (const [i, reply] of replies.entries()) t.match(fixture.broker.getJob(reply.id as string), { data: { i } }, `reply ${i} names its own job`);
});

t.test('a-failed-sync-answers-every-push-waiting-on-it-with-the-storage-error', async (t) => {
  let failing = false;
  const fixture = await startBroker({
    sync: 'always',
    fsHooks: {
      datasync: async (_file, real) => {
        if (failing) throw Object.assign(new Error('injected EIO'), { code: 'EIO' });
        await real();
      },
    },
  });
  const h = await startRealtime({}, fixture);
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  t.match(await ws.command({ cmd: 'PUSH', queue: 'eio', data: 0 }), { ok: true }, 'a push before the fault succeeds');
  failing = true;
  for (let i = 0; i < 20; i++) ws.send({ cmd: 'PUSH', queue: 'eio', data: { i }, reqId: `f${i}` });
  const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => ws.reply(`f${i}`)));
  for (const [i, reply] of replies.entries()) t.match(reply, { ok: false, error: /Storage failure/ }, `push ${i} is not acknowledged`);
});

t.test('a-reqId-of-any-json-type-comes-back-unchanged-on-success-and-error-replies', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const reqIds = [7, 0, -1.5, true, false, null, 'with "quotes" and \\ and é', { a: [1, { b: null }] }, [1, 'x'], ''];
  for (const [i, reqId] of reqIds.entries()) {
    ws.send({ cmd: 'PUSH', queue: 'ids', data: { i }, reqId });
    const reply = await ws.inbox.take((m) => 'reqId' in m && JSON.stringify(m.reqId) === JSON.stringify(reqId), 5_000, `reply to ${JSON.stringify(reqId)}`);
    t.match(reply, { ok: true, id: String }, `push with reqId ${JSON.stringify(reqId)}`);
    t.strictSame(reply.reqId, reqId);
  }
  ws.send({ cmd: 'GETJOB', id: 'missing', reqId: { n: 1 } });
  const missing = await ws.inbox.take((m) => JSON.stringify(m.reqId) === '{"n":1}', 5_000, 'GETJOB reply');
  t.strictSame(missing, { ok: false, error: 'Job not found', reqId: { n: 1 } }, 'an error reply carries it too');
});

t.test('job-lifecycle-commands-and-their-error-replies', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws'));
  t.teardown(() => ws.close());
  const { id } = (await ws.command({ cmd: 'PUSH', queue: 'life', data: { x: 1 }, priority: 5, tags: ['t'] })) as { id: string };
  t.match(await ws.command({ cmd: 'GetJob', id }), { ok: true, job: { id, queue: 'life', priority: 5, tags: ['t'] } }, 'case-insensitive');
  const pulled = await ws.command({ cmd: 'PULL', queue: 'life', timeout: 1_000 });
  t.match(pulled, { ok: true, job: { id }, token: String });
  t.strictSame(bare(await ws.command({ cmd: 'PROGRESS', id, progress: 40, message: 'almost' })), { ok: true });
  t.strictSame(bare(await ws.command({ cmd: 'ACK', id, token: 'not-the-lock' })), { ok: false, error: 'Lock token mismatch' });
  t.strictSame(bare(await ws.command({ cmd: 'ACK', id, result: { done: true }, token: pulled.token })), { ok: true });
  t.match(h.fixture.broker.getJob(id), { state: 'completed', result: { done: true }, progress: 40 });
  t.strictSame(bare(await ws.command({ cmd: 'ACK', id })), { ok: false, error: 'Job not found or not active' });

  const second = await push(h, 'life', { data: {}, maxAttempts: 1 });
  t.match(await ws.command({ cmd: 'PULL', queue: 'life' }), { ok: true, job: { id: second } });
  t.match(await ws.command({ cmd: 'FAIL', id: second, error: 'nope' }), { ok: true });
  t.match(h.fixture.broker.getJob(second), { state: 'failed', failedReason: 'nope' });
  const third = await push(h, 'life', { data: {} });
  t.match(await ws.command({ cmd: 'CANCEL', id: third }), { ok: true });
  t.equal(h.fixture.broker.getJob(third), null);
  t.match(await ws.command({ cmd: 'PULL', queue: 'life' }), { ok: true, job: null, token: null }, 'empty queue');

  t.strictSame(bare(await ws.command({ cmd: 'GETJOB', id: 'missing' })), { ok: false, error: 'Job not found' });
  t.strictSame(bare(await ws.command({ cmd: 'NOPE' })), { ok: false, error: 'Unknown command: NOPE' });
  t.strictSame(bare(await ws.command({ cmd: 'PUSH', data: 1 })), { ok: false, error: 'queue is required' });
  t.strictSame(bare(await ws.command({ cmd: 'PROGRESS', id })), { ok: false, error: 'progress is required (a number)' });
  t.strictSame(bare(await ws.command({ cmd: 'PROGRESS', id, progress: 'a' })), { ok: false, error: 'progress must be a number' });
  t.strictSame(bare(await ws.command({ cmd: 'PUSHB', queue: 'q', jobs: 'x' })), { ok: false, error: 'jobs must be an array' });
  t.strictSame(bare(await ws.command({ cmd: 'PUSHB', queue: 'q' })), { ok: false, error: 'jobs is required (an array)' });
  t.strictSame(bare(await ws.command({ reqId: 'x' })), { ok: false, error: 'cmd is required' });
  t.strictSame(bare(await ws.command({ cmd: 5 })), { ok: false, error: 'cmd must be a string' });
  t.strictSame(bare(await ws.command({ cmd: 'PUSH', queue: 7, data: 1 })), { ok: false, error: 'queue must be a string' });
  const badOption = await ws.command({ cmd: 'PUSH', queue: 'life', data: 1, bogus: true });
  t.match(badOption, { ok: false, error: /bogus/, reqId: String }, "the broker's validation text");
  t.notOk('code' in badOption, 'internal codes stay internal');
  ws.send('{not json');
  t.strictSame(await ws.inbox.find((m) => m.error === 'Invalid JSON'), { ok: false, error: 'Invalid JSON' });
  ws.send('[1,2]');
  t.match(await ws.inbox.find((m) => /expected a JSON object/.test(String(m.error))), { ok: false });
});

t.test('a-push-with-a-__proto__-field-is-refused-and-appends-nothing', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const before = h.fixture.log.nextOffset;
  // Raw text: JSON.stringify drops a literal's __proto__, JSON.parse makes it an own field.
  ws.send('{"cmd":"PUSH","queue":"p","__proto__":{"data":1},"reqId":"a"}');
  t.strictSame(await ws.reply('a'), { ok: false, error: '__proto__ is not an allowed field', reqId: 'a' }, 'not a job with data taken from a prototype');
  ws.send('{"cmd":"PUSH","queue":"p","data":2,"__proto__":{"priority":1},"reqId":"b"}');
  t.strictSame(await ws.reply('b'), { ok: false, error: '__proto__ is not an allowed field', reqId: 'b' });
  ws.send('{"cmd":"PUSHB","queue":"p","jobs":[{"data":3},{"data":4,"__proto__":{}}],"reqId":"c"}');
  t.match(await ws.reply('c'), { ok: false, error: 'jobs[1].__proto__ is not an allowed field' }, 'in a bulk too, all or nothing');
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
});

t.test('a-fail-reason-over-4096-characters-is-refused-as-over-http-and-appends-nothing', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const id = await push(h, 'f', { data: 1 });
  t.match(await ws.command({ cmd: 'PULL', queue: 'f' }), { ok: true, job: { id } });
  const before = h.fixture.log.nextOffset;
  const refused = await ws.command({ cmd: 'FAIL', id, error: 'x'.repeat(4097) });
  t.strictSame(bare(refused), { ok: false, error: 'error must be at most 4096 characters' }, 'not stored cut to 4096');
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
  t.match(h.fixture.broker.getJob(id), { state: 'active' });
  t.strictSame(bare(await ws.command({ cmd: 'FAIL', id, error: 'x'.repeat(4096) })), { ok: true }, 'the limit itself is fine');
  t.equal(h.fixture.broker.getJob(id)?.failedReason, 'x'.repeat(4096));
});

t.test('a-command-the-broker-throws-on-is-answered-as-an-internal-error-and-the-session-goes-on', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  const broker = h.fixture.broker;
  const real = { pushNow: broker.pushNow, ack: broker.ack };
  broker.pushNow = () => {
    throw new Error('injected push bug');
  };
  broker.ack = () => {
    throw new Error('injected ack bug');
  };
  t.strictSame(bare(await ws.command({ cmd: 'PUSH', queue: 'bug', data: 1 })), { ok: false, error: 'Internal server error' });
  t.strictSame(bare(await ws.command({ cmd: 'ACK', id: 'x' })), { ok: false, error: 'Internal server error' });
  Object.assign(broker, real);
  t.match(await ws.command({ cmd: 'PUSH', queue: 'bug', data: 2 }), { ok: true, id: String }, 'the same socket still works');
  t.match(await ws.command({ cmd: 'PUSH', queue: 'bug', data: 3 }), { ok: true }, 'and its in-flight count was not leaked');
});

t.test('in-flight-commands-beyond-the-cap-are-refused', async (t) => {
  const h = await startRealtime({ limits: { wsInflightMax: 2 } });
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());
  ws.send({ cmd: 'PULL', queue: 'cap', timeout: 5_000, reqId: 'w1' });
  ws.send({ cmd: 'PULL', queue: 'cap', timeout: 5_000, reqId: 'w2' });
  ws.send({ cmd: 'PUSH', queue: 'cap', data: 1, reqId: 'over' });
  t.strictSame(await ws.reply('over'), { ok: false, error: 'Too many in-flight commands', reqId: 'over' });
  const a = await push(h, 'cap', { data: 'a' });
  const b = await push(h, 'cap', { data: 'b' });
  const got = [await ws.reply('w1'), await ws.reply('w2')].map((r) => (r.job as { id: string }).id).sort();
  t.strictSame(got, [a, b].sort(), 'the long polls complete');
  t.match(await ws.command({ cmd: 'PUSH', queue: 'cap', data: 2 }), { ok: true }, 'room again once they replied');
});

t.test('jobs-pulled-over-a-socket-are-released-when-it-closes', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const wsBefore = connections.ws;
  const ws = await WsClient.connect(h.ws('/ws'));
  t.equal(connections.ws, wsBefore + 1);
  const id = await push(h, 'rel', { data: {} });
  const other = await push(h, 'rel', { data: {} });
  t.match(await ws.command({ cmd: 'PULL', queue: 'rel' }), { ok: true, job: { id } });
  t.match(await ws.command({ cmd: 'PULL', queue: 'rel' }), { ok: true, job: { id: other } });
  t.match(await ws.command({ cmd: 'ACK', id: other }), { ok: true }, 'a finished job is not released');
  t.equal(h.fixture.broker.jobState(id), 'active');
  await ws.close();
  // The release is applied when appended and readable once durable: wait for the record.
  const releasedRecords = async (): Promise<unknown[]> => {
    const out: unknown[] = [];
    for await (const record of h.fixture.log.read(h.fixture.log.firstOffset)) {
      if (record.body.type === 'released') out.push(record.body);
    }
    return out;
  };
  let released = await releasedRecords();
  for (const deadline = Date.now() + 5_000; released.length === 0 && Date.now() < deadline; released = await releasedRecords()) {
    await new Promise((r) => setTimeout(r, 10));
  }
  t.equal(h.fixture.broker.jobState(id), 'waiting', 'back in its queue');
  t.equal(h.fixture.broker.jobState(other), 'completed');
  t.equal(connections.ws, wsBefore);
  t.equal(released.length, 1, 'one released record');
  t.match(released[0], { queue: 'rel', jobId: id, reason: 'connection closed' });
  const again = await WsClient.connect(h.ws('/ws'));
  t.teardown(() => again.close());
  t.match(await again.command({ cmd: 'PULL', queue: 'rel' }), { ok: true, job: { id } }, 'another client can take it');
});

t.test('jobs-pulled-over-a-socket-are-released-when-the-server-shuts-down', async (t) => {
  let h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws'));
  const id = await push(h, 'down', { data: {} });
  t.match(await ws.command({ cmd: 'PULL', queue: 'down' }), { ok: true, job: { id } });
  // What main.ts does on SIGTERM: the server closes, then the broker and the log. The client's
  // close frame can arrive after the broker has closed.
  h.fixture.broker.beginShutdown();
  h = await h.restart();
  t.equal((await ws.closed).code, 1001);
  t.equal(h.fixture.broker.jobState(id), 'waiting', 'back in its queue after the restart, not active until its lock expires');
  const released = [];
  for await (const record of h.fixture.log.read(h.fixture.log.firstOffset)) if (record.body.type === 'released') released.push(record.body);
  t.match(released, [{ queue: 'down', jobId: id, reason: 'server shutting down' }], 'one released record');
});

t.test('a-peer-that-never-answers-the-close-frame-does-not-hold-the-shutdown-past-its-limit', async (t) => {
  const h = await startRealtime();
  let closed = false;
  t.teardown(() => (closed ? undefined : h.close()));
  // A raw client: it completes the upgrade, then reads nothing and never sends a close frame.
  const url = new URL(h.ws('/ws/queues/quiet'));
  const socket = connect(Number(url.port), '127.0.0.1');
  t.teardown(() => socket.destroy());
  socket.on('error', () => undefined);
  socket.write(
    `GET ${url.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  const [head] = (await once(socket, 'data')) as [Buffer];
  t.match(head.toString('latin1'), /^HTTP\/1\.1 101 /, 'upgraded');
  socket.pause();
  const started = performance.now();
  await h.close();
  closed = true;
  const ms = performance.now() - started;
  t.ok(ms < shutdownGraceMs - workerShutdownGraceMs, `the server closed in ${ms.toFixed(0)} ms, within what the shutdown leaves it`);
});

t.test('a-socket-that-stops-answering-pings-is-closed-and-its-jobs-released', async (t) => {
  const h = await startRealtime({ limits: { wsPingMs: 100 } });
  t.teardown(() => h.close());
  const wsBefore = connections.ws;
  const alive = await WsClient.connect(h.ws('/ws/queues/quiet'));
  t.teardown(() => alive.close());
  const gone = await WsClient.connect(h.ws('/ws/queues/quiet'));
  const id = await push(h, 'hb', { data: {} });
  t.match(await gone.command({ cmd: 'PULL', queue: 'hb' }), { ok: true, job: { id } });
  // A peer that vanished without closing (a dropped NAT mapping, a host powered off) reads
  // nothing and answers nothing; pausing the client's socket looks the same from the server.
  gone.socket.pause();
  for (const deadline = Date.now() + 5_000; connections.ws !== wsBefore + 1 && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal(connections.ws, wsBefore + 1, 'the silent socket was closed');
  for (const deadline = Date.now() + 5_000; h.fixture.broker.jobState(id) !== 'waiting' && Date.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.equal(h.fixture.broker.jobState(id), 'waiting', 'its job is back in its queue');
  t.match(await alive.command({ cmd: 'GETJOB', id }), { ok: true }, 'a socket that answers pings stays open');
  gone.socket.terminate();
});
