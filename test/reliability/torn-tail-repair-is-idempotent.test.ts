// SPEC 3 "a torn tail of the active segment is cut back to the last whole record (a copy of the
// cut bytes is kept, the cut is logged with segment, offset and byte count)", at every byte of the
// last two records of a real broker workload, and with a crash during the repair itself.
//
// For each cut position p (fast: every 5th byte plus every frame header byte and both record
// boundaries; TAPEQ_LONG=1: every byte):
//   1. a copy of the log truncated at p opens with exactly the whole records before p; the state
//      folded from it equals the state of that prefix; the cut bytes are saved byte for byte and
//      the logger names segment, position and byte count;
//   2. crash after the saved copy was written but before the truncation (the original file plus a
//      complete `.torn-*` copy), and crash while writing the copy (a half `.torn-*` file): the next
//      start reaches the same state and leaves a complete copy;
//   3. a second start after a finished repair cuts nothing and reaches the same state;
//   4. (a sample) the repaired log takes new appends at the right offset and they survive a restart.

import { copyFile, mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { digestOf } from '../../src/broker/digest.js';
import { Log } from '../../src/log/log.js';
import type { LogRecord } from '../../src/record/types.js';
import { apply, createState } from '../../src/state/index.js';
import { LONG, seededRng, tempDir } from '../fixtures/reliability/common.js';
import { toDraft, writeWorkload } from '../fixtures/reliability/workload.js';

const frameHeaderBytes = 8;

interface Opened {
  nextOffset: number;
  digest: string;
  lines: string[];
  tailCut: Log['openReport']['tailCut'];
}

async function openAndFold(dir: string): Promise<Opened> {
  const lines: string[] = [];
  const log = await Log.open({ dir, logger: (l) => lines.push(l) });
  try {
    const state = createState();
    for await (const batch of log.readBatches(log.firstOffset)) for (const r of batch) apply(state, r);
    return { nextOffset: log.nextOffset, digest: digestOf(state), lines, tailCut: log.openReport.tailCut };
  } finally {
    await log.close();
  }
}

async function copyDir(from: string, to: string, skip: (name: string) => boolean = () => false): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const name of await readdir(from)) if (!skip(name)) await copyFile(join(from, name), join(to, name));
}

t.test('a torn tail at every byte of the last two records is cut to the whole-record prefix, also after a crash during repair', async (t) => {
  const rng = seededRng(t, 'torn-tail');
  const root = await tempDir(t, 'torn');
  const records = await writeWorkload(join(root, 'src'), rng.seed, 150);
  const n = records.length;
  t.ok(n >= 10, `workload wrote ${n} records`);

  // Rewrite the records one append at a time to learn each frame's end position in the file.
  const whole = join(root, 'whole');
  const log = await Log.open({ dir: whole, logger: () => undefined });
  const ends: number[] = [log.segments()[0]?.bytes ?? 0];
  for (const record of records) {
    await log.append([toDraft(record)]).durable;
    ends.push(log.segments().at(-1)?.bytes ?? 0);
  }
  const segmentFile = log.segments()[0]?.file ?? '';
  t.equal(log.segments().length, 1, 'one segment holds the workload');
  await log.close();
  const original = await readFile(join(whole, segmentFile));

  const prefixDigest = new Map<number, string>();
  const state = createState();
  records.forEach((r: LogRecord, i) => {
    apply(state, r);
    if (i + 1 >= n - 2) prefixDigest.set(i + 1, digestOf(state));
  });

  const first = ends[n - 2] as number;
  const last = ends[n] as number;
  const positions: number[] = [];
  for (let p = first; p <= last; p++) {
    const k = p < (ends[n - 1] as number) ? n - 2 : p < last ? n - 1 : n;
    const intoFrame = p - (ends[k] as number);
    if (LONG || intoFrame <= frameHeaderBytes || p % 5 === 0 || p === last) positions.push(p);
  }

  let failures = 0;
  let appendChecks = 0;
  for (const [i, p] of positions.entries()) {
    const k = p < (ends[n - 1] as number) ? n - 2 : p < last ? n - 1 : n;
    const boundary = ends[k] as number;
    const cutBytes = original.subarray(boundary, p);
    const want = prefixDigest.get(k);
    const dir = join(root, `cut-${p}`);
    await copyDir(whole, dir);
    await truncate(join(dir, segmentFile), p);

    const opened = await openAndFold(dir);
    const ok1 =
      opened.nextOffset === k &&
      opened.digest === want &&
      (p === boundary
        ? opened.tailCut === null
        : opened.tailCut?.position === boundary &&
          opened.tailCut.bytes === p - boundary &&
          opened.lines.some((l) => l.includes(segmentFile) && l.includes(`byte ${boundary}`) && l.includes(`${p - boundary} bytes`)));
    const saved = p === boundary ? null : await readFile(join(dir, `${segmentFile}.torn-${boundary}`));
    const ok2 = p === boundary || saved?.equals(cutBytes) === true;
    const again = await openAndFold(dir);
    const ok3 = again.tailCut === null && again.nextOffset === k && again.digest === want;

    let ok4 = true;
    if (p !== boundary) {
      // Crash after the copy was saved, before the truncation reached the disk.
      const crashedAfterCopy = join(root, `crash-a-${p}`);
      await copyDir(dir, crashedAfterCopy, (name) => name === segmentFile);
      await writeFile(join(crashedAfterCopy, segmentFile), original.subarray(0, p));
      const a = await openAndFold(crashedAfterCopy);
      const aSaved = await readFile(join(crashedAfterCopy, `${segmentFile}.torn-${boundary}`));
      // Crash while the copy was being written: half a copy on disk, file untouched.
      const crashedInCopy = join(root, `crash-b-${p}`);
      await copyDir(crashedAfterCopy, crashedInCopy, (name) => name === segmentFile || name.includes('.torn-'));
      await writeFile(join(crashedInCopy, segmentFile), original.subarray(0, p));
      await writeFile(join(crashedInCopy, `${segmentFile}.torn-${boundary}`), cutBytes.subarray(0, cutBytes.length >> 1));
      const b = await openAndFold(crashedInCopy);
      const bSaved = await readFile(join(crashedInCopy, `${segmentFile}.torn-${boundary}`));
      ok4 = a.nextOffset === k && a.digest === want && aSaved.equals(cutBytes) && b.nextOffset === k && b.digest === want && bSaved.equals(cutBytes);
    }

    let ok5 = true;
    if (i % 8 === 0 && k < n) {
      appendChecks++;
      const reopened = await Log.open({ dir, logger: () => undefined });
      await reopened.append([toDraft(records[k] as LogRecord)]).durable;
      await reopened.close();
      const afterAppend = await openAndFold(dir);
      ok5 = afterAppend.tailCut === null && afterAppend.nextOffset === k + 1 && afterAppend.digest === prefixDigest.get(k + 1);
    }

    if (!(ok1 && ok2 && ok3 && ok4 && ok5)) {
      failures++;
      t.fail(`cut at byte ${p} (prefix of ${k} records)`, { ok1, ok2, ok3, ok4, ok5, opened, again });
      if (failures > 5) break;
    }
  }
  t.equal(failures, 0, `${positions.length} cut positions in bytes [${first}, ${last}]: state = whole-record prefix, repair idempotent`);
  t.comment(
    `torn-tail: records=${n} positions checked=${positions.length} (${LONG ? 'every byte' : 'sample'}) of the last 2 records ` +
      `(${last - first} bytes) crash-during-repair cases=${2 * positions.filter((p) => !ends.includes(p)).length} ` +
      `append-after-repair checks=${appendChecks} failures=${failures}`,
  );
});

t.test('a second torn tail at the same byte keeps the first saved copy', async (t) => {
  const dir = await tempDir(t, 'torn-twice');
  const records = await writeWorkload(join(dir, 'src'), 7, 40);
  const logDir = join(dir, 'log');
  const log = await Log.open({ dir: logDir, logger: () => undefined });
  for (const r of records.slice(0, 10)) await log.append([toDraft(r)]).durable;
  const boundary = log.segments()[0]?.bytes ?? 0;
  const file = log.segments()[0]?.file ?? '';
  await log.append([toDraft(records[10] as LogRecord)]).durable;
  await log.close();
  await truncate(join(logDir, file), boundary + 20);
  const firstCopy = (await readFile(join(logDir, file))).subarray(boundary);
  await openAndFold(logDir);
  // The next start appends at the cut point; a second crash tears the new record at that point.
  const again = await Log.open({ dir: logDir, logger: () => undefined });
  await again.append([toDraft(records[20] as LogRecord)]).durable;
  await again.close();
  await truncate(join(logDir, file), boundary + 30);
  await openAndFold(logDir);
  const copies = (await readdir(logDir)).filter((name) => name.includes('.torn-'));
  const contents = await Promise.all(copies.map((name) => readFile(join(logDir, name))));
  t.ok(
    contents.some((c) => c.equals(firstCopy)),
    `the bytes cut by the first repair are still kept (copies: ${copies.join(', ')})`,
  );
  t.equal(copies.length, 2, 'each cut has its own copy');
});
