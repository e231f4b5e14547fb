// Commands arrive as JSON text. `ws` checks a text frame's UTF-8 and closes the socket (1007) when
// it is not; a binary frame's bytes reach the session unchecked. A binary frame holding UTF-8
// JSON is a command like any other, but one whose bytes are not UTF-8 is refused and runs nothing:
// decoded as they were, each bad byte became U+FFFD and the command ran on data it was not sent
// (a push stored "\ufffd\ufffd" for two bytes the client never meant as that text).

import t from 'tap';
import { WsClient } from './clients.js';
import { startRealtime } from './harness.js';

const notUtf8 = Buffer.from([0xff, 0xfe]);

t.test('a-binary-frame-that-is-not-utf8-is-refused-and-appends-nothing', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  t.teardown(() => ws.close());

  ws.socket.send(Buffer.from(JSON.stringify({ cmd: 'PUSH', queue: 'bin', data: 'é', reqId: 'utf8' })), { binary: true });
  const accepted = await ws.reply('utf8');
  t.match(accepted, { ok: true, id: String }, 'a binary frame of UTF-8 JSON is a command');
  t.equal(h.fixture.broker.getJob(accepted.id as string)?.data, 'é');

  const before = h.fixture.log.nextOffset;
  const bad = Buffer.concat([Buffer.from('{"cmd":"PUSH","queue":"bin","data":"'), notUtf8, Buffer.from('","reqId":"bad"}')]);
  ws.socket.send(bad, { binary: true });
  t.strictSame(
    await ws.inbox.find((m) => m.ok === false, 5_000, 'the refusal'),
    { ok: false, error: 'Invalid JSON: the message is not UTF-8 text' },
    'refused, not pushed with U+FFFD in its data',
  );
  t.equal(ws.inbox.all.filter((m) => m.reqId === 'bad').length, 0, 'no command ran');
  t.match(await ws.command({ cmd: 'PUSH', queue: 'bin', data: 2 }), { ok: true }, 'the socket goes on');
  t.equal(h.fixture.log.nextOffset, before + 1, 'only the last push appended');
});

t.test('a-text-frame-that-is-not-utf8-closes-the-socket-with-1007', async (t) => {
  const h = await startRealtime();
  t.teardown(() => h.close());
  const ws = await WsClient.connect(h.ws('/ws/queues/none'));
  const before = h.fixture.log.nextOffset;
  const bad = Buffer.concat([Buffer.from('{"cmd":"PUSH","queue":"txt","data":"'), notUtf8, Buffer.from('"}')]);
  ws.socket.send(bad, { binary: false });
  t.equal((await ws.closed).code, 1007, 'invalid frame payload data (RFC 6455)');
  t.equal(h.fixture.log.nextOffset, before, 'nothing appended');
});
