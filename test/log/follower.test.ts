// followDirectory beside a writer in the same process. The race that matters is a roll between
// the follower's stat of the active segment (its size includes the preallocated zeros) and its
// read: the roll trims the zeros, so the file ends before the size the follower took. Patching
// stat puts the roll exactly there.

import t from 'tap';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { followDirectory } from '../../src/log/follower.js';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { drafts, openLog, patchFsPromises, range, segmentFiles, tempDir } from './helpers.js';

t.test('follow-reads-on-when-a-roll-trims-the-zeros-after-the-size-was-taken', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 20)).durable;
  const first = join(dir, (await segmentFiles(dir))[0] as string);
  let rolled = false;
  patchFsPromises(t, 'stat', (real) => (async (path: string, opts?: object) => {
    const stats = await real(path, opts as undefined);
    if (path === first && !rolled) {
      rolled = true;
      t.ok(stats.size > log.segments()[0]!.bytes, 'the size taken includes preallocated zeros');
      await log.append(drafts(20, 100)).durable; // fills the segment: the roll trims it
      t.ok(log.segments().length > 1, 'the writer rolled before the follower read');
    }
    return stats;
  }) as typeof real);
  const stop = new AbortController();
  const seen: number[] = [];
  for await (const batch of followDirectory(dir, { baseOffset: 0, position: segmentHeaderBytes, nextOffset: 0 }, stop.signal)) {
    for (const r of batch) seen.push(r.offset);
    if (seen.length >= 120) stop.abort();
  }
  t.ok(rolled, 'the stat hook ran');
  t.strictSame(seen, range(0, 120), 'every record once, in order, across the roll');
  await log.close();
});

t.test('follow-names-the-offsets-of-a-segment-retired-under-it-and-goes-on-at-the-next', { timeout: 15_000 }, async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  const count = 400;
  await log.append(drafts(0, count)).durable;
  const segments = log.segments();
  t.ok(segments.length >= 3, 'the records span several segments');
  const [first, second] = segments as [(typeof segments)[0], (typeof segments)[0]];
  // Retention takes the first segment (the writer no longer needs it) right after the follower
  // read it: no false alarm.
  const stop = new AbortController();
  const seen: number[] = [];
  const retired: Array<[number, number]> = [];
  const follower = followDirectory(dir, { baseOffset: 0, position: segmentHeaderBytes, nextOffset: 0 }, stop.signal, (from, to) => retired.push([from, to]));
  let removed = false;
  for await (const batch of follower) {
    for (const r of batch) seen.push(r.offset);
    if (!removed) {
      removed = true;
      await unlink(join(dir, first.file));
    }
    if (seen.at(-1) === count - 1) stop.abort();
  }
  t.strictSame(retired, [], 'a segment that goes after it was read whole loses nothing');
  t.strictSame(seen, range(0, count), 'every record once, in order');

  // Now one that is still at the start of the second segment when it goes.
  const again: number[] = [];
  const lost: Array<[number, number]> = [];
  const stop2 = new AbortController();
  await unlink(join(dir, second.file));
  for await (const batch of followDirectory(dir, { baseOffset: second.baseOffset, position: segmentHeaderBytes, nextOffset: second.baseOffset }, stop2.signal, (from, to) => lost.push([from, to]))) {
    for (const r of batch) again.push(r.offset);
    if (again.at(-1) === count - 1) stop2.abort();
  }
  const third = (segments[2] as (typeof segments)[0]).baseOffset;
  t.strictSame(lost, [[second.baseOffset, third]], 'the retired offsets are named, once');
  t.strictSame(again, range(third, count), 'the follower goes on at the next segment on disk');
  await log.close();
});

t.test('follow-names-the-records-retention-removed-from-the-segment-it-was-reading-and-reads-on', { timeout: 15_000 }, async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 10)).durable;
  const stop = new AbortController();
  const seen: number[] = [];
  const lost: Array<[number, number]> = [];
  let second = 0;
  for await (const batch of followDirectory(dir, { baseOffset: 0, position: segmentHeaderBytes, nextOffset: 0 }, stop.signal, (from, to) => lost.push([from, to]))) {
    for (const r of batch) seen.push(r.offset);
    if (seen.length === 10) {
      // A slow reader (a full pipe): meanwhile the writer fills and rolls the segment this
      // follower is still in, and retention removes it before its last records were read.
      await log.append(drafts(10, 200)).durable;
      second = log.segments()[1]?.baseOffset ?? 0;
      t.ok(second > 10, 'records after the ones read are in the first segment');
      const first = (await segmentFiles(dir))[0];
      t.same(await log.dropSegmentsBefore(second, Number.POSITIVE_INFINITY), [first]);
    }
    if (seen.at(-1) === 209) stop.abort();
  }
  t.strictSame(lost, [[10, second]], 'the records it could not read are named');
  t.strictSame(seen, [...range(0, 10), ...range(second, 210)], 'then it reads on from the next segment');
  await log.close();
});
