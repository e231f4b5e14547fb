import t from 'tap';
import { BackoffType, JobState, RemoveReason, type JobSpec, type LogRecord, type RecordBody } from '../../src/record/types.js';
import { apply, createState, exportState, importState, stateDigest, waitIterate, type State } from '../../src/state/index.js';
import type { StateImage } from '../../src/state/image.js';

function canonicalText(image: StateImage): string {
  const chunks: string[] = [];
  stateDigest(image, (chunk) => chunks.push(chunk));
  return chunks.join('');
}

function spec(id: string, over: Partial<JobSpec> = {}): JobSpec {
  return {
    id, queue: 'q', name: 'default', data: '{}', priority: 0, runAt: 1000, maxAttempts: 3, backoff: 1000,
    backoffType: BackoffType.EXPONENTIAL, ttl: null, timeout: null, uniqueKey: '', customId: false, tags: [],
    groupId: '', lifo: false, removeOnComplete: null, removeOnFail: null, dependsOn: [], repeat: null, maxStalled: null,
    ...over,
  };
}

function feed(state: State, bodies: RecordBody[], ts = 1000): void {
  for (const body of bodies) {
    const record: LogRecord = { offset: state.offset, timestamp: ts, actor: null, body };
    apply(state, record);
  }
}

const push = (id: string, over: Partial<JobSpec> = {}, st: JobState = JobState.WAITING, pendingDeps: string[] = []): RecordBody => ({
  type: 'pushed', job: spec(id, over), state: st, pendingDeps,
});

function waitingIds(state: State): string[] {
  const q = state.queues.get('q');
  return q === undefined ? [] : [...waitIterate(q.waiting)].map((j) => j.id);
}

t.test('waiting-order-is-priority-then-fifo-with-lifo-and-requeue-at-front', async (t) => {
  const s = createState();
  feed(s, [push('a'), push('b', { priority: 5 }), push('c'), push('d', { lifo: true }), push('e', { priority: 5 })]);
  t.same(waitingIds(s), ['b', 'e', 'd', 'a', 'c']);
  feed(s, [{ type: 'pulled', queue: 'q', jobId: 'a', token: 't', owner: 'o', lockMs: 10 }]);
  feed(s, [{ type: 'stalled', queue: 'q', jobId: 'a', outcome: 0, token: 't' }]);
  t.same(waitingIds(s), ['b', 'e', 'a', 'd', 'c'], 'a stall requeue goes to the front of its priority');
  feed(s, [{ type: 'priorityChanged', queue: 'q', jobId: 'c', priority: 9 }]);
  t.same(waitingIds(s), ['c', 'b', 'e', 'a', 'd']);
});

t.test('dependents-run-when-dependencies-complete-or-are-removed', async (t) => {
  const s = createState();
  feed(s, [push('x'), push('y'), push('child', { dependsOn: ['x', 'y'] }, JobState.WAITING_CHILDREN, ['x', 'y'])]);
  feed(s, [{ type: 'pulled', queue: 'q', jobId: 'x', token: 't', owner: 'o', lockMs: 10 }]);
  feed(s, [{ type: 'completed', queue: 'q', jobId: 'x', result: null, token: 't' }]);
  t.equal(s.jobs.get('child')?.state, JobState.WAITING_CHILDREN);
  feed(s, [{ type: 'removed', queue: 'q', jobs: [{ jobId: 'y', prev: JobState.WAITING }], reason: RemoveReason.CANCELLED }]);
  t.equal(s.jobs.get('child')?.state, JobState.WAITING, 'a removed dependency counts as satisfied');
});

t.test('a-dependency-removed-after-it-failed-never-lets-its-dependents-run', async (t) => {
  const s = createState();
  feed(s, [push('x', { maxAttempts: 1 }), push('child', { dependsOn: ['x'] }, JobState.WAITING_CHILDREN, ['x'])]);
  feed(s, [{ type: 'pulled', queue: 'q', jobId: 'x', token: 't', owner: 'o', lockMs: 10 }]);
  feed(s, [{ type: 'failed', queue: 'q', jobId: 'x', error: 'e', token: 't', cause: 'nack', outcome: 1, runAt: 0, retryDelay: 0 }]);
  t.equal(s.jobs.get('x')?.state, JobState.FAILED);
  feed(s, [{ type: 'removed', queue: 'q', jobs: [{ jobId: 'x', prev: JobState.FAILED }], reason: RemoveReason.REMOVE_ON_FAIL }]);
  t.equal(s.jobs.get('child')?.state, JobState.WAITING_CHILDREN, 'the failure is not turned into a success by its removal');
  t.same(canonicalText(exportState(importState(exportState(s)))), canonicalText(exportState(s)));
  feed(s, [push('x'), { type: 'pulled', queue: 'q', jobId: 'x', token: 't2', owner: 'o', lockMs: 10 }]);
  feed(s, [{ type: 'completed', queue: 'q', jobId: 'x', result: null, token: 't2' }]);
  t.equal(s.jobs.get('child')?.state, JobState.WAITING, 'a job pushed again under that id and completed releases it');
});

t.test('export-import-is-canonical-and-behaves-the-same', async (t) => {
  const s = createState();
  feed(s, [push('a'), push('b', { lifo: true }), push('c', { priority: 2, uniqueKey: 'k' }), push('d', {}, JobState.DELAYED)]);
  feed(s, [{ type: 'pulled', queue: 'q', jobId: 'c', token: 't', owner: 'o', lockMs: 10 }]);
  feed(s, [{ type: 'failed', queue: 'q', jobId: 'c', error: 'e', outcome: 1, runAt: 0, retryDelay: 0, token: 't', cause: 'nack' }]);
  feed(s, [{ type: 'queuePaused', queue: 'q' }, { type: 'workerRegistered', queue: 'w', config: '{}' }]);
  const image = exportState(s);
  const copy = importState(image);
  t.equal(canonicalText(exportState(copy)), canonicalText(image));
  const more: RecordBody[] = [push('e', { lifo: true }), { type: 'retried', queue: 'q', jobId: 'c', prev: JobState.FAILED }, push('f', { uniqueKey: 'k' })];
  feed(s, more);
  feed(copy, more);
  t.equal(canonicalText(exportState(copy)), canonicalText(exportState(s)));
  t.same(waitingIds(copy), waitingIds(s));
});

t.test('apply-rejects-an-offset-gap', async (t) => {
  const s = createState();
  t.throws(() => apply(s, { offset: 3, timestamp: 1, actor: null, body: { type: 'queuePaused', queue: 'q' } }));
});
