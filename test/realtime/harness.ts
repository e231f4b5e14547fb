// A real broker on a real log (test/fixtures/broker.ts) behind buildServer with the real-time
// plugin, listening on 127.0.0.1:<random port>. `restart()` stops server, broker and log and
// reopens the same directory on a new port.

import type { Ctx } from '../../src/broker/types.js';
import { realtimePlugin, type RealtimeLimits } from '../../src/api/realtime/index.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type BrokerFixture, startBroker } from '../fixtures/broker.js';
import { startServer, type TestServer } from '../fixtures/server.js';
import type { Broker } from '../../src/broker/broker.js';
import { eventsOf } from '../../src/broker/events.js';

export interface RealtimeOptions {
  config?: Partial<Config>;
  limits?: Partial<RealtimeLimits>;
  lockMsDefault?: number;
}

export interface RealtimeHarness {
  fixture: BrokerFixture;
  server: TestServer<Broker>;
  /** `http://127.0.0.1:<port>` + path. */
  http(path: string): string;
  /** `ws://127.0.0.1:<port>` + path. */
  ws(path: string): string;
  restart(): Promise<RealtimeHarness>;
  close(): Promise<void>;
}

export const ctx: Ctx = { actor: null };

export async function startRealtime(opts: RealtimeOptions = {}, fixtureIn?: BrokerFixture): Promise<RealtimeHarness> {
  const fixture =
    fixtureIn ?? (await startBroker(opts.lockMsDefault !== undefined ? { lockMsDefault: opts.lockMsDefault } : {}));
  const config: Config = { ...loadConfig({}), ...opts.config };
  const realtime = realtimePlugin({
    broker: fixture.broker,
    log: fixture.log,
    config,
    ...(opts.limits !== undefined ? { limits: opts.limits } : {}),
  });
  const server = await startServer({ broker: fixture.broker, config, realtime });
  const harness: RealtimeHarness = {
    fixture,
    server,
    http: (path) => server.url + path,
    ws: (path) => server.url.replace('http://', 'ws://') + path,
    async restart() {
      await server.close();
      return startRealtime(opts, await fixture.restart());
    },
    async close() {
      await server.close();
      await fixture.cleanup();
    },
  };
  return harness;
}

/** Push one job straight through the broker; returns its id. */
export async function push(h: RealtimeHarness, queue: string, input: Record<string, unknown> = { data: {} }): Promise<string> {
  const out = await h.fixture.broker.push(queue, input, ctx);
  if (!out.ok) throw new Error(`push failed: ${out.error}`);
  return out.id;
}

/** Every event the log holds, as the real-time layer derives them (the expected stream). */
export async function eventsInLog(h: RealtimeHarness, queue: string | null = null): Promise<Array<{ offset: number; eventType: string; jobId: string | null }>> {
  const out: Array<{ offset: number; eventType: string; jobId: string | null }> = [];
  for await (const record of h.fixture.log.read(h.fixture.log.firstOffset)) {
    for (const e of eventsOf(record)) {
      if (queue === null || e.queue === queue) out.push({ offset: e.offset, eventType: e.eventType, jobId: e.jobId });
    }
  }
  return out;
}
