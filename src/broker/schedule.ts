// Repeat schedules: when the first and the next instance of a repeating job run. The only module
// that imports croner. Pure functions of their arguments (the caller passes `nowMs`); the result
// is stored in the pushed record, so replay never evaluates a schedule again.
//
// - every: the first run is at push time (+ delay); each next run is the schedule's first slot
//   (the previous runAt + a whole number of intervals) not before now: missed runs are not
//   replayed in a burst, and a run that started late (a backlog, a restart after downtime) is not
//   followed at once by another.
// - pattern (cron, optional tz): the first run is the next cron time after now, or now when
//   `immediately`; each next run is the next cron time after now. No future time → no next run.

import { Cron } from 'croner';
import type { Repeat } from '../record/types.js';

function cronOf(pattern: string, tz: string): Cron {
  return new Cron(pattern, tz === '' ? { paused: true } : { paused: true, timezone: tz });
}

/** null when valid, else why not. */
export function cronPatternError(pattern: string, tz: string): string | null {
  try {
    const cron = cronOf(pattern, tz);
    cron.nextRun(new Date(0));
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

export function nextCronRunMs(pattern: string, tz: string, afterMs: number): number | null {
  const next = cronOf(pattern, tz).nextRun(new Date(afterMs));
  return next === null ? null : next.getTime();
}

export function firstRepeatRunAt(repeat: Repeat, nowMs: number, delayMs: number): number | null {
  if (repeat.every !== null || repeat.immediately) return nowMs + delayMs;
  const next = nextCronRunMs(repeat.pattern, repeat.tz, nowMs);
  return next === null ? null : Math.max(next, nowMs + delayMs);
}

export function nextRepeatRunAt(repeat: Repeat, prevRunAtMs: number, nowMs: number): number | null {
  if (repeat.limit !== null && repeat.count + 1 >= repeat.limit) return null;
  if (repeat.every !== null) return nextEverySlotMs(prevRunAtMs, repeat.every, nowMs);
  return nextCronRunMs(repeat.pattern, repeat.tz, nowMs);
}

/** prevRunAtMs + k·everyMs for the least k ≥ 1 that is not before nowMs. */
function nextEverySlotMs(prevRunAtMs: number, everyMs: number, nowMs: number): number {
  const behindMs = nowMs - prevRunAtMs;
  return prevRunAtMs + (behindMs <= everyMs ? 1 : Math.ceil(behindMs / everyMs)) * everyMs;
}
