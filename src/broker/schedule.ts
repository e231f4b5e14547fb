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

/**
 * Why `pattern` is not a cron pattern this broker runs, naming the field; null when it is one.
 * It parses and never searches for a run: a search walks every year the pattern allows until it
 * finds one, which for a pattern with no run (February 31st) is up to 9999 with a year field,
 * about 100 ms, and validation runs for every job of a bulk push before any is refused. So a
 * year field other than `*` is refused (cron as BullMQ and bunqueue read it has 5 or 6 fields),
 * which leaves croner's own bound on a search (400 years) as the most one costs; whether the
 * pattern has a run at all is the push's single search (commands.ts, `no future run`), which
 * stops a bulk push at its first such job.
 *
 * The reason is tapeq's own, not croner's text, which counts "five, six, or seven" fields (a
 * year this broker refuses), numbers its own seven entries, and names the wrong bound of a field
 * (`Invalid value for day: 31` for a 32).
 */
export function cronPatternError(pattern: string, tz: string): { field: 'pattern' | 'tz'; error: string } | null {
  if (tz !== '' && !isTimeZone(tz)) return { field: 'tz', error: `must be an IANA time zone name (got ${JSON.stringify(tz)})` };
  const trimmed = pattern.trim();
  const parts = trimmed === '' ? [] : trimmed.split(/\s+/);
  const year = parts[6];
  if (year !== undefined && year !== '*') return { field: 'pattern', error: `${cronShape}: its year field must be * or absent (got ${JSON.stringify(year)})` };
  try {
    cronOf(pattern, tz);
    return null;
  } catch {
    const why = cronFieldError(parts);
    return { field: 'pattern', error: why === null ? cronShape : `${cronShape}: ${why}` };
  }
}

const cronShape = 'must be a cron pattern of 5 or 6 fields ([seconds] minutes hours day-of-month month day-of-week)';
const cronFieldNames = ['minutes', 'hours', 'day-of-month', 'month', 'day-of-week'];

/** Which part of a pattern croner refused: the count of its fields, or the first field that is
 *  refused alone (every other field `*`); null if none is (croner refused the whole only). */
function cronFieldError(parts: string[]): string | null {
  if (parts.length < 5 || parts.length > 7) return `it has ${parts.length}`;
  const names = parts.length === 5 ? cronFieldNames : ['seconds', ...cronFieldNames];
  for (const [i, name] of names.entries()) {
    try {
      cronOf(parts.map((part, j) => (j === i ? part : '*')).join(' '), '');
    } catch {
      return `its ${name} field ${JSON.stringify(parts[i])} is not valid`;
    }
  }
  return null;
}

/** Croner converts times with Intl, so a zone Intl does not know fails every search. */
function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
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
