// Debug endpoints (seed 004; no auth, as the seed's exempt list says):
//   POST /gc          a full GC that also compacts the heap (seed 004: "garbage collection and
//                     memory compaction") → {ok, before, after} (MB). V8's gc(): the global one
//                     when node runs with --expose-gc, else taken from a fresh context on the
//                     first call (V8 installs gc() in contexts made after the flag is set), so
//                     the endpoint works however the server was started.
//                     V8's own full GCs compact only the most fragmented pages, so a heap that
//                     held much short-lived data (a fill of a million jobs) keeps hundreds of MB
//                     of half-empty pages. This one moves every live object, which needs up to
//                     heapUsed of extra memory for a moment; `after` is read once the pages it
//                     emptied have been handed back to the OS (V8 releases them in the
//                     background), at most gcSettleMsMax later.
//   GET  /heapstats   {ok, memory (MB), heap (v8.getHeapStatistics(), V8's own field names),
//                     payloads (the jobs' data off the JS heap, and the ids of waiting jobs
//                     restored at start and not touched since: liveBytes of the entries, each
//                     after its 2-byte length; heldBytes of the 1 MiB chunks holding them),
//                     collections, topObjectTypes}. topObjectTypes needs ?snapshot=true,
//                     which takes a real heap snapshot (pauses the process); otherwise it is null
//                     and a note says how to get it. The route is exempt, as seed 004 says, but
//                     the snapshot is not: it pauses the process and may take as much memory
//                     again as the heap, so with AUTH_TOKENS set it needs a bearer token, and
//                     requests that arrive while one is taken share it (as /gc shares its GC).

import { setTimeout as sleep } from 'node:timers/promises';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { gcSettleMsMax } from '../../constants.js';
import { authenticate } from '../auth.js';
import { noBody } from '../body.js';
import { sendApiError } from '../errors.js';
import { topObjectTypes } from '../heap-snapshot.js';
import { collections, memoryMb } from '../memory.js';
import { errors, noBodyRefused, queryRefused } from '../schemas.js';
import type { RouteDeps } from './types.js';

export const topObjectTypesLimit = 20;
const gcSettlePollMs = 50;
/** Polls in a row without a lower RSS that count as settled. */
const gcSettledPolls = 4;

let exposedGc: (() => void) | null = null;

function v8Gc(): () => void {
  const global = (globalThis as { gc?: () => void }).gc;
  if (typeof global === 'function') return global;
  if (exposedGc === null) {
    setFlagsFromString('--expose-gc');
    exposedGc = runInNewContext('gc') as () => void;
  }
  return exposedGc;
}

/** A full GC that evacuates every page (not only the ones V8's heuristics pick). */
function compactingGc(gc: () => void): void {
  setFlagsFromString('--compact-on-every-full-gc');
  try {
    gc();
  } finally {
    setFlagsFromString('--no-compact-on-every-full-gc');
  }
}

/** Waits until the RSS has stopped falling for a few polls (or gcSettleMsMax passed). */
async function settle(): Promise<void> {
  let lowest = process.memoryUsage.rss();
  let steady = 0;
  for (let waited = 0; waited < gcSettleMsMax && steady < gcSettledPolls; waited += gcSettlePollMs) {
    await sleep(gcSettlePollMs);
    const rss = process.memoryUsage.rss();
    steady = rss < lowest ? 0 : steady + 1;
    lowest = Math.min(lowest, rss);
  }
}

interface GcReport {
  ok: true;
  before: ReturnType<typeof memorySummary>;
  after: ReturnType<typeof memorySummary>;
}

async function collect(gc: () => void): Promise<GcReport> {
  const before = memorySummary();
  compactingGc(gc);
  await settle();
  return { ok: true, before, after: memorySummary() };
}

function memorySummary() {
  const { heapUsed, heapTotal, rss } = memoryMb();
  return { heapUsed, heapTotal, rss };
}

/** One object for every server: Ajv caches compiled schemas by the schema object. */
const heapStatsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { snapshot: { type: 'boolean', default: false } },
} as const;

export function debugRoutes(app: FastifyInstance, { broker, config }: RouteDeps): void {
  const tags = ['debug'];
  const exempt = { auth: 'exempt' } as const;

  // One compaction at a time: requests that arrive while one settles share its result instead of
  // each moving the whole heap again (the route needs no token, as seed 004 says).
  let running: Promise<GcReport> | null = null;
  app.post('/gc', { config: exempt, preValidation: noBody, schema: { operationId: 'forceGc', summary: 'Force a compacting garbage collection', tags, response: errors(noBodyRefused) } }, async () => {
    running ??= collect(v8Gc()).finally(() => {
      running = null;
    });
    return running;
  });

  let snapshotting: ReturnType<typeof topObjectTypes> | null = null;
  app.get<{ Querystring: { snapshot: boolean } }>(
    '/heapstats',
    {
      config: exempt,
      schema: {
        operationId: 'getHeapStats',
        summary: 'Heap statistics; ?snapshot=true adds object counts by type from a heap snapshot (needs a token when AUTH_TOKENS is set)',
        tags,
        querystring: heapStatsQuery,
        response: errors({ 400: queryRefused, 401: '?snapshot=true without a valid bearer token, when AUTH_TOKENS is set' }),
      },
    },
    async (request, reply) => {
      if (request.query.snapshot && !authenticate(request.headers.authorization, config)) return sendApiError(reply, 'unauthorized');
      const base = {
        ok: true,
        memory: memorySummary(),
        heap: getHeapStatistics(),
        payloads: broker.payloadBytes(),
        collections: collections(broker.stats()),
      };
      if (!request.query.snapshot) {
        return { ...base, topObjectTypes: null, note: 'pass ?snapshot=true to take a heap snapshot (pauses the process)' };
      }
      snapshotting ??= topObjectTypes(topObjectTypesLimit).finally(() => {
        snapshotting = null;
      });
      const { types, nodeCount } = await snapshotting;
      return { ...base, snapshotNodeCount: nodeCount, topObjectTypes: types };
    },
  );
}
