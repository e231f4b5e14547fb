import t, { type Test } from 'tap';
import { cp, mkdir, readFile, readdir, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeSegmentHeader, segmentHeaderBytes } from '../../src/log/segment-header.js';
import type { Log } from '../../src/log/log.js';
import { drafts, openLog, range, readAll, segmentFiles, tempDir, writeLog } from './helpers.js';

/** Byte positions of every frame in the single segment of `dir`, by reading lengths. */
async function framePositions(path: string): Promise<number[]> {
  const buf = await readFile(path);
  const out: number[] = [];
  for (let p = segmentHeaderBytes; p < buf.length; p += 8 + buf.readUInt32LE(p)) out.push(p);
  return out;
}

t.test('truncated-tail-is-cut-and-reported-at-every-byte-of-the-last-three-records', async (t) => {
  const pristine = await tempDir(t, 'pristine');
  await writeLog(pristine, 20);
  const file = (await segmentFiles(pristine))[0] as string;
  const positions = await framePositions(join(pristine, file));
  const size = (await stat(join(pristine, file))).size;
  const firstCut = positions[positions.length - 3] as number;
  const whole = await readFile(join(pristine, file));
  let checked = 0;
  for (let cutAt = firstCut + 1; cutAt < size; cutAt++) {
    const dir = await tempDir(t, 'torn');
    await cp(pristine, dir, { recursive: true });
    await truncate(join(dir, file), cutAt);
    const { log, lines } = await openLog({ dir });
    const wholeRecords = positions.filter((p) => p < cutAt && positions.indexOf(p) < positions.length && nextFrame(positions, p, size) <= cutAt).length;
    const lastWholeEnd = wholeRecords === 0 ? segmentHeaderBytes : nextFrame(positions, positions[wholeRecords - 1] as number, size);
    if (lastWholeEnd === cutAt) {
      t.equal(log.openReport.tailCut, null, `cut at ${cutAt} is on a frame boundary`);
    } else {
      const cut = log.openReport.tailCut;
      if (cut === null) {
        t.fail(`cut at ${cutAt} not reported`);
        await log.close();
        continue;
      }
      t.equal(cut.segment, file);
      t.equal(cut.position, lastWholeEnd);
      t.equal(cut.bytes, cutAt - lastWholeEnd);
      t.strictSame(await readFile(cut.savedAs as string), whole.subarray(lastWholeEnd, cutAt), 'cut bytes saved beside the segment');
      t.match(lines.join('\n'), `cut torn tail of ${file} at byte ${lastWholeEnd}: ${cutAt - lastWholeEnd} bytes`);
      t.equal((await stat(join(dir, file))).size, lastWholeEnd, 'segment truncated to the last whole record');
    }
    t.equal(log.nextOffset, wholeRecords);
    t.strictSame(await readAll(log), range(0, wholeRecords), `cut at ${cutAt}: exactly the whole records before`);
    await appendAfterTheCutAndReopen(t, log, dir, wholeRecords);
    checked++;
  }
  t.ok(checked > 200, `${checked} cut positions checked`);
});

/** Appends one record to a log opened after a cut (`records` long), closes it, and checks that
 *  it reopens clean and one longer. */
async function appendAfterTheCutAndReopen(t: Test, log: Log, dir: string, records: number): Promise<void> {
  await log.append(drafts(records, 1)).durable;
  await log.close();
  const again = await openLog({ dir });
  t.equal(again.log.openReport.tailCut, null, 'appending after the cut leaves a clean log');
  t.equal(again.log.nextOffset, records + 1);
  await again.log.close();
}

function nextFrame(positions: number[], p: number, size: number): number {
  const i = positions.indexOf(p);
  return positions[i + 1] ?? size;
}

t.test('garbage-after-the-last-record-is-a-torn-tail', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 10);
  const file = join(dir, (await segmentFiles(dir))[0] as string);
  const before = (await stat(file)).size;
  await writeFile(file, Buffer.from([5, 0, 0, 0, 1, 2, 3, 4, 9, 9, 9, 9, 9]), { flag: 'a' });
  const { log } = await openLog({ dir });
  t.match(log.openReport.tailCut, { position: before, bytes: 13 });
  t.strictSame(await readAll(log), range(0, 10));
  await log.close();
});

t.test('preallocated-zeros-after-the-last-record-are-trimmed-without-a-copy-or-a-torn-tail-report', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 10);
  const file = join(dir, (await segmentFiles(dir))[0] as string);
  const records = (await stat(file)).size;
  // What a crash leaves: the zeros written ahead of the records (group-commit.ts), never reached.
  await writeFile(file, Buffer.alloc(1 << 20), { flag: 'a' });
  const readOnly = await openLog({ dir, readOnly: true });
  t.equal(readOnly.log.openReport.tailCut, null, 'read-only: not a torn tail either');
  t.strictSame(await readAll(readOnly.log), range(0, 10));
  await readOnly.log.close();
  t.equal((await stat(file)).size, records + (1 << 20), 'read-only leaves the file as it is');

  const { log, lines } = await openLog({ dir });
  t.equal(log.openReport.tailCut, null, 'no torn tail reported');
  t.strictSame(lines.filter((l) => l.includes('torn')), [], 'nothing logged as torn');
  t.strictSame(await readAll(log), range(0, 10));
  await log.append(drafts(10, 5)).durable;
  await log.close();
  t.equal((await stat(file)).size > records, true);
  t.strictSame((await readdir(dir)).filter((n) => n.includes('torn')), [], 'no copy kept');
  const reopened = await openLog({ dir });
  t.strictSame(await readAll(reopened.log), range(0, 15), 'appends after the trim continue the log');
  await reopened.log.close();
});

t.test('a-partial-record-followed-by-zeros-is-a-torn-tail-cut-with-its-copy', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 10);
  const file = join(dir, (await segmentFiles(dir))[0] as string);
  const before = (await stat(file)).size;
  // The first bytes of a frame reached the disk, the rest of its page did not.
  const partial = Buffer.concat([Buffer.from([40, 0, 0, 0, 1, 2, 3, 4, 9, 9]), Buffer.alloc(4096)]);
  await writeFile(file, partial, { flag: 'a' });
  const { log } = await openLog({ dir });
  t.match(log.openReport.tailCut, { position: before, bytes: partial.length });
  t.strictSame(await readAll(log), range(0, 10));
  await log.close();
});

/** Flips one bit inside the payload of record `offset` (single-segment or given file). */
async function flipBitInRecord(path: string, index: number): Promise<number> {
  const positions = await framePositions(path);
  const position = positions[index] as number;
  const buf = await readFile(path);
  buf[position + 8 + 3] = (buf[position + 8 + 3] as number) ^ 0x10;
  await writeFile(path, buf);
  return position;
}

// The server verifies sealed segments in a worker thread (sealedInWorker); every outcome must be
// the one a scan on the opening thread gives.
for (const sealedInWorker of [false, true]) {
  const where = sealedInWorker ? '-verified-in-a-worker' : '';

  t.test('sealed-segment-bit-flip-refuses-open-naming-file-byte-and-offset' + where, async (t) => {
    const dir = await tempDir(t);
    await writeLog(dir, 400, { segmentBytes: 8192 });
    const files = await segmentFiles(dir);
    t.ok(files.length >= 4);
    const victim = files[1] as string;
    const base = Number(victim.slice(0, 20));
    const position = await flipBitInRecord(join(dir, victim), 5);
    const err = await openLog({ dir, sealedInWorker }).then(
      () => null,
      (e: unknown) => e as { code: string; file: string; position: number; offset: number; message: string },
    );
    t.ok(err, 'open refused');
    t.equal(err?.code, 'LOG_CORRUPT');
    t.equal(err?.file, join(dir, victim));
    t.equal(err?.position, position);
    t.equal(err?.offset, base + 5);
    t.match(err?.message, `${victim} at byte ${position} (record offset ${base + 5})`);
    t.match(err?.message, 'checksum mismatch');
  });

  t.test('repair-quarantines-the-bad-part-and-opens-at-the-last-good-offset' + where, async (t) => {
    const dir = await tempDir(t);
    await writeLog(dir, 400, { segmentBytes: 8192 });
    const files = await segmentFiles(dir);
    const victim = files[1] as string;
    const base = Number(victim.slice(0, 20));
    const original = await readFile(join(dir, victim));
    const position = await flipBitInRecord(join(dir, victim), 5);
    const { log, lines } = await openLog({ dir, repair: true, sealedInWorker });
    t.equal(log.nextOffset, base + 5, 'opens at the last good offset');
    t.equal(log.openReport.verifiedInWorker, sealedInWorker ? 1 : 0, 'the worker verified the segment before the bad one');
    t.strictSame(await readAll(log), range(0, base + 5));
    const q = log.openReport.quarantined;
    t.match(q, { segment: victim, position, offset: base + 5 });
    t.match(lines.join('\n'), /repair: quarantined/);
    const moved = await readdir(q?.dir as string);
    t.ok(moved.includes(`${victim}.from-${position}`), 'bad part moved aside');
    for (const later of files.slice(2)) t.ok(moved.includes(later), `${later} moved aside, not deleted`);
    const kept = await readFile(join(q?.dir as string, `${victim}.from-${position}`));
    t.equal(kept.length, original.length - position, 'all bytes from the bad point are kept');
    t.strictSame(await segmentFiles(dir), files.slice(0, 2));
    await log.append(drafts(base + 5, 3)).durable;
    t.equal(log.nextOffset, base + 8);
    await log.close();
    const again = await openLog({ dir, sealedInWorker });
    t.equal(again.log.nextOffset, base + 8, 'repaired log reopens cleanly');
    await again.log.close();
  });

  t.test('offset-gap-between-segments-refuses-open' + where, async (t) => {
    const dir = await tempDir(t);
    await writeLog(dir, 400, { segmentBytes: 8192 });
    const files = await segmentFiles(dir);
    const missing = files[2] as string;
    await rename(join(dir, missing), join(dir, `${missing}.moved`));
    const next = files[3] as string;
    await t.rejects(openLog({ dir, sealedInWorker }), { code: 'LOG_GAP', file: join(dir, next), offset: Number(files[2]?.slice(0, 20) ?? -1) });
  });

  // In a worker, the scan fails midway: what it verified before stands, the rest is read here.
  t.test('an-unreadable-sealed-segment-fails-the-open-with-the-read-error' + where, async (t) => {
    const dir = await tempDir(t);
    await writeLog(dir, 400, { segmentBytes: 8192 });
    const files = await segmentFiles(dir);
    const path = join(dir, files[2] as string);
    await rm(path);
    // A directory so named is refused by the listing; one reached through a link is read and fails.
    await mkdir(path);
    await t.rejects(openLog({ dir, sealedInWorker }), { code: 'LOG_CORRUPT', file: path, message: /is a directory, not a segment file/ });
    await rm(path, { recursive: true });
    await mkdir(join(dir, 'elsewhere'));
    await symlink(join(dir, 'elsewhere'), path);
    await t.rejects(openLog({ dir, sealedInWorker }), { code: 'EISDIR' });
  });

  t.test('bad-segment-header-refuses-open' + where, async (t) => {
    const dir = await tempDir(t);
    await writeLog(dir, 400, { segmentBytes: 8192 });
    const files = await segmentFiles(dir);
    const path = join(dir, files[1] as string);
    const buf = await readFile(path);
    buf[30] = (buf[30] as number) ^ 1;
    await writeFile(path, buf);
    await t.rejects(openLog({ dir, sealedInWorker }), { code: 'LOG_CORRUPT', position: 0, message: /header checksum mismatch/ });
  });
}

t.test('active-segment-bad-frame-followed-by-valid-frames-refuses-open', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 20);
  const file = (await segmentFiles(dir))[0] as string;
  const position = await flipBitInRecord(join(dir, file), 10);
  await t.rejects(openLog({ dir }), { code: 'LOG_CORRUPT', position, offset: 10 });
  t.equal((await readFile(join(dir, file))).length > position + 100, true, 'nothing was cut');
});

/** Zeroes the 512-byte sector at or after `from` in the file: a sector of the last write that
 *  never reached the disk reads as the preallocated zeros. Returns the sector's position. */
async function zeroSectorFrom(path: string, from: number): Promise<number> {
  const buf = await readFile(path);
  const sector = Math.ceil(from / 512) * 512;
  buf.fill(0, sector, sector + 512);
  await writeFile(path, buf);
  return sector;
}

t.test('a-last-write-that-reached-the-disk-in-part-is-cut-as-a-torn-tail-though-valid-frames-follow', async (t) => {
  const pristine = await tempDir(t, 'pristine');
  await writeLog(pristine, 400); // one append: one group commit, one write
  const file = (await segmentFiles(pristine))[0] as string;
  const positions = await framePositions(join(pristine, file));
  for (const at of [100, 250, 390]) {
    const dir = await tempDir(t, `torn-${at}`);
    await cp(pristine, dir, { recursive: true });
    const path = join(dir, file);
    const sector = await zeroSectorFrom(path, (positions[at] as number) + 1);
    const damaged = await readFile(path);
    // The first frame the zeros reach, and a whole frame after them that is still valid.
    const first = positions.findIndex((_, i) => (positions[i + 1] ?? damaged.length) > sector);
    t.ok(positions.some((p) => p >= sector + 512), 'valid frames follow the zeros');

    const readOnly = await openLog({ dir, readOnly: true });
    t.match(readOnly.log.openReport.tailCut, { position: positions[first], savedAs: null }, 'read-only: reported');
    t.strictSame(await readAll(readOnly.log), range(0, first), 'read-only: the log ends before the damage');
    await readOnly.log.close();
    t.strictSame(await readFile(path), damaged, 'read-only leaves the file as it is');

    const { log, lines } = await openLog({ dir });
    t.match(log.openReport.tailCut, { segment: file, position: positions[first], bytes: damaged.length - (positions[first] as number) });
    t.strictSame(await readFile(log.openReport.tailCut?.savedAs as string), damaged.subarray(positions[first]), 'the cut bytes are kept');
    t.match(lines.join('\n'), /cut torn tail .* last write that reached the disk in part/);
    t.strictSame(await readAll(log), range(0, first), `zeros at ${sector}: the records before them stay`);
    await appendAfterTheCutAndReopen(t, log, dir, first);
  }
});

t.test('zeros-further-from-the-end-than-one-group-commit-are-damage-and-refuse-open', async (t) => {
  const dir = await tempDir(t);
  // More than groupCommitBytesMax (8 MiB) of records after the damaged sector.
  await writeLog(dir, 220_000);
  const file = (await segmentFiles(dir))[0] as string;
  const path = join(dir, file);
  t.ok((await stat(path)).size > 9 * 1024 * 1024, 'the records after the zeros outgrow one group commit');
  const sector = await zeroSectorFrom(path, 4096);
  const err = await openLog({ dir }).then(
    () => null,
    (e: unknown) => e as { code: string; position: number },
  );
  t.equal(err?.code, 'LOG_CORRUPT', 'refused');
  t.ok(err !== null && err.position <= sector && err.position > sector - 512, 'at the damaged frame');
  t.equal((await readdir(dir)).filter((n) => n.includes('torn')).length, 0, 'nothing cut');
});

t.test('read-only-open-reports-torn-tail-without-touching-it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 10);
  const file = join(dir, (await segmentFiles(dir))[0] as string);
  const size = (await stat(file)).size;
  await truncate(file, size - 3);
  const { log } = await openLog({ dir, readOnly: true });
  t.match(log.openReport.tailCut, { savedAs: null, bytes: size - 3 - (await framePositions(file)).at(-1)! });
  t.strictSame(await readAll(log), range(0, 9));
  await log.close();
  t.equal((await stat(file)).size, size - 3, 'file untouched');
  t.strictSame((await readdir(dir)).filter((n) => n.includes('torn')), []);
});

t.test('repair-of-an-offset-gap-moves-the-later-segments-aside', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  await rename(join(dir, files[2] as string), join(dir, `${files[2]}.moved`));
  const { log } = await openLog({ dir, repair: true });
  t.equal(log.nextOffset, Number(files[2]?.slice(0, 20)), 'opens at the end of the last contiguous segment');
  const moved = await readdir(log.openReport.quarantined?.dir as string);
  for (const later of files.slice(3)) t.ok(moved.includes(later), `${later} quarantined`);
  t.strictSame(await segmentFiles(dir), files.slice(0, 2));
  await log.close();
});

// A crash on the very first start between createSegment's O_EXCL create and its header write
// leaves the only segment shorter than a header; nothing was ever acknowledged in that log.
for (const bytes of [0, 17]) {
  t.test(`a-first-start-that-crashed-before-its-header-starts-a-fresh-log-${bytes}-bytes`, async (t) => {
    const dir = await tempDir(t);
    const file = '00000000000000000000.log';
    const left = Buffer.from('TAPEQLOG\x01\x00\x00\x00abcde').subarray(0, bytes);
    await writeFile(join(dir, file), left);
    const { log, lines } = await openLog({ dir });
    t.equal(lines.length, 1, 'one line says so');
    t.match(lines[0], new RegExp(`^started a fresh log ${log.logId}: its only segment ${file} is ${bytes} bytes, shorter than the 40-byte header`));
    t.equal(log.nextOffset, 0);
    const header = decodeSegmentHeader((await readFile(join(dir, file))).subarray(0, segmentHeaderBytes));
    t.match(header, { logId: log.logId, baseOffset: 0 }, 'a fresh header with the new log id');
    const torn = (await readdir(dir)).filter((n) => n.includes('.torn-'));
    if (bytes === 0) {
      t.strictSame(torn, [], 'no copy of nothing');
      t.equal(log.openReport.tailCut, null);
    } else {
      t.strictSame(torn, [`${file}.torn-0`]);
      t.strictSame(await readFile(join(dir, `${file}.torn-0`)), left, 'its bytes are kept aside');
      t.match(log.openReport.tailCut, { segment: file, position: 0, bytes });
    }
    await log.append(drafts(0, 3)).durable;
    await log.close();
    const again = await openLog({ dir });
    t.equal(again.log.logId, log.logId);
    t.strictSame(await readAll(again.log), range(0, 3), 'the fresh log works');
    t.strictSame(again.lines, []);
    await again.log.close();
  });
}

// A roll that crashed between the next segment's O_EXCL create and its header write leaves a last
// segment shorter than a header after sealed ones: it gets its header back, same log id.
for (const bytes of [0, 17]) {
  t.test(`a-roll-that-crashed-before-its-header-gets-the-header-back-in-the-same-log-${bytes}-bytes`, async (t) => {
    const dir = await tempDir(t);
    await writeLog(dir, 300, { segmentBytes: 8192 });
    const { log: before } = await openLog({ dir, segmentBytes: 8192, readOnly: true });
    const { logId, nextOffset: end } = before;
    await before.close();
    const file = `${String(end).padStart(20, '0')}.log`;
    const left = Buffer.from('TAPEQLOG\x01\x00\x00\x00abcde').subarray(0, bytes);
    await writeFile(join(dir, file), left);
    const { log, lines } = await openLog({ dir, segmentBytes: 8192 });
    t.equal(log.logId, logId, 'the same log');
    t.equal(log.nextOffset, end);
    t.match(decodeSegmentHeader((await readFile(join(dir, file))).subarray(0, segmentHeaderBytes)), { logId, baseOffset: end }, 'its header is back');
    const torn = (await readdir(dir)).filter((n) => n.includes('.torn-'));
    if (bytes === 0) {
      t.strictSame(torn, [], 'no copy of nothing');
      t.equal(log.openReport.tailCut, null, 'nothing cut');
      t.equal(lines.filter((l) => l.startsWith(`wrote the missing header of ${file}`)).length, 1, 'one line says so');
    } else {
      t.strictSame(torn, [`${file}.torn-0`]);
      t.strictSame(await readFile(join(dir, `${file}.torn-0`)), left, 'its bytes are kept aside');
      t.match(log.openReport.tailCut, { segment: file, position: 0, bytes });
    }
    await log.append(drafts(end, 3)).durable;
    await log.close();
    const again = await openLog({ dir, segmentBytes: 8192 });
    t.strictSame(await readAll(again.log), range(0, end + 3), 'appends went on in that segment');
    t.strictSame(again.lines, [], 'a clean log');
    await again.log.close();
  });
}

t.test('read-only-open-of-a-log-whose-only-segment-has-no-header-says-it-is-empty', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '00000000000000000000.log'), Buffer.alloc(0));
  await t.rejects(openLog({ dir, readOnly: true }), { code: 'LOG_NOT_FOUND', message: /^the log in .* is empty: its only segment 00000000000000000000\.log is 0 bytes/ });
  t.strictSame(await readdir(dir), ['00000000000000000000.log'], 'nothing written');
  t.equal((await stat(join(dir, '00000000000000000000.log'))).size, 0);
});

t.test('repair-that-moves-every-segment-aside-starts-a-fresh-log', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 20);
  const file = (await segmentFiles(dir))[0] as string;
  const buf = await readFile(join(dir, file));
  buf[0] = 0x58; // the magic: a bad header, so nothing of the only segment is usable
  await writeFile(join(dir, file), buf);
  const { log, lines } = await openLog({ dir, repair: true });
  t.match(log.openReport.quarantined, { segment: file, position: 0 });
  t.match(lines.at(-1), new RegExp(`^repair: no usable segment was left in .*; started a fresh log ${log.logId} at offset 0: offsets from 0 on now name new records$`));
  t.equal(log.nextOffset, 0);
  t.strictSame(await segmentFiles(dir), [file], 'a fresh segment in place of the one moved aside');
  await log.append(drafts(0, 2)).durable;
  await log.close();
  const again = await openLog({ dir });
  t.strictSame(await readAll(again.log), range(0, 2));
  await again.log.close();
});

t.test('read-only-open-until-a-point-reads-no-segment-after-it-so-later-damage-does-not-stop-it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 4);
  const [base1, base2] = [Number((files[1] as string).slice(0, 20)), Number((files[2] as string).slice(0, 20))];
  const victim = files[2] as string;
  const position = await flipBitInRecord(join(dir, victim), 5);
  await t.rejects(openLog({ dir, readOnly: true }), { code: 'LOG_CORRUPT', file: join(dir, victim) }, 'without until the whole log is verified');
  for (const until of [base1 + 1, base2]) {
    const { log } = await openLog({ dir, readOnly: true, until: { kind: 'offset', offset: until } });
    t.equal(log.durableOffset, base2, `until ${until}: the log ends where the segment reaching it ends`);
    t.strictSame(log.openReport.notRead, files.slice(2), 'the segments after it are named, not read');
    t.strictSame(await readAll(log), range(0, base2));
    await log.close();
  }
  await t.rejects(
    openLog({ dir, readOnly: true, until: { kind: 'offset', offset: base2 + 1 } }),
    { code: 'LOG_CORRUPT', file: join(dir, victim), position, offset: base2 + 5 },
    'a point that needs the damaged segment is refused, naming file, byte and offset',
  );
  await t.rejects(openLog({ dir, until: { kind: 'offset', offset: base1 } }), /until is for read-only opens/, 'a writable open verifies everything');
});

t.test('read-only-open-until-a-point-refuses-damage-at-the-end-of-the-segment-reaching-it-not-a-torn-tail', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  const victim = files[1] as string;
  const base1 = Number(victim.slice(0, 20));
  const last = (await framePositions(join(dir, victim))).length - 1;
  const position = await flipBitInRecord(join(dir, victim), last);
  await t.rejects(
    openLog({ dir, readOnly: true, until: { kind: 'offset', offset: base1 + 1 } }),
    { code: 'LOG_CORRUPT', file: join(dir, victim), position, offset: base1 + last },
    'the last segment read is sealed: damage in its last frame is corruption, not a tail to leave out',
  );
});

t.test('read-only-open-until-a-point-is-not-stopped-by-a-gap-after-it-but-by-one-before-it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 4);
  const [base1, base2, base3] = [1, 2, 3].map((i) => Number((files[i] as string).slice(0, 20))) as [number, number, number];
  await rm(join(dir, files[2] as string));
  await t.rejects(openLog({ dir, readOnly: true }), { code: 'LOG_GAP' }, 'without until the gap is refused');
  const { log } = await openLog({ dir, readOnly: true, until: { kind: 'offset', offset: base1 + 1 } });
  t.equal(log.durableOffset, base2);
  t.strictSame(log.openReport.notRead, files.slice(3), 'the segment after the gap is not read');
  await log.close();
  await t.rejects(
    openLog({ dir, readOnly: true, until: { kind: 'offset', offset: base3 + 1 } }),
    { code: 'LOG_GAP', file: join(dir, files[3] as string) },
    'a point past the gap needs the records it lost',
  );
});

t.test('read-only-open-with-end-at-damage-ends-before-a-bit-flip-or-a-gap-and-names-it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 400, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  t.ok(files.length >= 4);
  const [base1, base2] = [1, 2].map((i) => Number((files[i] as string).slice(0, 20))) as [number, number];
  const position = await flipBitInRecord(join(dir, files[1] as string), 5);
  const flipped = await openLog({ dir, readOnly: true, endAtDamage: true });
  t.equal(flipped.log.durableOffset, base1 + 5, 'the log ends just before the bad record');
  t.strictSame(await readAll(flipped.log), range(0, base1 + 5), 'with every sound record before it, its segment\'s included');
  t.match(flipped.log.openReport.damage, { code: 'LOG_CORRUPT', file: join(dir, files[1] as string), position, offset: base1 + 5 });
  t.strictSame(flipped.log.openReport.notRead, files.slice(2), 'the segments after it are not read');
  await flipped.log.close();

  const gapped = await tempDir(t);
  await writeLog(gapped, 400, { segmentBytes: 8192 });
  await rm(join(gapped, files[2] as string));
  const { log } = await openLog({ dir: gapped, readOnly: true, endAtDamage: true });
  t.equal(log.durableOffset, base2, 'a gap: the log ends where the segment before it ends');
  t.match(log.openReport.damage, { code: 'LOG_GAP', file: join(gapped, files[3] as string), offset: base2 });
  t.strictSame(log.openReport.notRead, files.slice(3), 'the segment after the gap is not read');
  await log.close();

  const headless = await tempDir(t);
  await writeLog(headless, 400, { segmentBytes: 8192 });
  const first = join(headless, files[0] as string);
  const bytes = await readFile(first);
  bytes[2] = (bytes[2] as number) ^ 0x01;
  await writeFile(first, bytes);
  await t.rejects(openLog({ dir: headless, readOnly: true, endAtDamage: true }), { code: 'LOG_CORRUPT', file: first }, 'a first segment without a sound header leaves no log to read');
  await t.rejects(openLog({ dir, endAtDamage: true }), /endAtDamage is for read-only opens/, 'a writable open never ends early');
});
