// A read-only open (the tools: verify, export, logcat, replay) beside a writer that keeps going.
// The writer's moves are put between the reader's steps by patching node:fs/promises: a trim of
// the preallocated zeros after the reader took the last segment's size; a directory listing that
// caught a roll half done (a segment missed, a segment created but without its header yet). A
// stopped log with the same damage is still reported.

import t, { type Test } from 'tap';
import type { Dirent } from 'node:fs';
import { rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeSegmentHeader, segmentFileName } from '../../src/log/segment-header.js';
import { drafts, openLog, patchFsPromises, range, readAll, segmentFiles, tempDir, writeLog, type TestContext } from './helpers.js';

/** Every `readdir` of `dir` returns `listing(call, names)` (call counts from 1), as names or, for
 *  a listing `withFileTypes`, as entries (a name the listing adds is a plain file's). */
function onListing(t: TestContext, dir: string, listing: (call: number, names: string[]) => Promise<string[]>): { calls: number } {
  const seen = { calls: 0 };
  patchFsPromises(t, 'readdir', (real) => (async (path: string, opts?: { withFileTypes?: boolean }) => {
    const listed = (await real(path, opts as undefined)) as unknown as Array<string | Dirent>;
    if (path !== dir) return listed;
    if (opts?.withFileTypes !== true) return listing(++seen.calls, listed as string[]);
    const entries = new Map((listed as Dirent[]).map((e) => [e.name, e]));
    const names = await listing(++seen.calls, [...entries.keys()]);
    return names.map((name) => entries.get(name) ?? { name, isDirectory: () => false, isFile: () => true });
  }) as typeof real);
  return seen;
}

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

/** A stopped log of 400 records in four or more segments, and its segment files in order. */
async function segmentedLog(t: Test): Promise<{ dir: string; files: string[] }> {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 4);
  return { dir, files };
}

/** A listing without the files of segment `file` (a roll the listing missed). */
function missing(names: string[], file: string): string[] {
  return names.filter((n) => !n.startsWith(file.slice(0, 20)));
}

t.test('read-only-open-lists-again-when-the-listing-missed-a-segment-of-a-roll', async (t) => {
  const { dir, files } = await segmentedLog(t);
  const listings = onListing(t, dir, async (call, names) => (call === 1 ? missing(names, files[2] as string) : names));
  const { log } = await openLog({ dir, readOnly: true });
  t.ok(listings.calls >= 2, 'the directory was listed again');
  t.equal(log.segments().length, files.length, 'every segment');
  t.strictSame(await readAll(log), range(0, 400), 'every record, no gap reported');
  await log.close();
});

t.test('read-only-open-lists-again-when-retention-removed-a-listed-segment-before-it-was-read', async (t) => {
  const { dir, files } = await segmentedLog(t);
  // The first listing misses a segment of a roll; retention removes the oldest right after the
  // second listing, before the open checks the segments it already verified.
  const listings = onListing(t, dir, async (call, names) => {
    if (call === 1) return missing(names, files[2] as string);
    if (call === 2) await rm(join(dir, files[0] as string));
    return names;
  });
  const { log } = await openLog({ dir, readOnly: true });
  t.ok(listings.calls >= 3, 'the directory was listed again after the segment went');
  t.equal(log.segments().length, files.length - 1, 'every segment but the removed one');
  const first = log.firstOffset;
  t.ok(first > 0, `the log starts after the removed segment (${first})`);
  t.strictSame(await readAll(log), range(first, 400), 'every record after it, no gap reported');
  await log.close();
});

t.test('read-only-open-reports-a-segment-gone-when-retention-outlasts-every-listing-again', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 1_000, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 8, `${files.length} segments`);
  // Each listing names a segment that retention removes before the open reads it.
  let removed = '';
  onListing(t, dir, async (call, names) => {
    removed = files[call - 1] as string;
    await rm(join(dir, removed));
    return names;
  });
  await t.rejects(openLog({ dir, readOnly: true }), { name: 'LogError', code: 'LOG_NOT_FOUND', message: /is gone .*; run it again/ });
  t.not(removed, files[0], 'listed again before giving up');
});

t.test('read-only-open-lists-again-when-the-last-segment-has-no-header-yet', async (t) => {
  const dir = await tempDir(t);
  const { log: writer } = await openLog({ dir, segmentBytes: 8192 });
  await writer.append(drafts(0, 200)).durable;
  await writer.close();
  const next = segmentFileName(200);
  // What a roll does: an O_EXCL create, then the header (here: between the two listings).
  const listings = onListing(t, dir, async (call, names) => {
    if (call === 1) {
      await writeFile(join(dir, next), Buffer.alloc(0), { flag: 'wx' });
      return [...names, next];
    }
    if (call === 2) await writeFile(join(dir, next), encodeSegmentHeader(writer.logId, 200));
    return names;
  });
  const { log } = await openLog({ dir, readOnly: true });
  t.ok(listings.calls >= 2, 'the directory was listed again');
  t.equal(log.openReport.tailCut, null, 'no torn tail of 0 bytes');
  t.equal(log.segments().at(-1)?.file, next, 'the new segment is the (empty) last one');
  t.strictSame(await readAll(log), range(0, 200));
  await log.close();
});

t.test('a-stopped-log-with-a-gap-is-still-reported-read-only', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  await rename(join(dir, files[2] as string), join(dir, `${files[2]}.moved`));
  await t.rejects(openLog({ dir, readOnly: true }), {
    code: 'LOG_GAP',
    file: join(dir, files[3] as string),
    message: `offset gap in ${join(dir, files[3] as string)} at byte 0 (record offset ${Number(files[2]?.slice(0, 20))}): segment starts at offset ${Number(files[3]?.slice(0, 20))}, expected ${Number(files[2]?.slice(0, 20))}`,
  });
});

t.test('a-stopped-log-whose-last-segment-has-no-header-is-still-a-torn-tail-read-only', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  const last = join(dir, files.at(-1) as string);
  await writeFile(last, Buffer.from('TAPEQ'));
  const { log } = await openLog({ dir, readOnly: true });
  t.match(log.openReport.tailCut, { segment: files.at(-1), position: 0, bytes: 5, savedAs: null });
  await log.close();
});
