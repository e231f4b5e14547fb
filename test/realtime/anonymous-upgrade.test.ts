// With AUTH_TOKENS set, a WebSocket upgrade without an Authorization header is accepted (it may
// authenticate with the Auth command), but it learns nothing before it does: a bad queue name or
// resume offset is answered 401, as SSE answers any request without a token, not 400 with a
// message that names the log's last offset (which a client without a token could probe to
// follow the broker's activity). With a valid header the 400 says what is wrong, as before.

import t from 'tap';
import { SseClient, UpgradeRefused, WsClient } from './clients.js';
import { push, startRealtime } from './harness.js';

const token = 'tok-anon';

t.test('an-upgrade-without-a-token-gets-401-not-the-parameter-error', async (t) => {
  const h = await startRealtime({ config: { authTokens: [token] } });
  t.teardown(() => h.close());
  await push(h, 'q', { data: 1 });
  await push(h, 'q', { data: 2 });
  const status = async (path: string, headers: Record<string, string> = {}): Promise<number> => {
    const out = await WsClient.connect(h.ws(path), headers).catch((e: unknown) => e);
    if (out instanceof UpgradeRefused) return out.status;
    if (out instanceof WsClient) {
      await out.close();
      return 101;
    }
    throw out;
  };
  const bad = ['/ws?from=2', '/ws?from=99', '/ws?from=x', '/ws/queues/bad%20name'];
  for (const path of bad) t.equal(await status(path), 401, `${path} without a token`);
  for (const path of bad) t.equal(await status(path, { authorization: `Bearer ${token}` }), 400, `${path} with one`);
  for (const path of bad) {
    const sse = await SseClient.connect(h.http(path.replace('/ws', '/events')));
    t.equal(sse.status, 401, `SSE ${path} without a token`);
    sse.close();
  }
  t.equal(await status('/ws?from=1'), 101, 'good parameters: accepted, to authenticate with Auth');

  // Without AUTH_TOKENS there is nobody to hide from: the 400 as before.
  const open = await startRealtime();
  t.teardown(() => open.close());
  const refused = await WsClient.connect(open.ws('/ws?from=5')).catch((e: unknown) => e);
  t.equal((refused as UpgradeRefused).status, 400);
});
