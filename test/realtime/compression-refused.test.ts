// The real-time plugin under a parent that registered @fastify/websocket itself: allowed without
// compression, refused with it (push replies are written as ready-made frames beside ws's sends).

import websocket from '@fastify/websocket';
import Fastify from 'fastify';
import t from 'tap';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { loadConfig } from '../../src/config.js';
import { startBroker } from '../fixtures/broker.js';

for (const perMessageDeflate of [false, true]) {
  t.test(`a-parent-websocket-registration-${perMessageDeflate ? 'with-compression-is-refused' : 'without-compression-is-used'}`, async (t) => {
    const fixture = await startBroker();
    t.teardown(() => fixture.cleanup());
    const app = Fastify();
    t.teardown(() => app.close());
    await app.register(websocket, { options: { perMessageDeflate } });
    const plugin = realtimePlugin({ broker: fixture.broker, log: fixture.log, config: loadConfig({}) });
    const registering = async (): Promise<void> => {
      await app.register(async (scope) => plugin(scope));
      await app.ready();
    };
    if (perMessageDeflate) await t.rejects(registering, /perMessageDeflate/);
    else await t.resolves(registering);
  });
}
