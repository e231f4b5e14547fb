// A WebSocket upgrade request that is answered with an HTTP response instead of being upgraded
// (an unknown path, a route that is not a WebSocket one, a rate-limited upgrade) must have its
// connection closed by the server once the answer is written. Node hands an upgrade's socket over
// and stops managing it: left open, it sat in CLOSE_WAIT after the client hung up, one descriptor
// lost per refused upgrade, and fastify's close waited for it for ever (the process then emptied
// its event loop and exited 0 without having synced and closed the log).

import { connect } from 'node:net';
import t, { type Test } from 'tap';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { type Config, loadConfig } from '../../src/config.js';
import { startBroker } from '../fixtures/broker.js';
import { readUntilClosed, startServer } from '../fixtures/server.js';

const upgradeHeaders =
  'Host: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';

async function realtimeServer(t: Test, overrides: Partial<Config> = {}) {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const config: Config = { ...loadConfig({}), ...overrides };
  return startServer({ broker: fx.broker, config, realtime: realtimePlugin({ broker: fx.broker, log: fx.log, config }) });
}

/** Sends an upgrade request for `path` and returns everything the server wrote before it closed
 *  the connection (rejects when the server leaves it open for 5 s). */
async function upgrade(url: string, path: string): Promise<string> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1');
  const received = readUntilClosed(socket);
  socket.write(`GET ${path} HTTP/1.1\r\n${upgradeHeaders}`);
  return received;
}

/** `closing`, or a rejection after `ms`; the timer is cleared so it never holds the process. */
async function closesWithin(closing: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([closing, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('close hung')), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

t.test('an-upgrade-answered-over-http-has-its-connection-closed', async (t) => {
  const s = await realtimeServer(t);
  t.match(await upgrade(s.url, '/no-such-path'), /^HTTP\/1\.1 404 [^]*"Not found"/, 'unknown path: 404, then closed');
  t.match(await upgrade(s.url, '/health'), /^HTTP\/1\.1 200 [^]*"status":"healthy"/, 'an HTTP route: its answer, then closed');
  await t.resolves(closesWithin(s.close(), 5_000), 'the server closes');
});

t.test('a-rate-limited-websocket-upgrade-is-answered-429-and-its-connection-closed', async (t) => {
  const s = await realtimeServer(t, { rateLimitMaxRequests: 1 });
  t.match(await upgrade(s.url, '/health'), /^HTTP\/1\.1 200 /, 'probes are not counted');
  t.equal((await s.request('GET', '/stats')).status, 200, 'the one request the window allows');
  t.match(await upgrade(s.url, '/ws'), /^HTTP\/1\.1 429 [^]*"Rate limit exceeded"/);
  await t.resolves(closesWithin(s.close(), 5_000), 'the server closes');
});
