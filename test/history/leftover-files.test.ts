// What the server's job history (writeFiles) removes at start and never leaves behind: `.jobindex`
// files whose segment is gone, and the temp files of `.jobindex` writes that never finished.

import t, { type Test } from 'tap';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JobHistory } from '../../src/history/history.js';
import type { Log } from '../../src/log/log.js';
import { drafts, openLog, tempDir } from '../log/helpers.js';

function name(baseOffset: number, suffix: string): string {
  return `${String(baseOffset).padStart(20, '0')}${suffix}`;
}

async function logWithSealedSegments(t: Test): Promise<{ dir: string; log: Log }> {
  const dir = await tempDir(t, 'history');
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  t.teardown(() => log.close());
  await log.append(drafts(0, 400)).durable;
  t.ok(log.segments().length >= 4, `${log.segments().length} segments`);
  return { dir, log };
}

async function waitFor(check: () => Promise<boolean>, ms = 3_000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return check();
}

/** Starts the server's job history on `log` and returns the `.jobindex…` files in `dir` once they
 *  are exactly `expected` (its start-up sweep and rebuilds done), or as they are after 3 s. */
async function startAndSweep(dir: string, log: Log, expected: string[]): Promise<string[]> {
  const history = new JobHistory({ log, writeFiles: true });
  history.start();
  const jobIndexes = async () => (await readdir(dir)).filter((n) => n.includes('.jobindex')).sort();
  await waitFor(async () => JSON.stringify(await jobIndexes()) === JSON.stringify(expected));
  await history.close();
  return jobIndexes();
}

t.test('job-index-files-of-gone-segments-are-removed-at-start', async (t) => {
  const { dir, log } = await logWithSealedSegments(t);
  const sealed = log.segments().slice(0, -1).map((s) => name(s.baseOffset, '.jobindex'));
  // Left by retention (before the job index went with its segment) or by an earlier run.
  const orphans = [name(1, '.jobindex'), name(10 ** 9, '.jobindex')];
  for (const orphan of orphans) await writeFile(join(dir, orphan), 'stale');
  await writeFile(join(dir, sealed[0] as string), 'damaged, but its segment is here: rebuilt, not removed');

  t.strictSame(await startAndSweep(dir, log, sealed), sealed, 'exactly one job index per sealed segment');
});

t.test('temp-files-of-unfinished-writes-are-removed-at-start', async (t) => {
  const { dir, log } = await logWithSealedSegments(t);
  const sealed = log.segments().slice(0, -1).map((s) => name(s.baseOffset, '.jobindex'));
  // A crash mid-write leaves these; a restarted server may well get the same pid (containers).
  const temps = [name(0, '.jobindex.tmp-99999-1'), name(0, `.jobindex.tmp-${process.pid}-1`), name(10 ** 9, '.jobindex.tmp-1-2')];
  for (const temp of temps) await writeFile(join(dir, temp), '');

  t.strictSame(await startAndSweep(dir, log, sealed), sealed, 'no temp file left, every sealed segment has its job index');
});

t.test('failed-index-write-leaves-no-temp-file-and-does-not-fail-the-query', async (t) => {
  const dir = await tempDir(t, 'history');
  const { log } = await openLog({ dir, segmentBytes: 8192 });
  t.teardown(() => log.close());
  const lines: string[] = [];
  const history = new JobHistory({ log, writeFiles: true, logger: (line) => lines.push(line) });
  history.start();
  t.teardown(() => history.close());
  // A directory where the first segment's job index goes: its write fails when the segment seals
  // (at the rename; a full disk fails it at the write, into the same cleanup).
  await mkdir(join(dir, name(0, '.jobindex')));
  await log.append(drafts(0, 400)).durable;
  t.ok(log.segments().length >= 2, 'the first segment is sealed');

  const found = [];
  for await (const record of history.records('job-0000000001')) found.push(record.offset);
  t.strictSame(found, [1], 'the index file is a cache: the query is answered without it');
  t.match(lines.join('\n'), /could not write the job index of 00000000000000000000\.log: .*EISDIR.*; it is kept in memory/);

  t.strictSame((await readdir(dir)).filter((n) => n.includes('.tmp')), [], 'no temp file left');
});
