// Events derived from one log record, with no state: what SSE and WebSocket subscribers receive.
// Seed 004's twelve event types; every event carries the record's queue, timestamp and offset.
//
//   pushed            → pushed {data}; + delayed {delay} when pushed DELAYED;
//                       + waiting-children when pushed WAITING_CHILDREN
//   duplicated        → duplicated
//   pulled            → pulled
//   completed         → completed
//   failed            → failed {error}; + delayed {delay} for a RETRY with a backoff delay
//   progressed        → progress {progress}
//   stalled           → stalled; + failed {error} when the stall exhausted the job
//   removed           → removed {prev} per job
//   retried           → retried {prev}
//   queueDrained      → drained (jobId null)
// No events: logged, promoted, released, priorityChanged, queuePaused, queueResumed,
// queueObliterated, workerRegistered, workerRemoved (none has a seed 004 event type).

import { stalledFailureText } from '../state/index.js';
import {
  assertNever,
  FailOutcome,
  JOB_STATE_NAMES,
  JobState,
  StallOutcome,
  type LogRecord,
} from '../record/types.js';

export type BrokerEventType =
  | 'pushed'
  | 'pulled'
  | 'completed'
  | 'failed'
  | 'progress'
  | 'stalled'
  | 'removed'
  | 'delayed'
  | 'duplicated'
  | 'retried'
  | 'waiting-children'
  | 'drained';

export interface BrokerEvent {
  eventType: BrokerEventType;
  queue: string;
  jobId: string | null;
  timestamp: number;
  offset: number;
  [extra: string]: unknown;
}

export function eventsOf(record: LogRecord): BrokerEvent[] {
  const { timestamp, offset } = record;
  const body = record.body;
  const ev = (eventType: BrokerEventType, queue: string, jobId: string | null, extra?: object): BrokerEvent => ({
    eventType,
    queue,
    jobId,
    timestamp,
    offset,
    ...extra,
  });
  switch (body.type) {
    case 'pushed': {
      const job = body.job;
      const out = [ev('pushed', job.queue, job.id, { data: JSON.parse(job.data) as unknown })];
      if (body.state === JobState.DELAYED) out.push(ev('delayed', job.queue, job.id, { delay: job.runAt - timestamp }));
      if (body.state === JobState.WAITING_CHILDREN) out.push(ev('waiting-children', job.queue, job.id));
      return out;
    }
    case 'duplicated':
      return [ev('duplicated', body.queue, body.jobId)];
    case 'pulled':
      return [ev('pulled', body.queue, body.jobId)];
    case 'completed':
      return [ev('completed', body.queue, body.jobId)];
    case 'failed': {
      const out = [ev('failed', body.queue, body.jobId, { error: body.error })];
      if (body.outcome === FailOutcome.RETRY && body.retryDelay > 0) {
        out.push(ev('delayed', body.queue, body.jobId, { delay: body.retryDelay }));
      }
      return out;
    }
    case 'progressed':
      return [ev('progress', body.queue, body.jobId, { progress: body.progress })];
    case 'stalled': {
      const out = [ev('stalled', body.queue, body.jobId)];
      if (body.outcome === StallOutcome.STALL_FAILED) {
        out.push(ev('failed', body.queue, body.jobId, { error: stalledFailureText }));
      }
      return out;
    }
    case 'removed':
      return body.jobs.map((j) => ev('removed', body.queue, j.jobId, { prev: JOB_STATE_NAMES[j.prev] }));
    case 'retried':
      return [ev('retried', body.queue, body.jobId, { prev: JOB_STATE_NAMES[body.prev] })];
    case 'queueDrained':
      return [ev('drained', body.queue, null)];
    case 'logged':
    case 'promoted':
    case 'released':
    case 'priorityChanged':
    case 'queuePaused':
    case 'queueResumed':
    case 'queueObliterated':
    case 'workerRegistered':
    case 'workerRemoved':
      return [];
    default:
      return assertNever(body);
  }
}
