// Process memory and projection sizes as the monitoring and debug endpoints report them.
// Memory is in whole MB (seed 004). "collections" are seed 004's names for bunqueue's internal
// structures; in tapeq they are sizes of the projection, taken from the broker's statistics:
// jobIndex = jobs known to the index, completedJobs = completed jobs retained,
// processingTotal = active jobs, queuedTotal = waiting jobs, temporalIndexTotal = delayed jobs.

import { readFileSync } from 'node:fs';
import type { StatsView } from '../broker/types.js';

export function toMb(bytes: number): number {
  return Math.round(bytes / (1024 * 1024));
}

export function memoryMb(): { heapUsed: number; heapTotal: number; rss: number; external: number; arrayBuffers: number } {
  const m = process.memoryUsage();
  return {
    heapUsed: toMb(m.heapUsed),
    heapTotal: toMb(m.heapTotal),
    rss: toMb(m.rss),
    external: toMb(m.external),
    arrayBuffers: toMb(m.arrayBuffers),
  };
}

/** Resident set of another process of ours (the snapshot process), in whole MB, from Linux's
 *  /proc/<pid>/status; null where that cannot be read (another OS, the process just gone). */
export function processRssMb(pid: number): number | null {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
    return kib === undefined ? null : toMb(Number(kib) * 1024);
  } catch {
    return null;
  }
}

export function collections(stats: StatsView) {
  return {
    jobIndex: stats.jobIndex,
    completedJobs: stats.completed,
    processingTotal: stats.processing,
    queuedTotal: stats.queued,
    temporalIndexTotal: stats.delayed,
  };
}
