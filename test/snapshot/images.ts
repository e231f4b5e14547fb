// Hand-built StateImages for the snapshot tests: one with every field populated (nulls, big
// numbers above 2^32, unicode, empty and non-empty lists) and a generator of simple waiting jobs;
// and a snapshot file made to look written by a newer build.

import { readFile, writeFile } from 'node:fs/promises';
import { checksum32, initChecksum } from '../../src/log/checksum.js';
import type { JobImage, StateImage } from '../../src/state/image.js';

const big = 2 ** 40 + 12_345; // > 2^32, needs a long
const t0 = 1_700_000_000_000;

export function fullJob(id: string, overrides: Partial<JobImage> = {}): JobImage {
  return {
    id,
    queue: 'emails',
    name: 'welcome ✉',
    data: '{"to":"a@example.com","n":1,"nested":{"x":[1,2,3]},"u":"žluťoučký"}',
    priority: -7,
    createdAt: t0,
    runAt: t0 + 5_000,
    startedAt: t0 + 6_000,
    finishedAt: null,
    attempts: 2,
    maxAttempts: 5,
    backoff: big,
    backoffType: 1,
    ttl: 60_000,
    timeout: null,
    uniqueKey: 'welcome:a@example.com',
    customId: true,
    tags: ['signup', 'mail'],
    groupId: 'tenant-42',
    lifo: true,
    removeOnComplete: { remove: false, count: 100, ageMs: big },
    removeOnFail: { remove: true, count: null, ageMs: null },
    dependsOn: ['dep-1', 'dep-2'],
    pendingDeps: ['dep-2'],
    repeat: { every: 10_000, pattern: '*/5 * * * *', limit: 12, immediately: true, count: 3, tz: 'Europe/Paris', key: 'nightly-report' },
    maxStalled: 2,
    state: 3,
    progress: 42.5,
    progressMessage: 'half way',
    result: null,
    error: 'boom: 💥',
    lockToken: 'tok-1',
    lockOwner: 'ws:7',
    lockExpiresAt: 2 ** 52 + 1,
    stalledCount: 1,
    seq: big + 1,
    logs: ['step 1', 'step 2'],
    ...overrides,
  };
}

export function fullImage(offset = 2 ** 33 + 7): StateImage {
  return {
    version: 2,
    offset,
    timestamp: t0 + 123,
    jobs: [
      fullJob('job-1'),
      fullJob('job-2', {
        startedAt: null,
        finishedAt: t0 + 9_000,
        ttl: null,
        timeout: 2 ** 45,
        removeOnComplete: null,
        removeOnFail: null,
        repeat: { every: null, pattern: '0 0 * * *', limit: null, immediately: false, count: 0, tz: '', key: '' },
        maxStalled: null,
        state: 4,
        progress: 100,
        progressMessage: null,
        result: '{"ok":true}',
        error: null,
        lockToken: null,
        lockOwner: null,
        lockExpiresAt: null,
        tags: [],
        dependsOn: [],
        pendingDeps: [],
        logs: [],
      }),
      fullJob('job-3', { repeat: null, priority: 2 ** 31 + 5, data: '""', state: 1, progress: 0 }),
    ],
    queues: [
      { name: 'emails', paused: true, waiting: ['job-3'], completed: ['job-2'], failed: [] },
      { name: 'empty', paused: false, waiting: [], completed: [], failed: [] },
    ],
    workers: [{ queue: 'emails', config: '{"queue":"emails","endpoint":{"url":"http://x","method":"POST"}}' }],
    stats: {
      totalPushed: big,
      totalPulled: 2 ** 32,
      totalCompleted: 1,
      totalFailed: 0,
      totalStalled: 3,
      totalRemoved: 4,
    },
  };
}

export function emptyImage(offset = 0, timestamp = 0): StateImage {
  return {
    version: 2,
    offset,
    timestamp,
    jobs: [],
    queues: [],
    workers: [],
    stats: { totalPushed: 0, totalPulled: 0, totalCompleted: 0, totalFailed: 0, totalStalled: 0, totalRemoved: 0 },
  };
}

/** Rewrites a snapshot's header as a newer build would write it: schema version 99, header
 *  checksum recomputed (the file verifies; this build cannot decode it). */
export async function makeFutureSchema(file: string): Promise<void> {
  await initChecksum();
  const bytes = await readFile(file);
  bytes.writeUInt32LE(99, 12);
  bytes.writeUInt32LE(checksum32(bytes, 0, 44), 44);
  await writeFile(file, bytes);
}
