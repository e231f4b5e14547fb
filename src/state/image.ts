// The plain-data image of the whole projection: what a snapshot stores and what the state digest
// hashes. `exportState(state)` and `importState(image)` (src/state/state.ts) convert between the
// live, indexed State and this image; importState(exportState(s)) must behave exactly like s for
// every later record, and exportState is canonical (same logical state → deep-equal image).
//
// Orders are part of the state and are stated explicitly:
// - QueueImage.waiting lists job ids in the order pulls would take them.
// - QueueImage.completed and .failed list ids oldest first (retention and clean work from the front).
// - jobs are sorted by id.
// - queues are every queue that exists, sorted by name; an idle one (no job, not paused: only its
//   name is kept) is an entry with no ids.

import type { JobSpec, JobState } from '../record/types.js';
import type { JobRun } from './job.js';

/** A job as plain data: its push spec (JobSpec), what running it produced (JobRun, with the logs
 *  never null), and the projection's own fields. */
export interface JobImage extends JobSpec, Omit<JobRun, 'logs' | 'logsLength'> {
  createdAt: number;
  /** dependsOn ids still not completed. */
  pendingDeps: string[];
  state: JobState;
  /** Offset of the record that pushed the job: FIFO tie-break and delayed-order tie-break. */
  seq: number;
  /** Newest last, at most constants.jobLogsMax lines of constants.jobLogsLengthMax characters. */
  logs: string[];
}

export interface QueueImage {
  name: string;
  paused: boolean;
  waiting: string[];
  completed: string[];
  failed: string[];
}

export interface WorkerImage {
  queue: string;
  /** The validated registration as JSON text. */
  config: string;
}

export interface StatsImage {
  totalPushed: number;
  totalPulled: number;
  totalCompleted: number;
  totalFailed: number;
  totalStalled: number;
  totalRemoved: number;
}

export interface StateImage {
  /** Image layout version; bump when a field is added and keep the old reader. */
  version: number;
  /** Offset of the next record to apply (all records < offset are folded in). */
  offset: number;
  /** Timestamp of the last applied record (0 for an empty log). */
  timestamp: number;
  jobs: JobImage[];
  queues: QueueImage[];
  workers: WorkerImage[];
  stats: StatsImage;
}

/** 2: Repeat.key (snapshot schema 3). */
export const stateImageVersion = 2;
