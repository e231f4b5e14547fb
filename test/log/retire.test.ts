// Retention's file work (src/log/retire.ts through Log.dropSegmentsBefore): a segment leaves the
// log's list only once its files have left the directory, and an archive on another filesystem
// is a copy, not a failed rename.

import t from 'tap';
import { copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drafts, hashTree, openLog, range, readAll, segmentFiles, tempDir } from './helpers.js';

/** /dev/shm when it is on another filesystem than tmpdir() (where the logs go), else null. */
async function otherFilesystem(): Promise<string | null> {
  try {
    return (await stat('/dev/shm')).dev === (await stat(tmpdir())).dev ? null : '/dev/shm';
  } catch {
    return null;
  }
}
const shm = await otherFilesystem();

t.test(
  'archive-on-another-filesystem-is-copied-synced-and-the-original-unlinked',
  { skip: shm === null ? 'no /dev/shm on another filesystem than the temp dir' : false },
  async (t) => {
    const archiveRoot = await mkdtemp(join(shm as string, 'tapeq-archive-'));
    t.teardown(() => rm(archiveRoot, { recursive: true, force: true }));
    const archive = join(archiveRoot, 'archive');
    const dir = await tempDir(t);
    const { log } = await openLog({ dir, segmentBytes: 8192 });
    await log.append(drafts(0, 400)).durable;
    const before = log.segments();
    const cutOffset = (before[3] as { nextOffset: number }).nextOffset;
    const hashesBefore = await hashTree(dir);

    const removed = await log.dropSegmentsBefore(cutOffset, Number.MAX_SAFE_INTEGER, archive);

    t.strictSame(removed, before.slice(0, 4).map((s) => s.file), 'the four oldest segments');
    t.equal(log.firstOffset, cutOffset);
    const archived = await hashTree(archive);
    const expected = Object.fromEntries(Object.entries(hashesBefore).filter(([name]) => removed.some((f) => name.startsWith(f.slice(0, 20)))));
    t.equal(Object.keys(expected).length, 3 * removed.length, `each segment's .log, .index and .timeindex`);
    t.strictSame(archived, expected, 'every file of the removed segments, byte for byte, and nothing else (no .tmp)');
    const left = await readdir(dir);
    for (const name of Object.keys(expected)) t.notOk(left.includes(name), `${name} gone from the log dir`);
    t.strictSame(await readAll(log), range(cutOffset, 400));
    await log.close();
  },
);

t.test('failed-archive-move-keeps-the-segment-listed-readable-and-retried', async (t) => {
  const dir = await tempDir(t);
  const archive = join(dir, 'archive');
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 400)).durable;
  const before = log.segments();
  const first = before[0] as { file: string; nextOffset: number };
  const second = before[1] as { nextOffset: number };
  // A non-empty directory where the first segment's archived copy would go: its rename fails.
  await mkdir(join(archive, first.file, 'in-the-way'), { recursive: true });

  await t.rejects(log.dropSegmentsBefore(second.nextOffset, Number.MAX_SAFE_INTEGER, archive));

  t.equal(log.firstOffset, 0, 'the segment that did not move is still the first');
  t.strictSame(log.segments(), before, 'the list is unchanged');
  t.ok((await segmentFiles(dir)).includes(first.file), 'and its file is still in the log dir');
  t.strictSame(await readAll(log, 0), range(0, 400), 'every record still reads from offset 0');

  await rm(join(archive, first.file), { recursive: true });
  t.strictSame(await log.dropSegmentsBefore(second.nextOffset, Number.MAX_SAFE_INTEGER, archive), before.slice(0, 2).map((s) => s.file), 'the next pass moves it');
  t.equal(log.firstOffset, second.nextOffset);
  t.strictSame(await segmentFiles(archive), before.slice(0, 2).map((s) => s.file));
  await log.close();
});

t.test('failed-delete-keeps-the-segment-listed', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 400)).durable;
  const before = log.segments();
  const first = before[0] as { file: string; nextOffset: number };
  // rm refuses a non-empty directory without `recursive`: stands in for an unlink that fails.
  const index = join(dir, first.file.replace(/\.log$/, '.index'));
  await rm(index, { force: true });
  await mkdir(join(index, 'in-the-way'), { recursive: true });
  await writeFile(join(index, 'in-the-way', 'x'), 'x');

  await t.rejects(log.dropSegmentsBefore(first.nextOffset, Number.MAX_SAFE_INTEGER));

  t.strictSame(log.segments(), before, 'the list is unchanged');
  t.ok((await segmentFiles(dir)).includes(first.file));
  t.strictSame(await readAll(log, 0), range(0, 400));
  await log.close();
});

t.test('files-named-after-the-segment-go-with-it-and-unfinished-writes-are-not-archived', async (t) => {
  const dir = await tempDir(t);
  const archive = join(dir, 'archive');
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 400)).durable;
  const [first, second] = log.segments();
  if (first === undefined || second === undefined) throw new Error('segments');
  const base = first.file.replace(/\.log$/, '');
  await writeFile(join(dir, `${base}.jobindex`), 'job index');
  await writeFile(join(dir, `${base}.jobindex.tmp-123-4`), '');
  const keep = `${second.file.replace(/\.log$/, '')}.jobindex`;
  await writeFile(join(dir, keep), 'job index of a kept segment');

  t.strictSame(await log.dropSegmentsBefore(first.nextOffset, Number.MAX_SAFE_INTEGER, archive), [first.file]);

  t.strictSame((await readdir(archive)).sort(), [first.file, `${base}.index`, `${base}.jobindex`, `${base}.timeindex`].sort());
  t.strictSame((await readdir(dir)).filter((n) => n.startsWith(base)), [], 'nothing of it left in the log dir');
  t.ok((await readdir(dir)).includes(keep), 'the next segment keeps its files');
  await log.close();
});

t.test('archiving-never-replaces-another-logs-segment-of-the-same-name', async (t) => {
  // Two brokers (or a wiped DATA_DIR, or a `tapeq recover` fork) archiving into one ARCHIVE_DIR:
  // every log's first segment is 00000000000000000000.log.
  const archive = join(await tempDir(t, 'archive'), 'archive');
  const dirA = await tempDir(t, 'a');
  const dirB = await tempDir(t, 'b');
  const { log: a } = await openLog({ dir: dirA, segmentBytes: 8192 });
  const { log: b } = await openLog({ dir: dirB, segmentBytes: 8192 });
  await a.append(drafts(0, 400)).durable;
  await b.append(drafts(0, 400)).durable;
  const firstA = a.segments()[0] as { file: string; nextOffset: number };
  const beforeB = b.segments();
  const firstB = beforeB[0] as { file: string; nextOffset: number };
  t.equal(firstA.file, firstB.file, 'the same segment name in both logs');
  t.not(a.logId, b.logId, 'two logs');

  t.strictSame(await a.dropSegmentsBefore(firstA.nextOffset, Number.MAX_SAFE_INTEGER, archive), [firstA.file]);
  const archivedA = await hashTree(archive);

  await t.rejects(b.dropSegmentsBefore(firstB.nextOffset, Number.MAX_SAFE_INTEGER, archive), {
    message: new RegExp(`${firstB.file}.*another log.*${a.logId}`),
  });
  t.strictSame(await hashTree(archive), archivedA, "the first log's archived segment is untouched, byte for byte");
  t.strictSame(b.segments(), beforeB, 'the refused segment stays listed');
  t.strictSame(await readAll(b, 0), range(0, 400), 'and readable');
  await a.close();
  await b.close();
});

t.test('archiving-again-over-this-logs-own-copy-of-a-segment-completes', async (t) => {
  // A pass cut short after the copy reached the archive but before the original was unlinked.
  const archive = join(await tempDir(t, 'archive'), 'archive');
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 400)).durable;
  const first = log.segments()[0] as { file: string; nextOffset: number };
  await mkdir(archive, { recursive: true });
  await copyFile(join(dir, first.file), join(archive, first.file));

  t.strictSame(await log.dropSegmentsBefore(first.nextOffset, Number.MAX_SAFE_INTEGER, archive), [first.file]);
  t.equal(log.firstOffset, first.nextOffset);
  await log.close();
});

t.test('an-archive-dir-that-is-the-log-dir-by-another-name-is-refused', async (t) => {
  // ARCHIVE_DIR spelt through a symlink (config.ts compares the names only): each move would be
  // a rename onto itself, the segment dropped from the list while its file stays and frees nothing.
  const dir = await tempDir(t);
  const links = await tempDir(t, 'links');
  const alias = join(links, 'log-alias');
  await symlink(dir, alias);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 400)).durable;
  const before = log.segments();
  const first = before[0] as { file: string; nextOffset: number };

  await t.rejects(log.dropSegmentsBefore(first.nextOffset, Number.MAX_SAFE_INTEGER, alias), { message: /is the log directory itself/ });
  t.strictSame(log.segments(), before, 'the list is unchanged');
  await log.close();
});
