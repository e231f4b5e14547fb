// WebSocket and SSE scenario: pipelined PUSH over WebSocket (issue target ≥ 100,000 jobs/s with
// the default durability), pipelined PULL → ACK over WebSocket on a prefilled queue, and SSE
// fan-out (500 subscribers while pushing; delivery latency from the record's timestamp to
// receipt). Each runs against a fresh `tapeq serve` with LOG_SYNC=always.

import { refTarget, tapeqTarget, type BenchRun } from './bench-measure.js';
import { target, withRatio, type Row, type ScenarioReport } from './bench-report.js';

const wsPushTargetJobsPerSec = 100_000;

export interface WsScale {
  wsConnections: number;
  pipeline: number;
  /** Jobs pushed before the PULL → ACK run. */
  cycleJobs: number;
  sseSubscribers: number;
  ssePushPerSec: number;
}

export const wsScaleDefault: WsScale = { wsConnections: 4, pipeline: 256, cycleJobs: 100_000, sseSubscribers: 500, ssePushPerSec: 200 };

export async function benchWs(run: BenchRun, scale: WsScale = wsScaleDefault): Promise<ScenarioReport> {
  const { wsConnections, pipeline } = scale;
  const bare = await run.measure(
    refTarget('fastify'),
    `WS pipelined PUSH, ${wsConnections} sockets × ${pipeline} in flight, parse and answer only`,
    run.spec('ws-push', { connections: wsConnections, pipeline }),
    'jobs/s',
  );
  const push = await run.measure(
    tapeqTarget({ LOG_SYNC: 'always' }),
    `WS pipelined PUSH, ${wsConnections} sockets × ${pipeline} in flight, LOG_SYNC=always`,
    run.spec('ws-push', { connections: wsConnections, pipeline }),
    'jobs/s',
  );
  const pushRow: Row = {
    ...withRatio(push, bare),
    target: target(`≥ ${wsPushTargetJobsPerSec.toLocaleString('en-US')} jobs/s`, wsPushTargetJobsPerSec, push.value, push.errors ?? 0, 'value'),
  };
  const cycle = await run.measure(
    tapeqTarget({ LOG_SYNC: 'always' }),
    `WS PULL → ACK, ${wsConnections} sockets × ${pipeline} lanes, ${scale.cycleJobs.toLocaleString('en-US')} jobs prefilled`,
    run.spec('ws-cycle', { connections: wsConnections, pipeline, amount: scale.cycleJobs, bulkSize: 1_000 }),
    'cycles/s',
  );
  const sse = await run.measure(
    tapeqTarget({ LOG_SYNC: 'always' }),
    (r) =>
      r?.pushesPerSec === undefined
        ? `SSE fan-out: ${scale.sseSubscribers} subscribers, ${scale.ssePushPerSec} pushes/s offered`
        : `SSE fan-out: ${scale.sseSubscribers} subscribers, ${r.pushesPerSec.toFixed(0)} pushes/s achieved (${scale.ssePushPerSec} offered)`,
    run.spec('sse', { connections: scale.sseSubscribers, ssePushPerSec: scale.ssePushPerSec }),
    'events/s',
  );
  return {
    rows: [bare, pushRow, cycle, sse],
    notes: [
      'bare fastify = @fastify/websocket answering each PUSH with {ok, id, reqId} after JSON.parse, nothing else: the WebSocket ceiling of this machine.',
      'WS producers connect to /ws/queues/<a queue nobody pushes to> so their sockets carry command replies only, not every job event.',
      'WS PULL → ACK stops early when the prefilled queue runs dry (the rate is still cycles per measured second).',
      'SSE latency = receipt time − the event\'s `timestamp` (the push record\'s time, ms resolution, same machine clock); "errors" counts events not delivered by the end.',
      'SSE events/s = events received ÷ the seconds spent pushing; a 0.5 s drain after the last push lets its events arrive and is not counted in the seconds. Each ~10 ms tick waits for its pushes, so the achieved push rate (in the measure) can fall below the offered one.',
    ],
  };
}
