// How far V8 lets the old generation grow past the live heap before its next full GC.
//
// A fixed percentage (V8's --heap-growing-percent) fits a large heap: 30% of the ~240 MB that a
// million waiting jobs hold keeps the RSS after a fill under 600 MB. On a small heap the same
// 30% is a few MB, so a server taking jobs quickly collects its whole old generation several
// times a second (WebSocket push: a full GC every ~300 ms). The server therefore sets the
// percentage again after every full GC from the live heap it left: HEAP_GROWING_PERCENT, or
// heapHeadroomBytes of growth when that is more, never beyond heapGrowingPercentCeiling.
//
// V8 reads the flag when it computes the next limit at the end of a full GC, so a value set
// from the GC's performance entry applies from the full GC after it.

import { constants as perf, PerformanceObserver, type PerformanceEntry } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { heapGrowingPercentCeiling, heapHeadroomBytes } from './constants.js';

/** The growth percentage for a live heap of `liveBytes`: at least `percentMin`, enough for
 *  `headroomBytes`, at most `ceiling`. */
export function growingPercent(liveBytes: number, percentMin: number, headroomBytes = heapHeadroomBytes, ceiling = heapGrowingPercentCeiling): number {
  const forHeadroom = liveBytes > 0 ? Math.floor((headroomBytes * 100) / liveBytes) : ceiling;
  return Math.max(percentMin, Math.min(ceiling, forHeadroom));
}

function isFullGc(entry: PerformanceEntry): boolean {
  const detail = (entry as PerformanceEntry & { detail?: { kind?: number } | null }).detail;
  return detail?.kind === perf.NODE_PERFORMANCE_GC_MAJOR;
}

/** Sets V8's heap growth now and after every full GC, for the rest of the process. `percentMin`
 *  0 leaves V8 its own factor (nothing is set). */
export function governHeapGrowth(percentMin: number): void {
  if (percentMin <= 0) return;
  let current = -1;
  const set = (): void => {
    const percent = growingPercent(getHeapStatistics().used_heap_size, percentMin);
    if (percent === current) return;
    setFlagsFromString(`--heap-growing-percent=${percent}`);
    current = percent;
  };
  set();
  new PerformanceObserver((list) => {
    if (list.getEntries().some(isFullGc)) set();
  }).observe({ entryTypes: ['gc'] });
}
