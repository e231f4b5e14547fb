// What a roll does when a step other than writing or syncing records fails (group-commit.ts): the
// sealed segment's index files are derived data, so a failure to write them is one logged line;
// opening the next segment while descriptors are short is retried for a bounded time, and only
// then fails the log, with the round's records unacknowledged. A failed record write or sync
// stays final (durability.test.ts). The same index files, rewritten by an open, are one line too.

import t from 'tap';
import { mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Log, openReadOnly } from '../../src/log/log.js';
import { drafts, openLog, range, readAll, segmentFiles, tempDir } from './helpers.js';

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: injected by the test`), { code });
}

/** Appends 40 small records at a time, each batch awaited, until the log has `segments`. */
async function appendUntilSegments(log: Log, segments: number): Promise<number> {
  let next = log.nextOffset;
  while (log.segments().length < segments) {
    await log.append(drafts(next, 40)).durable;
    next += 40;
  }
  return next;
}

t.test('index-files-that-cannot-be-written-are-logged-and-the-log-goes-on', async (t) => {
  const dir = await tempDir(t);
  // A directory where the temp file of the first segment's offset index goes: its write fails
  // (EISDIR), as an open does with EMFILE while clients hold every descriptor.
  const blocker = join(dir, '00000000000000000000.index.tmp');
  await mkdir(blocker);
  const { log, lines } = await openLog({ dir, segmentBytes: 8192 });
  const end = await appendUntilSegments(log, 3);
  t.equal(log.failed, null, 'the log did not fail');
  t.strictSame(await readAll(log), range(0, end), 'every record reads back, the one without index files too');
  const ts = log.segments()[1]?.firstTimestamp as number;
  t.equal(await log.offsetAtTime(ts), log.segments()[1]?.baseOffset, 'a time lookup still finds the second segment');
  t.equal(lines.filter((l) => l.includes('could not write the index files of 00000000000000000000.log')).length, 1, 'one line says so');
  await log.close();
  const names = await readdir(dir);
  t.notOk(names.includes('00000000000000000000.index'), 'the first segment has no offset index file');
  t.ok(names.some((n) => n.endsWith('.index') && !n.startsWith('00000000000000000000')), 'the next sealed one has its files');

  const tool = await openReadOnly(dir);
  t.strictSame(await readAll(tool), range(0, end), 'a read-only tool reads a sealed segment without index files');
  t.same(tool.openReport.indexesRebuilt, [], 'and writes nothing');
  await tool.close();

  await rmdir(blocker);
  const { log: reopened } = await openLog({ dir, segmentBytes: 8192 });
  t.same(reopened.openReport.indexesRebuilt, ['00000000000000000000.log'], 'the next open rebuilds them');
  t.strictSame(await readAll(reopened), range(0, end));
  await reopened.close();
});

t.test('index-files-that-cannot-be-rewritten-at-open-are-logged-and-the-log-opens', async (t) => {
  const dir = await tempDir(t);
  const { log: writer } = await openLog({ dir, segmentBytes: 8192 });
  const end = await appendUntilSegments(writer, 3);
  await writer.close();
  await rm(join(dir, '00000000000000000000.index'));
  // The rebuild's temp file cannot be made (EISDIR here; EMFILE or ENOSPC on a real server).
  const blocker = join(dir, '00000000000000000000.index.tmp');
  await mkdir(blocker);
  const { log, lines } = await openLog({ dir, segmentBytes: 8192 });
  t.equal(lines.filter((l) => l.includes('could not rewrite the index files of 00000000000000000000.log')).length, 1, 'one line says so');
  t.same(log.openReport.indexesRebuilt, [], 'nothing reported rebuilt');
  t.strictSame(await readAll(log), range(0, end), 'every record reads back (the index in memory)');
  await log.append(drafts(end, 1)).durable;
  await log.close();
  await rmdir(blocker);
  const { log: reopened } = await openLog({ dir, segmentBytes: 8192 });
  t.same(reopened.openReport.indexesRebuilt, ['00000000000000000000.log'], 'the next open rebuilds them');
  await reopened.close();
});

t.test('next-segment-short-of-descriptors-is-retried-and-the-batch-acknowledged-once-written', async (t) => {
  const dir = await tempDir(t);
  let refusals = 2;
  const heldWhileRetried: (string | null)[] = [];
  const { log, lines } = await openLog({
    dir,
    segmentBytes: 8192,
    fsHooks: {
      // The last step of creating the next segment: the file exists, with its header, when it fails.
      syncDir: async (_d, real) => {
        heldWhileRetried.push(log.held);
        if (refusals-- > 0) throw errno('EMFILE');
        await real();
      },
    },
  });
  const end = await appendUntilSegments(log, 2);
  t.equal(log.failed, null, 'the log did not fail');
  t.equal(refusals, -1, 'the directory sync was refused twice, then done');
  t.match(heldWhileRetried, [null, /could not open the next segment 0000\d+\.log \(EMFILE/, /EMFILE/], 'held says why while the open is retried');
  t.equal(log.held, null, 'and nothing once it opened');
  t.strictSame(await readAll(log), range(0, end));
  t.match(lines.join('\n'), /could not open the next segment 0000\d+\.log \(EMFILE: injected by the test\); acknowledgements wait/);
  t.match(lines.join('\n'), /opened 0000\d+\.log after 2 retries/);
  await log.append(drafts(end, 10)).durable;
  await log.close();
  t.equal((await segmentFiles(dir)).length, 2, 'one new segment, made again after each refusal');
  const { log: reopened } = await openLog({ dir, segmentBytes: 8192 });
  t.strictSame(await readAll(reopened), range(0, end + 10), 'a restart reads every acknowledged record');
  await reopened.close();
});

t.test('next-segment-short-of-descriptors-for-too-long-fails-the-log-and-acknowledges-nothing-of-the-batch', async (t) => {
  const dir = await tempDir(t);
  let tries = 0;
  const { log } = await openLog({
    dir,
    segmentBytes: 8192,
    segmentOpenRetryMs: 100,
    fsHooks: {
      syncDir: async () => {
        tries++;
        throw errno('ENFILE');
      },
    },
  });
  const acked: number[] = [];
  let next = 0;
  let refused: unknown = null;
  const startedMs = Date.now();
  while (refused === null) {
    const batch = log.append(drafts(next, 40));
    try {
      await batch.durable;
      acked.push(...range(next, next + 40));
    } catch (err) {
      refused = err;
    }
    next += 40;
  }
  t.ok(Date.now() - startedMs >= 100, 'it was retried for segmentOpenRetryMs');
  t.ok(tries > 1, `the next segment was tried ${tries} times`);
  t.match(refused, { code: 'LOG_WRITE', message: /ENFILE/ }, 'the batch that needed it is refused');
  t.match(log.failed, { code: 'LOG_WRITE' }, 'and the log fails for good');
  t.throws(() => log.append(drafts(next, 1)), { code: 'LOG_FAILED' });
  // The part of the refused batch that fitted the full segment was written and synced before the
  // roll: in the log, not acknowledged (a refusal promises nothing either way).
  const sealedEnd = log.segments()[0]?.nextOffset as number;
  t.ok(sealedEnd >= acked.length, 'every acknowledged record is in the full segment');
  await log.close();
  t.equal((await segmentFiles(dir)).length, 1, 'no half-made segment is left');
  const { log: reopened } = await openLog({ dir, segmentBytes: 8192 });
  t.strictSame(await readAll(reopened), range(0, sealedEnd), 'a restart holds the full segment and nothing after it');
  await reopened.close();
});

t.test('next-segment-failing-otherwise-fails-the-log-at-once', async (t) => {
  const dir = await tempDir(t);
  let tries = 0;
  const { log, lines } = await openLog({
    dir,
    segmentBytes: 8192,
    fsHooks: {
      syncDir: async () => {
        tries++;
        throw errno('EIO');
      },
    },
  });
  let next = 0;
  await t.rejects(async () => {
    for (;;) {
      await log.append(drafts(next, 40)).durable;
      next += 40;
    }
  }, { code: 'LOG_WRITE', message: /EIO/ });
  t.equal(tries, 1, 'an I/O error is not retried');
  t.notMatch(lines.join('\n'), /retried/);
  await log.close();
});
