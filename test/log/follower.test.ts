// followDirectory beside a writer in the same process. The race that matters is a roll between
// the follower's stat of the active segment (its size includes the preallocated zeros) and its
// read: the roll trims the zeros, so the file ends before the size the follower took. Patching
// stat puts the roll exactly there.

import t from 'tap';
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
