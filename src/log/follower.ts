// Follows a log directory that another process is appending to, without opening it for write:
// polls the segment files and yields each new whole, verified record, moving on to the next
// segment when one appears. Used by `tapeq logcat --follow`. Strictly read-only (O_RDONLY).
// A partial or bad frame at the end is waited for (a concurrent reader can see a write half
// copied into the page cache); it is reported as LOG_CORRUPT only when it is still bad after
// settlePolls polls with the file unchanged. Zeros from a frame to the end of the file are the
// writer's preallocated space, where records have not arrived yet; the writer trims them when it
// rolls or closes, so a file can end before the size taken for a read: the frames read are kept
// and the size is taken again (records are yielded once each, across rolls). A segment that
// disappears under a follower still behind in it was retired (retention deleted or archived it):
// the follower says which offsets it lost through onRetired and goes on at the next segment on
// disk, rather than waiting for a file that will not come back. One consumer; not re-entrant.

import { readdir, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createReader, decodeRecordAt } from '../record/codec.js';
import type { LogRecord } from '../record/types.js';
import { errnoOf, isShrank, LogError } from './errors.js';
import { FrameCursor } from './frame-cursor.js';
import { frameStatusText } from './framing.js';
import { listSegmentBases } from './recovery.js';
import { segmentFileName, segmentHeaderBytes } from './segment-header.js';
import { zerosFrom } from './segment-scan.js';
import { Segment } from './segment.js';

export const followPollMs = 200;
/** Polls a bad frame at the end must stay bad (file size unchanged) before it is corruption. */
export const settlePolls = 5;

export interface FollowPosition {
  /** Segment base offset and byte position of the next frame, and the offset it must hold. */
  baseOffset: number;
  position: number;
  nextOffset: number;
}

/** Offsets [from, to) were in a segment retired before the follower read them. */
export type OnRetired = (from: number, to: number) => void;

export async function* followDirectory(dir: string, at: FollowPosition, signal: AbortSignal, onRetired?: OnRetired): AsyncGenerator<LogRecord[]> {
  let { baseOffset, position, nextOffset } = at;
  let stuck = { position: -1, size: -1, polls: 0 };
  while (!signal.aborted) {
    const segment = new Segment(dir, baseOffset);
    const size = await fileSize(segment.path);
    if (size === null) {
      const next = await firstSegmentAfter(dir, baseOffset);
      if (next !== null) {
        if (next > nextOffset) onRetired?.(nextOffset, next);
        baseOffset = next;
        position = segmentHeaderBytes;
        nextOffset = next;
        continue;
      }
    } else if (size > position) {
      const { records, end, bad, shrank } = await readWholeFrames(segment, position, size, nextOffset);
      position = end;
      nextOffset += records.length;
      if (records.length > 0) {
        stuck = { position: -1, size: -1, polls: 0 };
        yield records;
        continue;
      }
      if (shrank) continue;
      if (bad !== null) {
        stuck = stuck.position === position && stuck.size === size ? { ...stuck, polls: stuck.polls + 1 } : { position, size, polls: 1 };
        if (stuck.polls >= settlePolls) throw bad;
      }
    }
    if (size !== null && position >= size && (await segmentExists(dir, nextOffset, baseOffset))) {
      baseOffset = nextOffset;
      position = segmentHeaderBytes;
      continue;
    }
    await sleep(followPollMs, undefined, { signal }).catch(() => undefined);
  }
}

async function readWholeFrames(segment: Segment, position: number, size: number, nextOffset: number) {
  const records: LogRecord[] = [];
  let fh: Awaited<ReturnType<Segment['openRead']>>;
  try {
    fh = await segment.openRead();
  } catch (err) {
    // Retired since its size was taken: the caller takes it again and finds the file gone.
    if (errnoOf(err) === 'ENOENT') return { records, end: position, bad: null, shrank: true };
    throw err;
  }
  let bad: LogError | null = null;
  const cursor = new FrameCursor(fh, position, size);
  try {
    let reader = createReader(cursor.buf);
    for (;;) {
      const status = cursor.next();
      if (status === 'refill') {
        if (!(await refillUnlessShrunk(cursor))) return { records, end: cursor.nextPosition, bad, shrank: true };
        reader = createReader(cursor.buf);
        continue;
      }
      if (status === 'end' || status === 'partial-header' || status === 'partial-payload') break;
      const expected = nextOffset + records.length;
      if (status !== 'ok') {
        // Zeros to the end are the writer's preallocated space: no record yet, nothing bad.
        if (await zerosFrom(fh, cursor.position, size)) break;
        bad = new LogError('LOG_CORRUPT', `corrupt record in ${segment.path} at byte ${cursor.position} (record offset ${expected}): ${frameStatusText[status]}`, {
          file: segment.path,
          position: cursor.position,
          offset: expected,
        });
        break;
      }
      let record: LogRecord;
      try {
        record = decodeRecordAt(reader, cursor.payloadStart, cursor.payloadEnd);
      } catch (err) {
        throw new LogError('LOG_CORRUPT', `undecodable record in ${segment.path} at byte ${cursor.position} (record offset ${expected})`, {
          file: segment.path,
          position: cursor.position,
          offset: expected,
          cause: err,
        });
      }
      if (record.offset !== expected) {
        throw new LogError('LOG_GAP', `offset gap in ${segment.path} at byte ${cursor.position}: found ${record.offset}, expected ${expected}`, {
          file: segment.path,
          position: cursor.position,
          offset: expected,
        });
      }
      records.push(record);
    }
    return { records, end: cursor.nextPosition, bad, shrank: false };
  } finally {
    cursor.release();
    await fh.close();
  }
}

/** Loads the cursor's next chunk; false when the file ended before the size the cursor was given:
 *  the writer trimmed its preallocated zeros (a roll or a close) after that size was taken. The
 *  frames read before are whole and verified; the caller takes the size again. */
async function refillUnlessShrunk(cursor: FrameCursor): Promise<boolean> {
  try {
    await cursor.refill();
    return true;
  } catch (err) {
    if (isShrank(err)) return false;
    throw err;
  }
}

/** The file's size; null when it does not exist. */
async function fileSize(path: string): Promise<number | null> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return null;
    throw err;
  }
}

/** The lowest base offset of a segment after `base` in the directory, or null. */
async function firstSegmentAfter(dir: string, base: number): Promise<number | null> {
  return (await listSegmentBases(dir)).find((b) => b > base) ?? null;
}

/** True if the segment starting at `offset` exists (the current one is then sealed). */
async function segmentExists(dir: string, offset: number, currentBase: number): Promise<boolean> {
  if (offset === currentBase) return false;
  return (await readdir(dir)).includes(segmentFileName(offset));
}
