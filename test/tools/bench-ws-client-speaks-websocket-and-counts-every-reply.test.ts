// The load generator's own WebSocket client (tools/bench-ws-client.ts) against the `ws` library's
// server on loopback: its frames are masked client frames `ws` accepts (short, 16-bit and 64-bit
// lengths), each with a mask of its own; replies are matched by reqId in whatever order they come;
// a refused push is an error and not a job; it answers pings; a reply to no command, or a server
// that goes away, ends the run with an error instead of a hang.

import t, { type Test } from 'tap';
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { runSpec } from '../../tools/bench-loadgen.js';
import { WsLoadClient } from '../../tools/bench-ws-client.js';
import { tinyRun } from './bench-fixture.js';

t.setTimeout(60_000);
const run = tinyRun();

type Command = { cmd: string; reqId: string } & Record<string, unknown>;

/** A `ws` server on loopback that answers each command with `answer` (a reply text, or null for none). */
async function standIn(t: Test, answer: (command: Command, socket: WebSocket, raw: Buffer) => string | null): Promise<{ url: string; wss: WebSocketServer }> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (socket) => {
    socket.on('message', (raw: Buffer) => {
      const reply = answer(JSON.parse(raw.toString('utf8')) as Command, socket, raw);
      if (reply !== null) socket.send(reply);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  t.teardown(async () => {
    for (const client of wss.clients) client.terminate();
    wss.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  });
  return { url: `ws://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`, wss };
}

t.test('frames-of-every-length-class-reach-ws-intact-and-replies-match-by-reqid', async (t) => {
  const { url } = await standIn(t, (command) => JSON.stringify({ ok: true, echo: command['data'], reqId: command.reqId }));
  const client = await WsLoadClient.open(url);
  t.teardown(() => client.close());
  const sizes = [0, 1, 100, 125, 126, 1_000, 65_535, 65_536, 200_000];
  const replies = await Promise.all(sizes.map((n) => client.call<{ ok: boolean; echo: string }>(`{"cmd":"ECHO","data":"${'x'.repeat(n)}"`)));
  t.same(
    replies.map((r) => r.echo.length),
    sizes,
    'each reply is the one to its own command, whatever the frame header length',
  );
  t.equal(client.inFlight, 0, 'nothing is left waiting');
});

t.test('every-frame-has-its-own-mask', async (t) => {
  // The masking keys are bytes 2..5 of a short client frame (RFC 6455 5.3: unpredictable per frame).
  const masks = new Set<string>();
  const { url, wss } = await standIn(t, (command) => JSON.stringify({ ok: true, reqId: command.reqId }));
  wss.on('connection', (socket) => {
    const raw = (socket as unknown as { _socket: import('node:net').Socket })._socket;
    raw.prependListener('data', (chunk: Buffer) => {
      for (let at = 0; at + 6 <= chunk.length; ) {
        const length = chunk[at + 1]! & 0x7f;
        masks.add(chunk.subarray(at + 2, at + 6).toString('hex'));
        at += 6 + length;
      }
    });
  });
  const client = await WsLoadClient.open(url);
  t.teardown(() => client.close());
  await Promise.all(Array.from({ length: 64 }, () => client.call('{"cmd":"X"')));
  t.ok(masks.size >= 60, `64 frames in one write carry ${masks.size} distinct masks`);
});

t.test('a-push-run-counts-acknowledged-pushes-and-refused-ones-apart', async (t) => {
  // Every third push is refused, and replies come back in reverse order per batch of four (or of
  // what has come within 20 ms, so that the last commands of the run are answered too).
  let seen = 0;
  const held: { socket: WebSocket; text: string }[] = [];
  let timer: NodeJS.Timeout | null = null;
  const release = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    for (const h of held.splice(0).reverse()) h.socket.send(h.text);
  };
  t.teardown(() => {
    if (timer !== null) clearTimeout(timer);
  });
  const { url } = await standIn(t, (command, socket) => {
    seen += 1;
    const text = seen % 3 === 0 ? JSON.stringify({ ok: false, error: 'Queue is paused', reqId: command.reqId }) : JSON.stringify({ ok: true, id: `j${seen}`, reqId: command.reqId });
    held.push({ socket, text });
    if (held.length === 4) release();
    else timer ??= setTimeout(release, 20);
    return null;
  });
  const spec = { ...run.spec('ws-push', { connections: 1, pipeline: 4, warmupSeconds: 0, seconds: 0.3 }), url: url.replace(/^ws/, 'http') };
  const result = await runSpec(spec);
  t.ok(result.ops > 0, `${result.ops} acknowledged pushes counted`);
  t.ok(result.errors > 0, `${result.errors} refused pushes counted as errors`);
  t.ok(Math.abs(result.errors * 2 - result.ops) <= 4, 'one refused for two acknowledged, within the last batch');
  t.match(result.errorDetail, /the first: \{"ok":false,"error":"Queue is paused"/, 'the first refusal is quoted');
});

t.test('pings-are-answered', async (t) => {
  const { url, wss } = await standIn(t, (command) => JSON.stringify({ ok: true, reqId: command.reqId }));
  const pong = new Promise<Buffer>((resolve) => wss.on('connection', (socket) => socket.once('pong', resolve)));
  const client = await WsLoadClient.open(url);
  t.teardown(() => client.close());
  for (const socket of wss.clients) socket.ping(Buffer.from('are you there'));
  t.equal((await pong).toString(), 'are you there', 'the pong carries the ping payload');
  t.same(await client.call('{"cmd":"X"'), { ok: true, reqId: '0' }, 'and commands still work after it');
});

t.test('a-reply-to-no-command-fails-the-commands-in-flight', async (t) => {
  const { url } = await standIn(t, () => JSON.stringify({ ok: true, reqId: 'nobody' }));
  const client = await WsLoadClient.open(url);
  const reply = await client.call<{ ok: boolean; error: string }>('{"cmd":"X"');
  t.equal(reply.ok, false);
  t.match(reply.error, /a reply to no command sent/);
  t.equal(client.send('{"cmd":"X"', () => {}), false, 'nothing more is sent on a failed connection');
});

t.test('a-server-that-goes-away-ends-a-push-run-with-errors-not-a-hang', async (t) => {
  let seen = 0;
  const { url } = await standIn(t, (command, socket) => {
    if (++seen === 50) socket.terminate();
    return seen < 50 ? JSON.stringify({ ok: true, id: `j${seen}`, reqId: command.reqId }) : null;
  });
  const spec = { ...run.spec('ws-push', { connections: 1, pipeline: 8, warmupSeconds: 0, seconds: 5 }), url: url.replace(/^ws/, 'http') };
  const result = await runSpec(spec);
  t.ok(result.seconds < 4, `ended after ${result.seconds.toFixed(2)} s, not at the end of its 5 s`);
  t.equal(result.ops, 49, 'the 49 acknowledged pushes are counted');
  t.equal(result.errors, 8, 'the 8 commands in flight when it went are errors');
  t.match(result.errorDetail, /closed the WebSocket/);
});
