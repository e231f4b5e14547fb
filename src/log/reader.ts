// Reading records back from segment files: seek with the sparse index, then decode frames in
// order, checking every checksum and that offsets are exactly the ones expected.
//
// Yields batches (arrays) so that reading a million records costs a few thousand promises, not a
// million. Each call opens its own O_RDONLY handles; concurrent readers never interfere with each
// other or with the writer. Segments are looked up again at every segment boundary, so a roll
// during a read is seen; a segment removed by retention before it is opened is a LOG_NOT_FOUND.

import type { FileHandle } from 'node:fs/promises';
import { createReader, decodeRecordAt, peekOffsetTimestamp, RecordDecodeError } from '../record/codec.js';
import type { LogRecord } from '../record/types.js';
import { LogError } from './errors.js';
import { FrameCursor } from './frame-cursor.js';
import { frameStatusText } from './framing.js';
import { segmentHeaderBytes } from './segment-header.js';
import type { Segment } from './segment.js';

export const readBatchRecords = 1024;

/** The segment holding `offset` (the last whose base is <= offset), or undefined. */
export function findSegment(segments: readonly Segment[], offset: number): Segment | undefined {
  let lo = 0;
  let hi = segments.length - 1;
  let found: Segment | undefined;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const s = segments[mid] as Segment;
    if (s.baseOffset <= offset) {
      found = s;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export async function* readBatches(
  getSegments: () => readonly Segment[],
  from: number,
  to: number,
  batchRecords = readBatchRecords,
): AsyncGenerator<LogRecord[]> {
  let next = from;
  while (next < to) {
    const segment = findSegment(getSegments(), next);
    if (segment === undefined || next >= segment.nextOffset) {
      throw new LogError('LOG_NOT_FOUND', `offset ${next} is not in the log`, { offset: next });
    }
    let fh: FileHandle;
    try {
      fh = await segment.openRead();
    } catch (err) {
      throw new LogError('LOG_NOT_FOUND', `segment ${segment.file} is gone (retention?)`, { file: segment.path, offset: next, cause: err });
    }
    try {
      for await (const batch of readSegment(segment, fh, next, Math.min(to, segment.nextOffset), batchRecords)) {
        next = (batch[batch.length - 1] as LogRecord).offset + 1;
        yield batch;
      }
    } finally {
      await fh.close();
    }
  }
}

async function* readSegment(segment: Segment, fh: FileHandle, from: number, to: number, batchRecords: number): AsyncGenerator<LogRecord[]> {
  const floor = segment.index.floorByOffset(from - segment.baseOffset);
  const expected = segment.baseOffset + (floor?.relOffset ?? 0);
  const cursor = new FrameCursor(fh, floor?.position ?? segmentHeaderBytes, segment.bytes);
  try {
    yield* readFrames(segment, cursor, expected, from, to, batchRecords);
  } finally {
    cursor.release();
  }
}

async function* readFrames(segment: Segment, cursor: FrameCursor, first: number, from: number, to: number, batchRecords: number): AsyncGenerator<LogRecord[]> {
  let expected = first;
  let reader = createReader(cursor.buf);
  const peek = { offset: 0, timestamp: 0 };
  let batch: LogRecord[] = [];
  while (expected < to) {
    const status = cursor.next();
    if (status === 'refill') {
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
      await cursor.refill();
      reader = createReader(cursor.buf);
      continue;
    }
    if (status === 'end') break;
    if (status !== 'ok') throw corrupt(segment, cursor.position, expected, frameStatusText[status]);
    if (expected < from) {
      peekOffsetTimestamp(cursor.buf, cursor.payloadStart, cursor.payloadEnd, peek);
      if (peek.offset !== expected) throw corrupt(segment, cursor.position, expected, `record holds offset ${peek.offset}`);
    } else {
      let record: LogRecord;
      try {
        record = decodeRecordAt(reader, cursor.payloadStart, cursor.payloadEnd);
      } catch (err) {
        if (err instanceof RecordDecodeError) throw corrupt(segment, cursor.position, expected, err.message);
        throw err;
      }
      if (record.offset !== expected) throw corrupt(segment, cursor.position, expected, `record holds offset ${record.offset}`);
      batch.push(record);
      if (batch.length >= batchRecords) {
        yield batch;
        batch = [];
      }
    }
    expected++;
  }
  if (expected < to) throw corrupt(segment, cursor.nextPosition, expected, 'segment ends early');
  if (batch.length > 0) yield batch;
}

function corrupt(segment: Segment, position: number, offset: number, what: string): LogError {
  return new LogError('LOG_CORRUPT', `corrupt record in ${segment.path} at byte ${position} (record offset ${offset}): ${what}`, {
    file: segment.path,
    position,
    offset,
  });
}

/** First offset in [segment.baseOffset, limit) whose timestamp >= ts, or null. */
export async function offsetAtTimeIn(segment: Segment, ts: number, limit: number): Promise<number | null> {
  if (segment.maxTimestamp === null || segment.maxTimestamp < ts) return null;
  const entry = segment.index.lastBeforeTime(ts);
  let offset = segment.baseOffset + (entry?.relOffset ?? 0);
  const fh = await segment.openRead();
  const cursor = new FrameCursor(fh, entry?.position ?? segmentHeaderBytes, segment.bytes);
  try {
    const peek = { offset: 0, timestamp: 0 };
    while (offset < limit) {
      const status = cursor.next();
      if (status === 'refill') {
        await cursor.refill();
        continue;
      }
      if (status === 'end') return null;
      if (status !== 'ok') throw corrupt(segment, cursor.position, offset, frameStatusText[status]);
      peekOffsetTimestamp(cursor.buf, cursor.payloadStart, cursor.payloadEnd, peek);
      if (peek.timestamp >= ts) return peek.offset;
      offset++;
    }
    return null;
  } finally {
    cursor.release();
    await fh.close();
  }
}
