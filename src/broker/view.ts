// JobView: the JSON the API serves for a job (seed 004 "Get a Job" fields plus tapeq's additions).
// Parses the stored JSON texts (data, result) on demand; never mutates the job.

import { BackoffType, JOB_STATE_NAMES, JobState, type KeepPolicy } from '../record/types.js';
import type { Job } from '../state/index.js';
import type { JobView, KeepView } from './types.js';

/** Unset (null) and keep-all (no count, no age: an explicit false) both read `false`, as pushed. */
function keepView(policy: KeepPolicy | null): KeepView {
  if (policy === null) return false;
  if (policy.remove) return true;
  if (policy.count === null && policy.ageMs === null) return false;
  if (policy.ageMs === null && policy.count !== null) return policy.count;
  const view: { count?: number; age?: number } = {};
  if (policy.count !== null) view.count = policy.count;
  if (policy.ageMs !== null) view.age = policy.ageMs / 1000;
  return view;
}

function parse(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}

export function jobView(job: Job): JobView {
  const s = job;
  const repeat = s.repeat;
  const finished = job.state === JobState.COMPLETED || job.state === JobState.FAILED;
  return {
    id: s.id,
    queue: s.queue,
    name: s.name,
    data: parse(s.data),
    priority: job.priority,
    createdAt: job.createdAt,
    runAt: job.runAt,
    startedAt: job.startedAt,
    completedAt: finished ? job.finishedAt : null,
    attempts: job.attempts,
    maxAttempts: s.maxAttempts,
    backoff: s.backoffType === BackoffType.FIXED ? { type: 'fixed', delay: s.backoff } : s.backoff,
    progress: job.progress,
    progressMessage: job.progressMessage,
    tags: s.tags,
    lifo: s.lifo,
    removeOnComplete: keepView(s.removeOnComplete),
    removeOnFail: keepView(s.removeOnFail),
    state: JOB_STATE_NAMES[job.state],
    ttl: s.ttl,
    timeout: s.timeout,
    uniqueKey: s.uniqueKey === '' ? null : s.uniqueKey,
    groupId: s.groupId === '' ? null : s.groupId,
    dependsOn: s.dependsOn,
    repeat:
      repeat === null
        ? null
        : {
            ...(repeat.every !== null ? { every: repeat.every } : { pattern: repeat.pattern }),
            ...(repeat.limit !== null ? { limit: repeat.limit } : {}),
            count: repeat.count,
            ...(repeat.key !== '' ? { key: repeat.key } : {}),
          },
    result: parse(job.result),
    failedReason: job.error,
    stalledCount: job.stalledCount,
  };
}
