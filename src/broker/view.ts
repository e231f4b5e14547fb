// JobView: the JSON the API serves for a job (seed 004 "Get a Job" fields plus tapeq's additions).
// Parses the stored JSON texts (data, result) on demand; never mutates the job.
//
// jobJson writes the same JSON as text, the stored data and result texts as they are: a pulled
// job's reply (about 600 bytes for a 100-byte payload) took 2.9 µs as jobView + JSON.stringify
// and takes about 0.6 µs so. The stored texts are JSON.stringify's own output (validate.ts,
// json-text.ts, ack), so the text is byte for byte JSON.stringify(jobView(job)) (tested).

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

function repeatView(repeat: Job['repeat']): JobView['repeat'] {
  if (repeat === null) return null;
  return {
    ...(repeat.every !== null ? { every: repeat.every } : { pattern: repeat.pattern }),
    ...(repeat.limit !== null ? { limit: repeat.limit } : {}),
    count: repeat.count,
    ...(repeat.key !== '' ? { key: repeat.key } : {}),
  };
}

function isFinished(job: Job): boolean {
  return job.state === JobState.COMPLETED || job.state === JobState.FAILED;
}

export function jobView(job: Job): JobView {
  const s = job;
  const finished = isFinished(job);
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
    repeat: repeatView(s.repeat),
    result: parse(job.result),
    failedReason: job.error,
    stalledCount: job.stalledCount,
  };
}

/** A number or null as JSON (JSON.stringify's own spelling: String for a finite number). */
function numberJson(v: number | null): string {
  return v !== null && Number.isFinite(v) ? String(v) : 'null';
}

function stringJson(v: string | null): string {
  return v === null ? 'null' : JSON.stringify(v);
}

function keepJson(policy: KeepPolicy | null): string {
  return policy === null ? 'false' : JSON.stringify(keepView(policy));
}

const stateJson = new Map(Object.entries(JOB_STATE_NAMES).map(([state, name]) => [Number(state), JSON.stringify(name)]));

/** JSON.stringify(jobView(job)), written field by field; data and result as stored. */
export function jobJson(job: Job): string {
  const s = job;
  const backoff = s.backoffType === BackoffType.FIXED ? `{"type":"fixed","delay":${numberJson(s.backoff)}}` : numberJson(s.backoff);
  return (
    `{"id":${JSON.stringify(s.id)},"queue":${JSON.stringify(s.queue)},"name":${JSON.stringify(s.name)},"data":${s.data ?? 'null'}` +
    `,"priority":${numberJson(job.priority)},"createdAt":${numberJson(job.createdAt)},"runAt":${numberJson(job.runAt)}` +
    `,"startedAt":${numberJson(job.startedAt)},"completedAt":${numberJson(isFinished(job) ? job.finishedAt : null)}` +
    `,"attempts":${numberJson(job.attempts)},"maxAttempts":${numberJson(s.maxAttempts)},"backoff":${backoff}` +
    `,"progress":${numberJson(job.progress)},"progressMessage":${stringJson(job.progressMessage)}` +
    `,"tags":${s.tags.length === 0 ? '[]' : JSON.stringify(s.tags)},"lifo":${s.lifo ? 'true' : 'false'}` +
    `,"removeOnComplete":${keepJson(s.removeOnComplete)},"removeOnFail":${keepJson(s.removeOnFail)}` +
    `,"state":${stateJson.get(job.state) ?? JSON.stringify(JOB_STATE_NAMES[job.state])},"ttl":${numberJson(s.ttl)},"timeout":${numberJson(s.timeout)}` +
    `,"uniqueKey":${s.uniqueKey === '' ? 'null' : stringJson(s.uniqueKey)},"groupId":${s.groupId === '' ? 'null' : stringJson(s.groupId)}` +
    `,"dependsOn":${s.dependsOn.length === 0 ? '[]' : JSON.stringify(s.dependsOn)},"repeat":${s.repeat === null ? 'null' : JSON.stringify(repeatView(s.repeat))}` +
    `,"result":${job.result ?? 'null'},"failedReason":${stringJson(job.error)},"stalledCount":${numberJson(job.stalledCount)}}`
  );
}
