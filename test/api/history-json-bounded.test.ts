// GET /jobs/:id/history builds its JSON form in memory, so it is bounded (historyJsonLengthMax):
// a longer history is refused with a pointer to the NDJSON form, which streams it whole, and the
// reading stops at the bound.

import t from 'tap';
import { historyJsonLengthMax, logMessageLengthMax } from '../../src/constants.js';
import type { LogRecord } from '../../src/record/types.js';
import { startServer } from '../fixtures/server.js';

const jobId = 'job-1';
const message = 'x'.repeat(logMessageLengthMax);

function source(count: number, read: { records: number; closed: boolean }): { records(id: string): AsyncGenerator<LogRecord> } {
  return {
    async *records(id: string) {
      try {
        for (let offset = 0; offset < count && id === jobId; offset++) {
          read.records++;
          const body: LogRecord['body'] = offset === 0
            ? { type: 'pushed', job: { id: jobId, queue: 'q', name: 'default', data: '1', priority: 0, runAt: 0, maxAttempts: 1, backoff: 0, backoffType: 0, ttl: null, timeout: null, uniqueKey: '', customId: true, tags: [], groupId: '', lifo: false, removeOnComplete: null, removeOnFail: null, dependsOn: [], repeat: null, maxStalled: null }, state: 1, pendingDeps: [] }
            : { type: 'logged', queue: 'q', jobId, message };
          yield { offset, timestamp: 1_700_000_000_000, actor: null, body };
        }
      } finally {
        read.closed = true;
      }
    },
  };
}

t.test('a-history-longer-than-historyJsonLengthMax-as-json-is-refused-and-streams-as-ndjson', async (t) => {
  const count = Math.ceil(historyJsonLengthMax / logMessageLengthMax) + 10;
  const read = { records: 0, closed: false };
  const s = await startServer({ history: source(count, read) });
  t.teardown(() => s.close());
  const res = await s.request('GET', `/jobs/${jobId}/history`);
  t.equal(res.status, 400);
  t.same(res.json, { ok: false, error: `History is longer than ${historyJsonLengthMax} characters as JSON: ask for ?format=ndjson, which streams it` });
  t.ok(read.records < count, 'reading stopped at the bound');
  t.ok(read.closed, 'the record reader was closed');

  const ndjson = await fetch(`${s.url}/jobs/${jobId}/history?format=ndjson`);
  t.equal(ndjson.status, 200);
  t.equal((await ndjson.text()).trimEnd().split('\n').length, count, 'the NDJSON form has every record');
});

t.test('a-history-within-the-bound-is-one-json-answer', async (t) => {
  const count = Math.floor(historyJsonLengthMax / logMessageLengthMax / 2);
  const s = await startServer({ history: source(count, { records: 0, closed: false }) });
  t.teardown(() => s.close());
  const res = await s.request('GET', `/jobs/${jobId}/history`);
  t.equal(res.status, 200);
  t.equal(res.headers.get('content-type'), 'application/json');
  t.equal(res.json.ok, true);
  t.equal(res.json.complete, true);
  t.equal(res.json.history.length, count);
  t.same(res.json.history[1], { offset: 1, timestamp: 1_700_000_000_000, time: new Date(1_700_000_000_000).toISOString(), type: 'logged', queue: 'q', jobId, message });
});
