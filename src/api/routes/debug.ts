// Debug endpoints (seed 004; no auth, as the seed's exempt list says):
//   POST /gc          force a full GC → {ok, before, after} (MB); needs `node --expose-gc`,
//                     else 501: we report that GC is unavailable rather than invent numbers.
//   GET  /heapstats   {ok, memory (MB), heap (v8.getHeapStatistics(), V8's own field names),
//                     collections, topObjectTypes}. topObjectTypes needs ?snapshot=true, which
//                     takes a real heap snapshot (pauses the process); otherwise it is null and a
//                     note says how to get it.

import { getHeapStatistics } from 'node:v8';
import type { FastifyInstance } from 'fastify';
import { sendApiError } from '../errors.js';
import { topObjectTypes } from '../heap-snapshot.js';
import { collections, memoryMb } from '../memory.js';
import type { RouteDeps } from './types.js';

export const topObjectTypesLimit = 20;

function memorySummary() {
  const { heapUsed, heapTotal, rss } = memoryMb();
  return { heapUsed, heapTotal, rss };
}

export function debugRoutes(app: FastifyInstance, { broker }: RouteDeps): void {
  const tags = ['debug'];
  const exempt = { auth: 'exempt' } as const;

  app.post('/gc', { config: exempt, schema: { summary: 'Force garbage collection (needs --expose-gc)', tags } }, async (_request, reply) => {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== 'function') return sendApiError(reply, 'gcNotExposed');
    const before = memorySummary();
    gc();
    return { ok: true, before, after: memorySummary() };
  });

  app.get<{ Querystring: { snapshot: boolean } }>(
    '/heapstats',
    {
      config: exempt,
      schema: {
        summary: 'Heap statistics; ?snapshot=true adds object counts by type from a heap snapshot',
        tags,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { snapshot: { type: 'boolean', default: false } },
        },
      },
    },
    async (request) => {
      const base = {
        ok: true,
        memory: memorySummary(),
        heap: getHeapStatistics(),
        collections: collections(broker.stats(Date.now())),
      };
      if (!request.query.snapshot) {
        return { ...base, topObjectTypes: null, note: 'pass ?snapshot=true to take a heap snapshot (pauses the process)' };
      }
      const { types, nodeCount } = await topObjectTypes(topObjectTypesLimit);
      return { ...base, snapshotNodeCount: nodeCount, topObjectTypes: types };
    },
  );
}
