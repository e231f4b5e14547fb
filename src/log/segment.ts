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
import { SegmentIndex } from './offset-index.js';
import { segmentFileName, segmentHeaderBytes } from './segment-header.js';

export class Segment {
  readonly file: string;
  readonly path: string;
  index = new SegmentIndex();
  nextOffset: number;
  bytes: number;
  firstTimestamp: number | null = null;
  lastTimestamp: number | null = null;
  /** Largest timestamp in the segment (clocks may step back; time lookups use the maximum). */
  maxTimestamp: number | null = null;
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
    this.firstTimestamp ??= timestamp;
    this.lastTimestamp = timestamp;
    if (this.maxTimestamp === null || timestamp > this.maxTimestamp) this.maxTimestamp = timestamp;
    this.nextOffset = offset + 1;
    this.bytes = position + frameBytes;
  }

  openRead(): Promise<FileHandle> {
    return open(this.path, fsConstants.O_RDONLY);
  }

  /** Writes both index files atomically (temp file, datasync, rename). The caller fsyncs the dir. */
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
  await writeFile(tmp, data, { flush: true });
  await rename(tmp, path);
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
