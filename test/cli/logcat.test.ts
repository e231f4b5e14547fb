import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { followPollMs, settlePolls } from '../../src/log/follower.js';
import { Log } from '../../src/log/log.js';
import { plainSpec, sampleRecord, t0 } from '../fixtures/records.js';
import type { RecordBody, RecordDraft } from '../../src/record/types.js';
import { drafts, hashTree, segmentFiles, tempDir, writeLog } from '../log/helpers.js';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { compactedDataDir } from '../history/workload.js';
import { cliEntry, runCli, spawnCli } from './run-cli.js';

function lines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

t.test('logcat-prints-ndjson-with-filters-and-leaves-dir-byte-identical', async (t) => {
  const dir = await tempDir(t);
  const log = await Log.open({ dir, segmentBytes: 8192, logger: () => {} });
  await log.append(drafts(0, 300)).durable;
  const extra = ['completed', 'failed', 'queuePaused', 'removed'] as const;
  await log.append(extra.map((type, i) => ({ ...sampleRecord(type, 0, 1_700_000_001_000 + i) }))).durable;
  await log.close();
  const before = await hashTree(dir);

  const all = lines((await runCli(['logcat', '--dir', dir])).stdout);
  t.equal(all.length, 304);
  t.match(all[0], { offset: 0, type: 'pushed', time: '2023-11-14T22:13:20.000Z', state: 'waiting' });

  const range = lines((await runCli(['logcat', '--dir', dir, '--from', '100', '--to', '103'])).stdout);
  t.strictSame(range.map((r) => r['offset']), [100, 101, 102]);

  const kinds = lines((await runCli(['logcat', '--dir', dir, '--kind', 'failed,queuePaused', '--kind', 'removed'])).stdout);
  t.strictSame(kinds.map((r) => r['type']), ['failed', 'queuePaused', 'removed']);
  t.match(kinds[0], { outcome: 'dead' });

  const queue = lines((await runCli(['logcat', '--dir', dir, '--queue', 'emails'])).stdout);
  t.equal(queue.length, 4);
  const job = lines((await runCli(['logcat', '--dir', dir, '--job', 'job-0000000042'])).stdout);
  t.strictSame(job.map((r) => r['offset']), [42]);
  const jobRemoved = lines((await runCli(['logcat', '--dir', dir, '--job', 'job-2'])).stdout);
  t.strictSame(jobRemoved.map((r) => r['type']), ['removed']);

  const since = lines((await runCli(['logcat', '--dir', dir, '--since', '1700000000250', '--until', new Date(1_700_000_000_252).toISOString()])).stdout);
  t.strictSame(since.map((r) => r['offset']), [250, 251, 252]);

  const bad = await runCli(['logcat', '--dir', dir, '--kind', 'nope']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown record type nope/);
  const reversed = await runCli(['logcat', '--dir', dir, '--from', '150', '--to', '140']);
  t.equal(reversed.code, 2, 'a reversed range is refused, not printed as nothing');
  t.match(reversed.stderr, '--from 150 is after --to 140');
  const backwards = await runCli(['logcat', '--dir', dir, '--since', '2026-12-06', '--until', '2026-12-05']);
  t.equal(backwards.code, 2);
  t.match(backwards.stderr, '--since is after --until');
  t.strictSame(await hashTree(dir), before, 'read-only');
});

t.test('logcat-job-shows-the-completions-and-removals-that-released-it-as-history-does', async (t) => {
  const dir = await tempDir(t);
  const at = (i: number, body: RecordBody): RecordDraft => ({ timestamp: 1_700_000_000_000 + i, actor: null, body });
  const push = (i: number, id: string, pendingDeps: string[]): RecordDraft =>
    at(i, { type: 'pushed', job: plainSpec(id, 'q', '{}', 1_700_000_000_000 + i), state: pendingDeps.length > 0 ? 6 : 1, pendingDeps });
  const completed = (i: number, id: string): RecordDraft => at(i, { type: 'completed', queue: 'q', jobId: id, result: null, token: 't' });
  const log = await Log.open({ dir, segmentBytes: 8192, logger: () => {} });
  await log.append([
    completed(0, 'dep-1'), // before the child's push: not part of its history
    push(1, 'child', ['dep-1', 'dep-2']),
    completed(2, 'dep-1'),
    completed(3, 'other'),
    at(4, { type: 'removed', queue: 'q', jobs: [{ jobId: 'dep-2', prev: 1 }, { jobId: 'x', prev: 1 }], reason: 0 }), // cancelled: releases
    completed(5, 'child'),
  ]).durable;
  await log.close();

  const job = lines((await runCli(['logcat', '--dir', dir, '--job', 'child'])).stdout);
  t.strictSame(job.map((r) => r['offset']), [1, 2, 4, 5]);
  const kind = lines((await runCli(['logcat', '--dir', dir, '--job', 'child', '--kind', 'completed'])).stdout);
  t.strictSame(kind.map((r) => r['offset']), [2, 5], 'the push filtered out by --kind still names the dependencies');
  for (const range of [['--from', '2'], ['--since', '1700000000002']]) {
    const later = lines((await runCli(['logcat', '--dir', dir, '--job', 'child', ...range])).stdout);
    t.strictSame(later.map((r) => r['offset']), [2, 4, 5], `${range[0]} after the push still shows what released the job`);
  }
  const dep = lines((await runCli(['logcat', '--dir', dir, '--job', 'dep-1'])).stdout);
  t.strictSame(dep.map((r) => r['offset']), [0, 2], 'a dependency shows its own records only');
});

t.test('logcat-follow-prints-records-appended-by-another-process-across-a-roll', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 5, { segmentBytes: 8192 });
  const child = spawnCli(['logcat', '--dir', dir, '--follow', '--from', '3']);
  t.teardown(() => {
    child.kill('SIGTERM');
  });
  const seen: number[] = [];
  const rl = createInterface({ input: child.stdout! });
  const gotAll = new Promise<void>((resolve) => {
    rl.on('line', (line) => {
      seen.push((JSON.parse(line) as { offset: number }).offset);
      if (seen.length === 2 + 200) resolve();
      if (seen.length === 2 + 220) resolveLate();
    });
  });
  let resolveLate: () => void = () => undefined;
  const gotLate = new Promise<void>((resolve) => (resolveLate = resolve));
  const log = await Log.open({ dir, segmentBytes: 8192, logger: () => {} });
  for (let i = 5; i < 205; i += 20) {
    await log.append(drafts(i, 20)).durable;
  }
  t.ok(log.segments().length > 1, 'the writer rolled segments while logcat followed');
  await gotAll;
  t.strictSame(seen, Array.from({ length: 202 }, (_, i) => i + 3));
  // Idle for longer than a bad frame may stay unchanged (settlePolls polls): the active segment
  // ends in the writer's preallocated zeros all that time, which is not corruption.
  const active = log.segments().at(-1);
  if (active === undefined) throw new Error('no active segment');
  t.ok((await stat(join(dir, active.file))).size > active.bytes, 'the active segment ends in zeros');
  await new Promise((resolve) => setTimeout(resolve, (settlePolls + 2) * followPollMs));
  t.equal(child.exitCode, null, 'still following over the zeros');
  await log.append(drafts(205, 20)).durable;
  await gotLate;
  t.strictSame(seen.slice(202), Array.from({ length: 20 }, (_, i) => i + 205), 'records written into the zeros later arrive');
  child.kill('SIGTERM');
  const [code] = (await once(child, 'close')) as [number | null];
  t.equal(code, 0, 'SIGTERM ends --follow cleanly');
  await log.close();
});

t.test('logcat-follow-stops-by-itself-once-the-log-is-past-until', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 5, { segmentBytes: 8192 }); // stamped t0 … t0 + 4
  const already = await runCli(['logcat', '--dir', dir, '--follow', '--until', String(t0 + 2)]);
  t.equal(already.code, 0, 'a log already past --until is printed up to it, and nothing is followed');
  t.strictSame(lines(already.stdout).map((r) => r['offset']), [0, 1, 2]);

  const child = spawnCli(['logcat', '--dir', dir, '--follow', '--until', String(t0 + 10)]);
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  const seen: number[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => seen.push((JSON.parse(line) as { offset: number }).offset));
  const closed = once(child, 'close') as Promise<[number | null]>;
  const log = await Log.open({ dir, segmentBytes: 8192, logger: () => {} });
  await log.append(drafts(5, 20)).durable; // stamped t0 + 5 … t0 + 24
  const [code] = await closed;
  t.equal(code, 0, 'it ends by itself at the first record past --until');
  t.strictSame(seen, Array.from({ length: 11 }, (_, i) => i), 'records stamped up to --until, and no more');
  await log.close();
});

t.test('logcat-whose-reader-goes-away-exits-0-quietly', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 20_000);
  const child = spawnCli(['logcat', '--dir', dir]);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  // Like `| head -1`: take the first chunk, then close the pipe while logcat still writes.
  await once(child.stdout as NodeJS.ReadableStream, 'data');
  child.stdout?.destroy();
  const [code] = (await once(child, 'exit')) as [number | null];
  t.equal(code, 0);
  t.notMatch(stderr, /EPIPE|Unhandled/, 'no error and no stack trace');
});

t.test('logcat-follow-in-a-pipe-whose-reader-left-ends-at-its-next-record-with-0', async (t) => {
  // The documented limit (README, --help): a real shell pipe, `| head -n 1` on an idle log. head
  // prints the record on disk and leaves; logcat learns it only from the EPIPE of its next write.
  const dir = await tempDir(t);
  await writeLog(dir, 1);
  const script = '{ "$0" "$1" logcat --dir "$2" --follow; echo "logcat exit $?" >&2; } | head -n 1';
  const child = spawn('/bin/sh', ['-c', script, process.execPath, cliEntry, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const closed = once(child, 'close') as Promise<[number | null]>;
  const [first] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  t.equal((JSON.parse(first) as { offset: number }).offset, 0, 'head printed the record on disk');
  // Polls enough for logcat to have found the log idle and for head to have exited.
  await new Promise((resolve) => setTimeout(resolve, 5 * followPollMs));
  t.equal(child.exitCode, null, 'on an idle log the pipeline still waits for logcat');
  const log = await Log.open({ dir, logger: () => {} });
  t.teardown(() => log.close());
  await log.append(drafts(1, 1)).durable;
  const [code] = await closed;
  t.equal(code, 0, 'head exited 0');
  t.match(stderr, /^logcat exit 0$/m, 'the next record ends logcat with 0');
  t.notMatch(stderr, /EPIPE|Unhandled|\n\s+at /, 'no error and no stack trace');
});

t.test('logcat-refuses-offsets-and-epoch-times-no-number-holds-exactly', async (t) => {
  // 99999999999999999999 read as 1e20: a range nobody asked for, printed as "nothing" with exit 0.
  const dir = await tempDir(t);
  await writeLog(dir, 3);
  for (const [flag, value] of [['--from', '99999999999999999999'], ['--to', '9007199254740993'], ['--since', '99999999999999999999']] as const) {
    const r = await runCli(['logcat', '--dir', dir, flag, value]);
    t.equal(r.code, 2, `${flag} ${value}`);
    t.match(r.stderr, `tapeq logcat: ${flag}: `);
    t.equal(r.stdout, '');
  }
});

t.test('logcat-from-an-offset-retention-removed-says-the-records-before-the-first-are-gone', async (t) => {
  const src = await compactedDataDir(join(await tempDir(t), 'compacted'));
  const r = await runCli(['logcat', '--dir', src.dir, '--from', '0', '--to', String(src.firstOffset + 2)]);
  t.equal(r.code, 0, r.stderr);
  t.same(lines(r.stdout).map((l) => l.offset), [src.firstOffset, src.firstOffset + 1]);
  t.equal(r.stderr, `tapeq logcat: --from 0: records [0, ${src.firstOffset}) are gone from the log (retention); printing from ${src.firstOffset}\n`);
  const all = await runCli(['logcat', '--dir', src.dir, '--to', String(src.firstOffset + 1)]);
  t.equal(all.stderr, '', 'without --from the log is printed from its first record without a word');
});

/** 300 records (stamped t0 + offset) in 4 KiB segments, a bit flipped in the 8th record of the
 *  third, sealed segment: the damaged record's offset and the line logcat names it with. */
async function damagedLog(t: Parameters<typeof tempDir>[0]): Promise<{ dir: string; bad: number; line: string }> {
  const dir = await tempDir(t);
  await writeLog(dir, 300, { segmentBytes: 4096 });
  const files = await segmentFiles(dir);
  const victim = join(dir, files[2] as string);
  const buf = await readFile(victim);
  let position = segmentHeaderBytes;
  for (let i = 0; i < 7; i++) position += 8 + buf.readUInt32LE(position);
  buf[position + 20] = (buf[position + 20] as number) ^ 0x01;
  await writeFile(victim, buf);
  const bad = Number(files[2]?.slice(0, 20)) + 7;
  const line = `tapeq logcat: corrupt record in ${victim} at byte ${position} (record offset ${bad}): checksum mismatch; records from offset ${bad} on are not printed\n`;
  return { dir, bad, line };
}

t.test('logcat-prints-every-sound-record-before-damage-then-names-it-and-exits-1', async (t) => {
  const { dir, bad, line } = await damagedLog(t);
  const before = await hashTree(dir);
  for (const args of [[], ['--to', String(bad + 1)], ['--from', '5'], ['--until', String(t0 + bad - 1)]]) {
    const r = await runCli(['logcat', '--dir', dir, ...args]);
    t.equal(r.code, 1, `logcat ${args.join(' ')}: the range reaches the damage`);
    const from = args[0] === '--from' ? 5 : 0;
    t.strictSame(lines(r.stdout).map((l) => l['offset']), Array.from({ length: bad - from }, (_, i) => from + i), 'every record before it, in order');
    t.equal(r.stderr, line, 'then one line naming file, byte and record offset');
  }
  const past = await runCli(['logcat', '--dir', dir, '--from', String(bad + 10)]);
  t.equal(past.code, 1, 'a range wholly after the damage cannot be read');
  t.equal(past.stdout, '');
  t.equal(past.stderr, line);
  t.strictSame(await hashTree(dir), before, 'read-only');
});

t.test('logcat-range-that-ends-before-damage-is-printed-whole-with-0', async (t) => {
  const { dir, bad } = await damagedLog(t);
  // A time ends before the damage once a record before it is stamped later (the damaged record's
  // stamp is unknown): here record bad - 1.
  for (const args of [['--to', '30'], ['--to', String(bad)], ['--until', String(t0 + bad - 2)], ['--from', '10', '--to', '20', '--kind', 'pushed']]) {
    const r = await runCli(['logcat', '--dir', dir, ...args]);
    t.equal(r.code, 0, `logcat ${args.join(' ')}: ${r.stderr}`);
    t.equal(r.stderr, '', 'nothing to report');
    const [from, to] = args[0] === '--from' ? [10, 20] : [0, args[0] === '--to' ? Number(args[1]) : bad - 1];
    t.strictSame(lines(r.stdout).map((l) => l['offset']), Array.from({ length: to - from }, (_, i) => from + i));
  }
});
