// Follows a log directory that another process is appending to, without opening it for write:
// polls the segment files and yields each new whole, verified record, moving on to the next
// segment when one appears. Used by `tapeq logcat --follow`. Strictly read-only (O_RDONLY).
// A partial frame at the end is simply waited for; a bad frame followed by a newer segment, or
// a bad checksum that stays, is reported as LOG_CORRUPT. One consumer; not re-entrant.

import { readdir, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createReader, decodeRecordAt } from '../record/codec.js';
import type { LogRecord } from '../record/types.js';
import { LogError } from './errors.js';
import { FrameCursor } from './frame-cursor.js';
import { frameStatusText } from './framing.js';
import { segmentFileName, segmentHeaderBytes } from './segment-header.js';
import { Segment } from './segment.js';

export const followPollMs = 200;

export interface FollowPosition {
  /** Segment base offset and byte position of the next frame, and the offset it must hold. */
  baseOffset: number;
  position: number;
  nextOffset: number;
}

export async function* followDirectory(dir: string, at: FollowPosition, signal: AbortSignal): AsyncGenerator<LogRecord[]> {
  let { baseOffset, position, nextOffset } = at;
  while (!signal.aborted) {
    const segment = new Segment(dir, baseOffset);
    const size = await fileSize(segment.path);
    if (size > position) {
      const { records, end } = await readWholeFrames(segment, position, size, nextOffset);
      position = end;
      nextOffset += records.length;
      if (records.length > 0) {
        yield records;
        continue;
      }
    }
    if (await segmentExists(dir, nextOffset, baseOffset)) {
      baseOffset = nextOffset;
      position = segmentHeaderBytes;
      continue;
    }
    await sleep(followPollMs, undefined, { signal }).catch(() => undefined);
  }
}

async function readWholeFrames(segment: Segment, position: number, size: number, nextOffset: number) {
  const fh = await segment.openRead();
  const records: LogRecord[] = [];
  try {
    const cursor = new FrameCursor(fh, position, size);
    let reader = createReader(cursor.buf);
    for (;;) {
      const status = cursor.next();
      if (status === 'refill') {
        await cursor.refill();
        reader = createReader(cursor.buf);
        continue;
      }
      if (status === 'end' || status === 'partial-header' || status === 'partial-payload') break;
      const expected = nextOffset + records.length;
      if (status !== 'ok') {
        throw new LogError('LOG_CORRUPT', `corrupt record in ${segment.path} at byte ${cursor.position} (record offset ${expected}): ${frameStatusText[status]}`, {
          file: segment.path,
          position: cursor.position,
          offset: expected,
        });
      }
      const record = decodeRecordAt(reader, cursor.payloadStart, cursor.payloadEnd);
      if (record.offset !== expected) {
        throw new LogError('LOG_GAP', `offset gap in ${segment.path} at byte ${cursor.position}: found ${record.offset}, expected ${expected}`, {
          file: segment.path,
          position: cursor.position,
          offset: expected,
        });
      }
      records.push(record);
    }
    return { records, end: cursor.nextPosition };
  } finally {
    await fh.close();
  }
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** True if the segment starting at `offset` exists (the current one is then sealed). */
async function segmentExists(dir: string, offset: number, currentBase: number): Promise<boolean> {
  if (offset === currentBase) return false;
  return (await readdir(dir)).includes(segmentFileName(offset));
}
