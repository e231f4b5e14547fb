// A point in the log's history, as the tools and `serve --until` accept it:
//
//   --until 1234                    an offset: the state after records [0, 1234), i.e. up to and
//                                   including record 1233 (1234 itself is the first left out)
//   --until 2025-01-02T03:04:05Z    a time: the state after the LAST record whose timestamp is
//                                   <= that time (until = its offset + 1); records stamped later
//                                   are left out. A time before the first record gives its offset.
//
// Only digits are an offset; anything else must be an ISO 8601 date or date-time (isoTimeMs), so
// epoch milliseconds are written as an ISO time. Points past the log's end resolve to the end
// (for an offset, the tools and `serve --until` say so on stderr).

/** What the resolver needs from the Log. */
export interface PointLog {
  readonly firstOffset: number;
  readonly durableOffset: number;
  lastOffsetAtOrBefore(ts: number): Promise<number>;
  offsetAtTime(ts: number): Promise<number>;
}

export type Point = { kind: 'offset'; offset: number } | { kind: 'time'; ms: number };

export class PointError extends Error {
  override readonly name = 'PointError';
}

export function parsePoint(flag: string, text: string): Point {
  if (/^\d+$/.test(text)) {
    const offset = Number(text);
    if (!Number.isSafeInteger(offset)) throw new PointError(`${flag}: offset out of range: ${text}`);
    return { kind: 'offset', offset };
  }
  const ms = isoTimeMs(text);
  if (!Number.isFinite(ms)) throw new PointError(`${flag}: neither an offset nor an ISO 8601 time: ${text}`);
  return { kind: 'time', ms };
}

/** An ISO 8601 date (`2026-12-06`) or date-time (`2026-12-06T10:00`, seconds, fraction and zone
 *  optional) as epoch ms; NaN for anything else. A time without a zone is UTC, as a date alone
 *  is (Date.parse would read it in the machine's zone, so one command could name two points on
 *  two machines). Date.parse alone takes almost anything ("1.5" is a date in 2001, "-5" one in
 *  the year -5) and rolls a day the month does not have over into the next month ("2026-02-30"
 *  is March 2), which would turn a typo into a point in time. */
export function isoTimeMs(text: string): number {
  const iso = /^(\d{4})-(\d{2})-(\d{2})(?:([T ])\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
  const match = iso.exec(text);
  if (match === null) return Number.NaN;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const lastDay = new Date(0);
  lastDay.setUTCFullYear(year, month, 0); // not Date.UTC, which reads years 0-99 as 1900-1999
  const daysInMonth = lastDay.getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return Number.NaN;
  const zoneless = match[4] !== undefined && match[5] === undefined;
  return Date.parse(zoneless ? `${text}Z` : text);
}

/** The exclusive end offset a point stands for, at most durableOffset. An offset below the log's
 *  first retained one is kept as is: loading the state there then fails, naming the records gone. */
export async function untilOffset(log: PointLog, point: Point): Promise<number> {
  const raw = point.kind === 'offset' ? point.offset : (await log.lastOffsetAtOrBefore(point.ms)) + 1;
  return Math.min(raw, log.durableOffset);
}

/** The first offset of a `--since <time>` bound (first record with timestamp >= time). */
export async function sinceOffset(log: PointLog, ms: number): Promise<number> {
  return Math.min(await log.offsetAtTime(ms), log.durableOffset);
}

export function describePoint(point: Point): string {
  return point.kind === 'offset' ? `offset ${point.offset}` : new Date(point.ms).toISOString();
}
