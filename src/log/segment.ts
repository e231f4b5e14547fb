// One segment: a file `<20-digit base offset>.log` holding a header and the frames of the
// records [baseOffset, nextOffset), plus its in-memory sparse index.
//
// Invariants: `bytes` is the file size covered by whole, verified frames (the writer only ever
// appends at `bytes`); nextOffset - baseOffset frames follow the header; relative offsets and
// positions fit in u32 (segmentBytes < 4 GiB). Only the active (last) segment has a write
// handle; readers open their own O_RDONLY handles, so reads never contend with the writer.

import { open, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { SegmentIndex, type SegmentIndexState } from './offset-index.js';
import { segmentFileName, segmentHeaderBytes } from './segment-header.js';

/** What a scan learned about a segment, as plain data (crosses a worker boundary). */
export interface SegmentScanState {
  nextOffset: number;
  bytes: number;
  timestampFirst: number;
  timestampLast: number;
  timestampMax: number;
  index: SegmentIndexState;
}

export class Segment {
  readonly file: string;
  readonly path: string;
  index = new SegmentIndex();
  nextOffset: number;
  bytes: number;
  // Timestamps are kept in number-only fields (NaN until the first record): V8 then stores them
  // in place, where a `number | null` field would box every timestamp (> 2^31) it is given,
  // one allocation per record during a scan.
  private timestampFirst = Number.NaN;
  private timestampLast = Number.NaN;
  private timestampMax = Number.NaN;
  /** Write handle; only while this is the active segment. */
  writer: FileHandle | null = null;

  constructor(
    readonly dir: string,
    readonly baseOffset: number,
  ) {
    this.file = segmentFileName(baseOffset);
    this.path = join(dir, this.file);
    this.nextOffset = baseOffset;
    this.bytes = segmentHeaderBytes;
  }

  get firstTimestamp(): number | null {
    return Number.isNaN(this.timestampFirst) ? null : this.timestampFirst;
  }

  get lastTimestamp(): number | null {
    return Number.isNaN(this.timestampLast) ? null : this.timestampLast;
  }

  /** Largest timestamp in the segment (clocks may step back; time lookups use the maximum). */
  get maxTimestamp(): number | null {
    return Number.isNaN(this.timestampMax) ? null : this.timestampMax;
  }

  get recordCount(): number {
    return this.nextOffset - this.baseOffset;
  }

  get indexPath(): string {
    return this.path.replace(/\.log$/, '.index');
  }

  get timeIndexPath(): string {
    return this.path.replace(/\.log$/, '.timeindex');
  }

  /** Book-keeping for one frame at `position` (file order, consecutive offsets). */
  noteRecord(offset: number, timestamp: number, position: number, frameBytes: number): void {
    this.index.note(offset - this.baseOffset, position, frameBytes, timestamp);
    if (Number.isNaN(this.timestampFirst)) this.timestampFirst = timestamp;
    this.timestampLast = timestamp;
    if (!(timestamp <= this.timestampMax)) this.timestampMax = timestamp;
    this.nextOffset = offset + 1;
    this.bytes = position + frameBytes;
  }

  scanState(): SegmentScanState {
    const { nextOffset, bytes, timestampFirst, timestampLast, timestampMax } = this;
    return { nextOffset, bytes, timestampFirst, timestampLast, timestampMax, index: this.index.state() };
  }

  /** Takes over what a scan of this segment's file (in another thread) found. */
  adoptScan(s: SegmentScanState): void {
    this.nextOffset = s.nextOffset;
    this.bytes = s.bytes;
    this.timestampFirst = s.timestampFirst;
    this.timestampLast = s.timestampLast;
    this.timestampMax = s.timestampMax;
    this.index = SegmentIndex.fromState(s.index);
  }

  openRead(): Promise<FileHandle> {
    return open(this.path, fsConstants.O_RDONLY);
  }

  /** Writes both index files atomically (temp file, datasync, rename). The caller fsyncs the dir.
   *  A failed write leaves no temp file behind. */
  async writeIndexFiles(): Promise<void> {
    await writeAtomic(this.indexPath, this.index.offsetIndexBytes());
    await writeAtomic(this.timeIndexPath, this.index.timeIndexBytes());
  }

  async removeIndexFiles(): Promise<void> {
    await rm(this.indexPath, { force: true });
    await rm(this.timeIndexPath, { force: true });
  }
}

async function writeAtomic(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await writeFile(tmp, data, { flush: true });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}

/** fsync a directory so that created, renamed or removed entries survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
