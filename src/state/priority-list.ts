// The distinct priorities of a wait list, highest first. Held as sorted runs of at most
// 2 × runLengthMax entries, found by binary search: adding or deleting a priority moves the
// entries of one run, not of all. One sorted array moved all of them, and priorities are free
// sint32s: n waiting jobs pushed with rising priorities (a timestamp as the priority) cost O(n²),
// 21 s for 300,000 of them, in the server and again in every replay.
//
// Runs are never empty and are in order: every entry of a run is above every entry of the next.
// Pure data; no I/O.

const runLengthMax = 512;

/** First index of `run` (descending) whose entry is <= `priority`; run.length when none is. */
function indexIn(run: readonly number[], priority: number): number {
  let low = 0;
  let high = run.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((run[mid] as number) > priority) low = mid + 1;
    else high = mid;
  }
  return low;
}

export class PriorityList {
  private readonly runs: number[][] = [];
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds a priority not in the list. */
  add(priority: number): void {
    if (this.runs.length === 0) {
      this.runs.push([priority]);
      this.count = 1;
      return;
    }
    const r = this.runOf(priority);
    const run = this.runs[r] as number[];
    const i = indexIn(run, priority);
    if (run[i] === priority) throw new Error(`PriorityList.add: ${priority} is already listed`);
    run.splice(i, 0, priority);
    this.count++;
    if (run.length > 2 * runLengthMax) this.runs.splice(r + 1, 0, run.splice(runLengthMax));
  }

  /** Deletes a listed priority. */
  delete(priority: number): void {
    const r = this.runs.length === 0 ? -1 : this.runOf(priority);
    const run = this.runs[r];
    const i = run === undefined ? -1 : indexIn(run, priority);
    if (run === undefined || run[i] !== priority) throw new Error(`PriorityList.delete: ${priority} is not listed`);
    run.splice(i, 1);
    this.count--;
    if (run.length === 0) this.runs.splice(r, 1);
  }

  *[Symbol.iterator](): Generator<number, void, void> {
    for (const run of this.runs) yield* run;
  }

  /** The run where `priority` is or belongs: the first whose lowest entry is <= it, else the last. */
  private runOf(priority: number): number {
    let low = 0;
    let high = this.runs.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      const run = this.runs[mid] as number[];
      if ((run[run.length - 1] as number) > priority) low = mid + 1;
      else high = mid;
    }
    return Math.min(low, this.runs.length - 1);
  }
}
