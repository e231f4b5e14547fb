// The sparse indexes of one segment, kept in memory and written beside it when it is sealed:
//
//   <base>.index      entries of 8 B:  relative offset u32 LE | file position u32 LE
//   <base>.timeindex  entries of 12 B: max timestamp so far u64 LE | relative offset u32 LE
//
// An entry is added for the first record at or after every indexIntervalBytes of the segment.
// Time entries carry the largest timestamp seen up to and including that record, so
// "every record at or before this entry has timestamp <= ts" holds even if clocks stepped back.
// Indexes are derived data: recovery rebuilds them while it scans the segment and rewrites the
// files when they are missing or differ from the rebuild; nothing trusts them blindly.
// Invariants: relative offsets and positions strictly increase; timestamps never decrease.

import { indexIntervalBytes } from '../constants.js';

export const offsetIndexEntryBytes = 8;
export const timeIndexEntryBytes = 12;

/** Everything a SegmentIndex holds, as plain data (crosses a worker boundary). */
export interface SegmentIndexState {
  rel: number[];
  pos: number[];
  ts: number[];
  bytesSinceEntry: number;
  maxTimestamp: number;
}

export class SegmentIndex {
  private rel: number[] = [];
  private pos: number[] = [];
  private ts: number[] = [];
  private bytesSinceEntry = Number.POSITIVE_INFINITY;
  private maxTimestamp = Number.NEGATIVE_INFINITY;

  static fromState(s: SegmentIndexState): SegmentIndex {
    const index = new SegmentIndex();
    index.rel = s.rel;
    index.pos = s.pos;
    index.ts = s.ts;
    index.bytesSinceEntry = s.bytesSinceEntry;
    index.maxTimestamp = s.maxTimestamp;
    return index;
  }

  state(): SegmentIndexState {
    const { rel, pos, ts, bytesSinceEntry, maxTimestamp } = this;
    return { rel, pos, ts, bytesSinceEntry, maxTimestamp };
  }

  get entryCount(): number {
    return this.rel.length;
  }

  /** Called for every record in file order. */
  note(relOffset: number, position: number, frameBytes: number, timestamp: number): void {
    if (timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    if (this.bytesSinceEntry >= indexIntervalBytes) {
      this.rel.push(relOffset);
      this.pos.push(position);
      this.ts.push(this.maxTimestamp);
      this.bytesSinceEntry = 0;
    }
    this.bytesSinceEntry += frameBytes;
  }

  /** Position to start scanning for relOffset: the last entry at or before it (or null). */
  floorByOffset(relOffset: number): { relOffset: number; position: number } | null {
    const i = lastIndexAtOrBelow(this.rel, relOffset);
    return i < 0 ? null : { relOffset: this.rel[i] as number, position: this.pos[i] as number };
  }

  /** The last entry whose max timestamp is < ts: every record up to it is older than ts. */
  lastBeforeTime(ts: number): { relOffset: number; position: number } | null {
    const i = lastIndexAtOrBelow(this.ts, ts - 1);
    return i < 0 ? null : { relOffset: this.rel[i] as number, position: this.pos[i] as number };
  }

  offsetIndexBytes(): Buffer {
    const buf = Buffer.alloc(this.rel.length * offsetIndexEntryBytes);
    for (let i = 0; i < this.rel.length; i++) {
      buf.writeUInt32LE(this.rel[i] as number, i * 8);
      buf.writeUInt32LE(this.pos[i] as number, i * 8 + 4);
    }
    return buf;
  }

  timeIndexBytes(): Buffer {
    const buf = Buffer.alloc(this.ts.length * timeIndexEntryBytes);
    for (let i = 0; i < this.ts.length; i++) {
      buf.writeBigUInt64LE(BigInt(this.ts[i] as number), i * 12);
      buf.writeUInt32LE(this.rel[i] as number, i * 12 + 8);
    }
    return buf;
  }
}

/** Index of the last element <= x in an ascending array, or -1. */
function lastIndexAtOrBelow(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= x) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}
