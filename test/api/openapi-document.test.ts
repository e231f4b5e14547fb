// /openapi.json is a document client generators can use as served: valid OpenAPI 3.0 by the
// specification's own JSON schema (@seriousme/openapi-schema-validator), an operationId on every
// operation that reads as a method name (generators name methods after it, else after the path:
// `postQueuesQueueJobs`), the license and a server. Fetched from a real server on 127.0.0.1 with
// the real-time plugin and the job history, so every operation main.ts serves is in it.
//
// `published` pins each id: a generated client calls methods by these names, so renaming one is a
// breaking change to make on purpose, here and in the CHANGELOG. A new route adds its id here.

import { Validator } from '@seriousme/openapi-schema-validator';
import t, { type Test } from 'tap';
import { realtimePlugin } from '../../src/api/realtime/index.js';
import { loadConfig } from '../../src/config.js';
import { JobHistory } from '../../src/history/history.js';
import { startBroker } from '../fixtures/broker.js';
import { startServer } from '../fixtures/server.js';

type Operation = { operationId?: unknown };
type Document = { openapi: string; info: { license?: unknown }; servers?: unknown; paths: Record<string, Record<string, Operation>> };

/** camelCase, as a method name: a lowercase letter, then letters and digits. */
const operationIdPattern = /^[a-z][A-Za-z0-9]*$/;

const published: Record<string, string> = {
  'POST /queues/{queue}/jobs': 'pushJobs',
  'GET /queues/{queue}/jobs': 'pullJob',
  'POST /queues/{queue}/jobs/bulk': 'pushBulk',
  'GET /queues/{queue}/jobs/list': 'listQueueJobs',
  'GET /queues/{queue}/jobs/{id}': 'getQueueJob',
  'GET /jobs/{id}': 'getJob',
  'DELETE /jobs/{id}': 'cancelJob',
  'POST /jobs/{id}/ack': 'ackJob',
  'POST /jobs/{id}/fail': 'failJob',
  'POST /jobs/{id}/promote': 'promoteJob',
  'POST /jobs/{id}/retry': 'retryJob',
  'PUT /jobs/{id}/priority': 'changePriority',
  'GET /jobs/{id}/state': 'getJobState',
  'GET /jobs/{id}/result': 'getJobResult',
  'POST /jobs/{id}/progress': 'updateProgress',
  'POST /jobs/{id}/logs': 'addJobLog',
  'GET /jobs/{id}/logs': 'getJobLogs',
  'POST /queues/{queue}/jobs/{id}/progress': 'updateQueueJobProgress',
  'POST /queues/{queue}/jobs/{id}/logs': 'addQueueJobLog',
  'GET /queues/{queue}/jobs/{id}/logs': 'getQueueJobLogs',
  'GET /jobs/{id}/history': 'getJobHistory',
  'GET /queues': 'listQueues',
  'GET /queues/{queue}/counts': 'getJobCounts',
  'POST /queues/{queue}/pause': 'pauseQueue',
  'POST /queues/{queue}/resume': 'resumeQueue',
  'GET /queues/{queue}/paused': 'isQueuePaused',
  'POST /queues/{queue}/drain': 'drainQueue',
  'POST /queues/{queue}/clean': 'cleanQueue',
  'POST /queues/{queue}/obliterate': 'obliterateQueue',
  'POST /queues/{queue}/promote-jobs': 'promoteJobs',
  'GET /queues/{queue}/dlq': 'listDlqJobs',
  'POST /queues/{queue}/dlq/retry': 'retryDlq',
  'POST /queues/{queue}/dlq/purge': 'purgeDlq',
  'POST /workers': 'registerWorker',
  'GET /workers': 'listWorkers',
  'DELETE /workers/{queue}': 'removeWorker',
  'GET /health': 'getHealth',
  'GET /healthz': 'getHealthz',
  'GET /live': 'getLiveness',
  'GET /ready': 'getReadiness',
  'GET /stats': 'getStats',
  'GET /metrics': 'getMetrics',
  'GET /prometheus': 'getPrometheusMetrics',
  'POST /gc': 'forceGc',
  'GET /heapstats': 'getHeapStats',
  'GET /events': 'streamEvents',
  'GET /events/queues/{queue}': 'streamQueueEvents',
};

async function servedDocument(t: Test): Promise<Document> {
  const fx = await startBroker();
  t.teardown(() => fx.cleanup());
  const history = new JobHistory({ log: fx.log, writeFiles: false });
  history.start();
  t.teardown(() => history.close());
  const config = loadConfig({});
  const s = await startServer({ broker: fx.broker, config, history, realtime: realtimePlugin({ broker: fx.broker, log: fx.log, config }) });
  t.teardown(() => s.close());
  const res = await s.request('GET', '/openapi.json');
  if (res.status !== 200) throw new Error(`GET /openapi.json answered ${res.status}`);
  return res.json as Document;
}

/** `METHOD /path` → the operation, for every operation of the document. */
function operations(doc: Document): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, operation] of Object.entries(item)) out.set(`${method.toUpperCase()} ${path}`, operation);
  }
  return out;
}

t.test('openapi-json-is-valid-openapi-3.0', async (t) => {
  const doc = await servedDocument(t);
  const validator = new Validator();
  const result = await validator.validate(doc);
  t.equal(validator.version, '3.0', 'validated as OpenAPI 3.0');
  t.ok(result.valid, 'valid by the OpenAPI 3.0 schema', { errors: result.errors });
});

t.test('every-operation-has-a-unique-camel-case-operation-id', async (t) => {
  const ops = operations(await servedDocument(t));
  t.ok(ops.size > 0, `${ops.size} operations`);
  const unnamed = [...ops].filter(([, { operationId }]) => typeof operationId !== 'string' || !operationIdPattern.test(operationId));
  t.strictSame(Object.fromEntries(unnamed.map(([operation, { operationId }]) => [operation, operationId])), {}, `every operationId matches ${operationIdPattern}`);
  const holders = new Map<unknown, string[]>();
  for (const [operation, { operationId }] of ops) holders.set(operationId, [...(holders.get(operationId) ?? []), operation]);
  const shared = [...holders].filter(([, named]) => named.length > 1);
  t.strictSame(Object.fromEntries(shared), {}, 'no operationId names two operations');
});

t.test('operation-ids-are-the-published-ones', async (t) => {
  const ops = operations(await servedDocument(t));
  const served = Object.fromEntries([...ops].map(([operation, { operationId }]) => [operation, operationId]));
  t.strictSame(served, published, 'a renamed id breaks generated clients; a new operation adds its id to `published`');
});

t.test('document-names-its-license-and-the-server-that-serves-it', async (t) => {
  const doc = await servedDocument(t);
  t.strictSame(doc.info.license, { name: 'MIT', url: 'https://opensource.org/license/mit' });
  t.strictSame(doc.servers, [{ url: '/', description: 'The tapeq server this document was fetched from' }]);
});
