// A read-only open (the tools: verify, export, logcat, replay) beside a writer that keeps going.
// The writer's moves are put between the reader's steps by patching node:fs/promises: a trim of
// the preallocated zeros after the reader took the last segment's size.

import t from 'tap';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { drafts, openLog, patchFsPromises, range, readAll, segmentFiles, tempDir } from './helpers.js';

t.test('read-only-open-scans-on-when-the-last-segment-is-trimmed-while-it-is-read', async (t) => {
  const dir = await tempDir(t);
  const { log: writer } = await openLog({ dir, segmentBytes: 8192 });
  await writer.append(drafts(0, 30)).durable;
  const file = join(dir, (await segmentFiles(dir))[0] as string);
  let trimmed = false;
  patchFsPromises(t, 'open', (real) => (async (path: string, flags?: number, mode?: number) => {
    const fh: FileHandle = await real(path, flags, mode);
    if (path !== file || trimmed) return fh;
    const stat = fh.stat.bind(fh);
    fh.stat = (async () => {
      const stats = await stat();
      if (!trimmed) {
        trimmed = true;
        t.ok(stats.size > writer.segments()[0]!.bytes, 'the size taken includes preallocated zeros');
        await writer.close(); // a clean close trims them
      }
      return stats;
    }) as FileHandle['stat'];
    return fh;
  }) as typeof real);
  const { log } = await openLog({ dir, readOnly: true });
  t.ok(trimmed, 'the file was trimmed after its size was taken');
  t.equal(log.openReport.tailCut, null);
  t.strictSame(await readAll(log), range(0, 30), 'every record, no corruption reported');
  await log.close();
});
