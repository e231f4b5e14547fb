// With AUTH_TOKENS set, a WebSocket upgrade without an Authorization header is accepted (it may
// authenticate with the Auth command), but it learns nothing before it does. A malformed queue
// name or `?from` is answered 401, as SSE answers any request without a token, and a `?from`
// past the log's end is refused only at Auth: a 400 naming the log's last offset, or a 400 for
// one offset and a 101 for the next, would let a client without a token follow the broker's
// activity. With a valid header the 400 says what is wrong, as before.

import t from 'tap';
import { SseClient, UpgradeRefused, WsClient } from './clients.js';
import { push, startRealtime } from './harness.js';

const token = 'tok-anon';

t.test('an-upgrade-without-a-token-learns-nothing-of-the-log-before-auth', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  await push(h, 'q', { data: 1 });
  await push(h, 'q', { data: 2 });
  const connect = async (path: string, headers: Record<string, string> = {}): Promise<WsClient | number> => {
    const out = await WsClient.connect(h.ws(path), headers).catch((e: unknown) => e);
    if (out instanceof UpgradeRefused) return out.status;
    if (out instanceof WsClient) return out;
    throw out;
  };
  const status = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
    const out = await connect(path, headers);
    if (typeof out === 'number') return out;
    await out.close();
    return 101;
  };
  const malformed = ['/ws?from=x', '/ws?from=-2', '/ws/queues/bad%20name'];
  for (const path of malformed) t.equal(await status(path), 401, `${path} without a token`);
  for (const path of ['/ws?from=1', '/ws?from=2', '/ws?from=99']) t.equal(await status(path), 101, `${path} without a token: the same answer`);
  for (const path of [...malformed, '/ws?from=2', '/ws?from=99']) {
    t.equal(await status(path, { authorization: `Bearer ${token}` }), 400, `${path} with a token`);
  }
  for (const path of [...malformed, '/ws?from=99']) {
    const sse = await SseClient.connect(h.http(path.replace('/ws', '/events')));
    t.equal(sse.status, 401, `SSE ${path} without a token`);
    sse.close();
  }

  // Past the end: the Auth says so, and the socket is closed.
  const late = await connect('/ws?from=99');
  if (typeof late === 'number') throw new Error(`refused ${late}`);
  const refused = await late.command({ cmd: 'Auth', token });
  t.strictSame(refused, { ok: false, error: 'from 99 is beyond the end of the log (its last offset is 1)', reqId: refused.reqId });
  t.match(await late.closed, { code: 1008, reason: 'Invalid resume offset' });

  // A good offset: the stream starts after it once Auth succeeds.
  const good = await connect('/ws?from=0');
  if (typeof good === 'number') throw new Error(`refused ${good}`);
  t.teardown(() => good.close());
  t.match(await good.command({ cmd: 'Auth', token: 'wrong' }), { ok: false, error: 'Invalid token' });
  t.match(await good.command({ cmd: 'Auth', token }), { ok: true });
  t.match(await good.nextEvent(), { eventType: 'pushed', offset: 1, data: 2 });

  // Without AUTH_TOKENS there is nobody to hide from: the 400 as before.
  const open = await startRealtime();
  t.teardown(() => open.close());
  const bad = await WsClient.connect(open.ws('/ws?from=5')).catch((e: unknown) => e);
  t.equal((bad as UpgradeRefused).status, 400);
});
