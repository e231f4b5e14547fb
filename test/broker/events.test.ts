import t from 'tap';
import { eventsOf } from '../../src/broker/events.js';
import { BackoffType, FailOutcome, JobState, RECORD_TYPES, RemoveReason, type LogRecord, type RecordBody } from '../../src/record/types.js';

const rec = (body: RecordBody): LogRecord => ({ offset: 7, timestamp: 1000, actor: null, body });
const spec = {
  id: 'j', queue: 'q', name: 'default', data: '{"a":1}', priority: 0, runAt: 1500, maxAttempts: 3, backoff: 1000,
  backoffType: BackoffType.EXPONENTIAL, ttl: null, timeout: null, uniqueKey: '', customId: false, tags: [], groupId: '',
  lifo: false, removeOnComplete: null, removeOnFail: null, dependsOn: [], repeat: null, maxStalled: null,
};

t.test('events-are-derived-from-the-record-alone', async (t) => {
  t.same(eventsOf(rec({ type: 'pushed', job: spec, state: JobState.DELAYED, pendingDeps: [] })), [
    { eventType: 'pushed', queue: 'q', jobId: 'j', timestamp: 1000, offset: 7, data: { a: 1 } },
    { eventType: 'delayed', queue: 'q', jobId: 'j', timestamp: 1000, offset: 7, delay: 500 },
  ]);
  const failed = eventsOf(rec({ type: 'failed', queue: 'q', jobId: 'j', error: 'e', outcome: FailOutcome.RETRY, runAt: 3000, retryDelay: 2000, token: 't', cause: 'nack' }));
  t.same(failed.map((e) => [e.eventType, e['error'] ?? e['delay']]), [['failed', 'e'], ['delayed', 2000]]);
  const removed = eventsOf(rec({ type: 'removed', queue: 'q', jobs: [{ jobId: 'a', prev: JobState.WAITING }, { jobId: 'b', prev: JobState.FAILED }], reason: RemoveReason.DRAINED }));
  t.same(removed.map((e) => [e.jobId, e['prev']]), [['a', 'waiting'], ['b', 'failed']]);
  t.same(eventsOf(rec({ type: 'queueDrained', queue: 'q', removed: 2 })).map((e) => [e.eventType, e.jobId]), [['drained', null]]);
  t.same(eventsOf(rec({ type: 'progressed', queue: 'q', jobId: 'j', progress: 40, message: null, lockMs: 0 }))[0]?.['progress'], 40);
  t.same(eventsOf(rec({ type: 'queuePaused', queue: 'q' })), []);
  t.equal(RECORD_TYPES.length, 19);
});
