import t from 'tap';
import { cp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { smallPushDraft } from '../fixtures/records.js';
import { drafts, openLog, range, readAll, segmentFiles, tempDir, writeLog } from './helpers.js';

t.test('segment-rolls-at-segmentBytes-with-directory-fsync-and-no-frame-straddles', async (t) => {
  const dir = await tempDir(t);
  const events: string[] = [];
  const { log } = await openLog({
    dir,
    segmentBytes: 8192,
    fsHooks: {
      syncDir: async (d, real) => {
        events.push(`syncDir ${d}`);
        await real();
      },
      write: (file, _bytes, real) => {
        events.push(`write ${file}`);
        return real();
      },
    },
  });
  await log.append(drafts(0, 300)).durable;
  const segs = log.segments();
  t.ok(segs.length >= 4, `${segs.length} segments`);
  for (const [i, s] of segs.entries()) {
    t.equal(s.file, `${String(s.baseOffset).padStart(20, '0')}.log`, '20-digit base offset name');
    t.ok(s.bytes <= 8192, `${s.file} within segmentBytes`);
    const size = (await stat(join(dir, s.file))).size;
    if (i < segs.length - 1) t.equal(size, s.bytes, `sealed ${s.file} holds its records and nothing more`);
    else {
      t.ok(size > s.bytes, 'the active segment is zero-filled ahead of its writes');
      const tail = (await readFile(join(dir, s.file))).subarray(s.bytes);
      t.ok(tail.every((b) => b === 0), 'with zeros');
    }
    if (i > 0) {
      t.equal(s.baseOffset, segs[i - 1]?.nextOffset, 'contiguous');
      const firstWrite = events.indexOf(`write ${s.file}`);
      const dirSync = events.indexOf(`syncDir ${dir}`, events.indexOf(`write ${segs[i - 1]?.file}`));
      t.ok(dirSync >= 0 && dirSync < firstWrite, `dir fsynced before the first write to ${s.file}`);
    }
  }
  for (const s of segs.slice(0, -1)) {
    t.ok((await stat(join(dir, s.file.replace('.log', '.index')))).size > 0, 'sealed segment has an index file');
  }
  t.strictSame(await readAll(log), range(0, 300));
  await log.close();
  const last = segs[segs.length - 1];
  if (last === undefined) throw new Error('no segment');
  t.equal((await stat(join(dir, last.file))).size, last.bytes, 'close cuts the zeros');
});

t.test('index-files-deleted-or-corrupted-are-rebuilt-and-seeks-stay-correct', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 3000, { segmentBytes: 64 * 1024 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 3);
  const idx0 = join(dir, (files[0] as string).replace('.log', '.index'));
  const tidx1 = join(dir, (files[1] as string).replace('.log', '.timeindex'));
  const good0 = await readFile(idx0);
  await rm(idx0);
  const bad = await readFile(tidx1);
  bad.writeUInt32LE(999_999, 8);
  await writeFile(tidx1, bad);
  const { log, lines } = await openLog({ dir, segmentBytes: 64 * 1024 });
  t.strictSame(log.openReport.indexesRebuilt.sort(), [files[0], files[1]]);
  t.match(lines.join('\n'), /rebuilt index files/);
  t.strictSame(await readFile(idx0), good0, 'rebuilt byte-identical');
  for (const offset of [0, 1, 499, 1234, 2999]) t.equal((await log.readOne(offset))?.offset, offset);
  t.equal(await log.offsetAtTime(1_700_000_000_000 + 1500), 1500);
  await log.close();
  const again = await openLog({ dir, segmentBytes: 64 * 1024 });
  t.strictSame(again.log.openReport.indexesRebuilt, [], 'nothing to rebuild the second time');
  await again.log.close();
});

t.test('seek-by-timestamp-first-at-or-after-and-last-at-or-before', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  const t0 = 1_800_000_000_000;
  // timestamps t0 + 10*i: gaps between records, several per index interval and segment
  await log.append(range(0, 1000).map((i) => smallPushDraft(i, t0 + 10 * i))).durable;
  t.equal(await log.offsetAtTime(0), 0);
  t.equal(await log.offsetAtTime(t0), 0);
  t.equal(await log.offsetAtTime(t0 + 1), 1);
  t.equal(await log.offsetAtTime(t0 + 10 * 537), 537);
  t.equal(await log.offsetAtTime(t0 + 10 * 537 - 3), 537);
  t.equal(await log.offsetAtTime(t0 + 10 * 999), 999);
  t.equal(await log.offsetAtTime(t0 + 10 * 999 + 1), 1000, 'none: nextOffset');
  t.equal(await log.lastOffsetAtOrBefore(t0 + 10 * 537), 537);
  t.equal(await log.lastOffsetAtOrBefore(t0 + 10 * 537 + 9), 537);
  t.equal(await log.lastOffsetAtOrBefore(t0 - 1), -1, 'none');
  t.equal(await log.lastOffsetAtOrBefore(t0 + 10 ** 9), 999);
  await log.close();
});

t.test('retention-drops-only-whole-old-sealed-segments-as-a-prefix', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  await log.append(drafts(0, 400)).durable;
  const before = log.segments();
  const cutOffset = (before[3] as { nextOffset: number }).nextOffset;
  t.strictSame(await log.dropSegmentsBefore(cutOffset, 0), [], 'too recent: nothing');
  const archive = join(dir, 'archive');
  const removed = await log.dropSegmentsBefore(cutOffset + 1, Number.MAX_SAFE_INTEGER, archive);
  t.strictSame(removed, before.slice(0, 4).map((s) => s.file));
  t.equal(log.firstOffset, cutOffset);
  t.strictSame(await segmentFiles(archive), removed, 'moved to the archive dir');
  t.strictSame(await readAll(log), range(cutOffset, 400));
  await t.rejects(async () => readAll(log, 0), { code: 'LOG_NOT_FOUND' });
  const all = await log.dropSegmentsBefore(10 ** 9, Number.MAX_SAFE_INTEGER);
  t.equal(log.segments().length, 1, 'never the active segment');
  t.ok(all.length > 0);
  await log.close();
  const again = await openLog({ dir });
  t.equal(again.log.firstOffset, log.segments()[0]?.baseOffset);
  t.equal(again.log.nextOffset, 400);
  await again.log.close();
});

t.test('empty-log-opens-with-one-header-only-segment', async (t) => {
  const dir = await tempDir(t);
  const { log } = await openLog({ dir });
  t.equal(log.nextOffset, 0);
  t.equal(log.firstOffset, 0);
  t.match(log.logId, /^[0-9a-f-]{36}$/);
  t.strictSame(log.segments().map((s) => s.bytes), [segmentHeaderBytes]);
  t.strictSame(await readAll(log), []);
  t.equal(await log.offsetAtTime(0), 0);
  await log.close();
  const again = await openLog({ dir });
  t.equal(again.log.logId, log.logId, 'log id is kept');
  await again.log.close();
});

t.test('record-ending-exactly-at-segmentBytes-stays-and-the-next-one-rolls', async (t) => {
  // Frame sizes: offset 0 is a proto3 default (absent), offsets 1..127 take one varint byte.
  const probe = await tempDir(t, 'probe');
  const first = await openLog({ dir: probe });
  await first.log.append(drafts(0, 1)).durable;
  const frame0 = (first.log.segments()[0]?.bytes as number) - segmentHeaderBytes;
  await first.log.append(drafts(1, 1)).durable;
  const frame = (first.log.segments()[0]?.bytes as number) - segmentHeaderBytes - frame0;
  await first.log.close();
  const records = Math.ceil(4096 / frame) + 1;
  t.ok(records < 128, 'all in the one-byte-offset range');
  const segmentBytes = segmentHeaderBytes + frame0 + (records - 1) * frame;
  const dir = await tempDir(t);
  const { log } = await openLog({ dir, segmentBytes });
  await log.append(drafts(0, records)).durable;
  t.strictSame(
    log.segments().map((s) => [s.baseOffset, s.bytes]),
    [[0, segmentBytes]],
    'the record ending exactly at segmentBytes stays in the segment',
  );
  await log.append(drafts(records, 1)).durable;
  t.strictSame(
    log.segments().map((s) => [s.baseOffset, s.bytes]),
    [
      [0, segmentBytes],
      [records, segmentHeaderBytes + frame],
    ],
    'the next record rolls',
  );
  await log.close();
});

t.test('sealed-segments-verified-in-a-worker-open-exactly-as-scanned-here', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 3000, { segmentBytes: 64 * 1024 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 4, 'several sealed segments');
  const here = await openLog({ dir, segmentBytes: 64 * 1024 });
  const expected = here.log.segments();
  await here.log.close();
  const { log, lines } = await openLog({ dir, segmentBytes: 64 * 1024, sealedInWorker: true });
  t.equal(log.openReport.verifiedInWorker, files.length - 1, 'every sealed segment was verified by the worker');
  t.strictSame(log.segments(), expected, 'same offsets, sizes and timestamps per segment');
  t.strictSame(log.openReport.indexesRebuilt, [], 'the worker-built indexes equal the index files on disk');
  t.strictSame(lines, []);
  for (const offset of [0, 1, 499, 1234, 2999]) t.equal((await log.readOne(offset))?.offset, offset);
  t.equal(await log.offsetAtTime(1_700_000_000_000 + 1500), 1500);
  await log.append(drafts(3000, 5)).durable;
  t.strictSame(await readAll(log, 2990), range(2990, 3005), 'appends continue after the adopted segments');
  await log.close();
});

t.test('a-segment-of-another-log-refuses-open-whether-verified-here-or-in-a-worker', async (t) => {
  const dir = await tempDir(t);
  const other = await tempDir(t, 'other');
  await writeLog(dir, 1000, { segmentBytes: 8192 });
  await writeLog(other, 1000, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  const victim = files[2] as string;
  t.strictSame((await segmentFiles(other)).includes(victim), true, 'the other log has a segment of that name');
  await cp(join(other, victim), join(dir, victim));
  const refusal = (sealedInWorker: boolean) =>
    openLog({ dir, sealedInWorker }).then(
      () => null,
      (e: unknown) => e as Error & { code: string },
    );
  const here = await refusal(false);
  const worker = await refusal(true);
  t.equal(here?.code, 'LOG_CORRUPT');
  t.match(here?.message, /segment belongs to log/);
  t.equal(worker?.message, here?.message, 'the same error, word for word');
  const clean = await openLog({ dir: other, sealedInWorker: true });
  t.equal(clean.log.openReport.verifiedInWorker, files.length - 1, 'the worker verified every sealed segment of the clean log');
  await clean.log.close();
});

t.test('an-open-given-an-earlier-opens-sealed-results-reads-only-new-or-changed-segments', async (t) => {
  const dir = await tempDir(t);
  const segmentBytes = 64 * 1024;
  await writeLog(dir, 3000, { segmentBytes });
  const first = await openLog({ dir, segmentBytes, readOnly: true });
  const known = first.log.sealedScanResults();
  await first.log.close();
  t.ok(known.size >= 3, `${known.size} sealed segments known`);
  const more = await openLog({ dir, segmentBytes });
  await more.log.append(drafts(3000, 2000)).durable;
  await more.log.close();

  const fresh = await openLog({ dir, segmentBytes, readOnly: true });
  const withKnown = await openLog({ dir, segmentBytes, readOnly: true, knownSealed: known });
  t.equal(withKnown.log.openReport.knownSealed, known.size, 'the known segments were not read again');
  t.ok(withKnown.log.segments().length - 1 > known.size, 'segments sealed since were');
  t.strictSame(withKnown.log.segments(), fresh.log.segments(), 'the same log as a full scan gives');
  for (const offset of [0, 1499, 2999, 3000, 4999]) t.equal((await withKnown.log.readOne(offset))?.offset, offset);
  t.equal(await withKnown.log.offsetAtTime(1_700_000_000_000 + 1500), await fresh.log.offsetAtTime(1_700_000_000_000 + 1500));
  await fresh.log.close();
  await withKnown.log.close();

  // A known segment whose file changed (here: bytes appended) is read again, and its damage found.
  const victim = (await segmentFiles(dir))[1] as string;
  await writeFile(join(dir, victim), Buffer.from('garbage'), { flag: 'a' });
  const refused = await openLog({ dir, segmentBytes, readOnly: true, knownSealed: known }).then(
    () => null,
    (e: unknown) => e as Error & { code: string; file: string },
  );
  t.equal(refused?.code, 'LOG_CORRUPT');
  t.equal(refused?.file, join(dir, victim));
});
