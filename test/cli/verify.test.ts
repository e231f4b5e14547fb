import t from 'tap';
import { cp, mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { segmentHeaderBytes } from '../../src/log/segment-header.js';
import { stateAt } from '../../src/history/state-at.js';
import { listSnapshots, verifySnapshotFile, writeStateSnapshot } from '../../src/snapshot/store.js';
import { compactedDataDir } from '../history/workload.js';
import { hashTree, openLog, segmentFiles, tempDir, writeLog } from '../log/helpers.js';
import { runTapeq } from '../fixtures/process.js';
import { runCli } from './run-cli.js';

t.test('verify-clean-log-prints-summary-exits-0-and-leaves-dir-byte-identical', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 500, { segmentBytes: 8192 });
  const before = await hashTree(dir);
  const files = await segmentFiles(dir);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, `tapeq verify: ok ${files.length} segments, 500 records (offsets 0..499)`);
  t.strictSame(await hashTree(dir), before);
});

t.test('verify-uses-DATA_DIR-and-its-log-subdirectory-when-no-dir-flag', async (t) => {
  const dir = await tempDir(t);
  await writeLog(join(dir, 'log'), 3);
  const r = await runCli(['verify'], { DATA_DIR: dir });
  t.equal(r.code, 0);
  t.match(r.stdout, '3 records');
  t.ok(r.stdout.endsWith(', 0 snapshots; recover --until reaches back to offset 0\n'), 'a whole log: recovery reaches its start');
});

t.test('an-empty-DATA_DIR-is-unset-for-the-tools-as-for-serve', async (t) => {
  // `DATA_DIR= tapeq serve` writes ./data; the tools looked in ./log instead.
  const cwd = await tempDir(t);
  await writeLog(join(cwd, 'data', 'log'), 3);
  const verify = await runCli(['verify'], { DATA_DIR: '' }, cwd);
  t.equal(verify.code, 0, verify.stdout);
  t.match(verify.stdout, '3 records');
  const logcat = await runCli(['logcat'], { DATA_DIR: '' }, cwd);
  t.equal(logcat.code, 0, logcat.stderr);
  t.equal(logcat.stdout.trim().split('\n').length, 3);
});

t.test('verify-bit-flip-exits-1-naming-file-byte-and-record-offset-once', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 500, { segmentBytes: 8192 });
  const files = await segmentFiles(dir);
  const victim = join(dir, files[2] as string);
  const base = Number(files[2]?.slice(0, 20));
  const buf = await readFile(victim);
  let position = segmentHeaderBytes;
  for (let i = 0; i < 7; i++) position += 8 + buf.readUInt32LE(position);
  buf[position + 20] = (buf[position + 20] as number) ^ 0x01;
  await writeFile(victim, buf);
  const before = await hashTree(dir);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 1);
  t.equal(r.stdout, `tapeq verify: FAILED corrupt record in ${victim} at byte ${position} (record offset ${base + 7}): checksum mismatch\n`, 'the place, said once');
  t.strictSame(await hashTree(dir), before, 'read-only: nothing changed');
});

t.test('verify-torn-tail-exits-1-and-does-not-cut-it', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 10);
  const file = join(dir, (await segmentFiles(dir))[0] as string);
  const size = (await readFile(file)).length;
  await truncate(file, size - 5);
  const before = await hashTree(dir);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 1);
  t.match(r.stdout, /torn tail/);
  t.strictSame(await hashTree(dir), before);
});

t.test('verify-missing-directory-exits-1', async (t) => {
  const dir = await tempDir(t);
  const r = await runCli(['verify', '--dir', join(dir, 'none')]);
  t.equal(r.code, 1);
  t.match(r.stdout, /no log directory/);
  t.notMatch(r.stdout, /\?/, 'no placeholder for a byte or offset a missing directory does not have');
});

t.test('verify-of-a-log-whose-first-start-crashed-before-its-header-says-it-is-empty', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '00000000000000000000.log'), Buffer.alloc(0));
  const before = await hashTree(dir);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 1);
  t.match(r.stdout, /^tapeq verify: FAILED the log in .* is empty: its only segment 00000000000000000000\.log is 0 bytes/);
  t.notMatch(r.stdout, /bad segment header|corrupt|torn/);
  t.strictSame(await hashTree(dir), before, 'nothing written');
});

t.test('verify-of-a-log-without-records-says-so-not-offsets-0..-1', async (t) => {
  // A server started and stopped before its first push leaves a segment with a header only.
  const dir = await tempDir(t);
  await writeLog(dir, 0);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 0, r.stdout);
  t.match(r.stdout, /^tapeq verify: ok 1 segments, 0 records \(no record; the next is offset 0\), \d+ bytes, log /);
  t.notMatch(r.stdout, /\.\.-1/, 'no reversed range');
});

t.test('verify-checks-the-snapshots-a-log-retention-cut-needs-and-fails-naming-a-bad-one', async (t) => {
  // A log whose first segments retention removed starts only from a snapshot: with its snapshots
  // damaged or gone, `serve` refuses to start, and verify said `ok`.
  const dir = await tempDir(t);
  const src = await compactedDataDir(dir);
  const snapshots = join(dir, 'snapshots');
  const sound = await runCli(['verify', '--dir', dir]);
  t.equal(sound.code, 0, sound.stdout);
  t.match(sound.stdout, /^tapeq verify: ok .*, 2 snapshots; recover --until reaches back to offset \d+ \(/, 'the summary says what was checked');
  // The older snapshot lies below the log's first offset: the newer one is where recovery starts.
  const reach = (await listSnapshots(snapshots)).filter((e) => e.offset >= src.firstOffset).map((e) => e.offset).at(-1);
  const stamp = new Date((await verifySnapshotFile(src.newer)).timestamp).toISOString();
  t.ok(sound.stdout.endsWith(`; recover --until reaches back to offset ${reach} (${stamp})\n`), 'and how far back point-in-time recovery reaches');

  const bytes = await readFile(src.newer);
  bytes[bytes.length >> 1] = (bytes[bytes.length >> 1] as number) ^ 0x01;
  await writeFile(src.newer, bytes);
  const before = await hashTree(dir);
  const damaged = await runCli(['verify', '--dir', dir]);
  t.equal(damaged.code, 1, damaged.stdout);
  t.match(damaged.stdout, `tapeq verify: FAILED ${src.newer}: `);
  t.match(damaged.stdout, /checksum mismatch\n$/);
  t.strictSame(await hashTree(dir), before, 'read-only: nothing changed');

  for (const name of await readdir(snapshots)) await rm(join(snapshots, name));
  const none = await runCli(['verify', '--dir', dir]);
  t.equal(none.code, 1, none.stdout);
  t.equal(
    none.stdout,
    `tapeq verify: FAILED ${snapshots}: the log starts at offset ${src.firstOffset} (records [0, ${src.firstOffset}) are gone from it) ` +
      `and no snapshot at offset ${src.firstOffset} to ${src.records} holds the state to replay it from; serve cannot start\n`,
  );
  const alone = join(dir, 'segments-copy');
  await cp(join(dir, 'log'), alone, { recursive: true });
  const copy = await runCli(['verify', '--dir', alone]);
  t.equal(copy.code, 0, `a directory of segments read alone is no data directory to start: ${copy.stdout}`);
});

t.test('verify-of-a-torn-tail-names-the-segment-by-its-path-as-for-other-damage', async (t) => {
  // Every other failure names the segment's path; a torn tail named its bare file name, which a
  // user checking several data directories could not place.
  const dir = await tempDir(t);
  await writeLog(join(dir, 'log'), 10);
  const file = join(dir, 'log', (await segmentFiles(join(dir, 'log')))[0] as string);
  await truncate(file, (await readFile(file)).length - 5);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 1);
  t.match(r.stdout, new RegExp(`^tapeq verify: FAILED ${file} byte \\d+: torn tail of \\d+ bytes \\(record offset 9;`));
});

t.test('verify-of-a-log-that-lost-records-a-snapshot-covers-fails-naming-the-missing-offsets', async (t) => {
  // A snapshot covers durable records only: one past the log's end proves that the log lost
  // records it once held (a machine crash under LOG_SYNC=interval, a disk that dropped writes).
  const dir = await tempDir(t);
  await writeLog(join(dir, 'log'), 500, { segmentBytes: 8192 });
  const { log, loaded } = await stateAt(dir, undefined, () => undefined);
  await log.close();
  const snapshot = await writeStateSnapshot(join(dir, 'snapshots'), loaded.state);
  const files = await segmentFiles(join(dir, 'log'));
  const last = files.at(-1) as string;
  const end = Number(last.slice(0, 20));
  await rm(join(dir, 'log', last));
  const before = await hashTree(dir);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 1, r.stdout);
  t.equal(r.stdout, `tapeq verify: FAILED ${snapshot}: the snapshot covers offsets up to 500 but the log ends at ${end}: the log lost records [${end}, 500)\n`);
  t.strictSame(await hashTree(dir), before, 'read-only: the snapshot is not moved aside');
});

t.test('verify-of-an-empty-segment-a-roll-left-is-no-torn-tail-as-for-serve', async (t) => {
  // A roll that stopped right after creating the next segment leaves an empty file; the next
  // start writes its header and cuts nothing (recovery.ts). verify called it "a torn tail of 0
  // bytes" that "the next start would cut", and exited 1 for a log that lost nothing.
  const dir = await tempDir(t);
  await writeLog(dir, 300, { segmentBytes: 8192 });
  const { log } = await openLog({ dir, readOnly: true });
  const end = log.nextOffset;
  await log.close();
  const files = await segmentFiles(dir);
  await writeFile(join(dir, `${String(end).padStart(20, '0')}.log`), Buffer.alloc(0));
  const before = await hashTree(dir);
  const r = await runCli(['verify', '--dir', dir]);
  t.equal(r.code, 0, r.stdout);
  t.match(r.stdout, `tapeq verify: ok ${files.length + 1} segments, 300 records (offsets 0..299)`);
  t.notMatch(r.stdout, /torn tail/);
  t.strictSame(await hashTree(dir), before, 'read-only: the header is not written');
});

t.test('a-directory-named-like-a-segment-file-is-a-one-line-error-for-the-tools-not-a-stack-trace', async (t) => {
  const dir = await tempDir(t);
  await writeLog(dir, 3);
  const name = '00000000000000000003.log'; // where the next segment would start
  await mkdir(join(dir, name));
  for (const tool of ['verify', 'logcat']) {
    const r = await runCli([tool, '--dir', dir]);
    t.equal(r.code, 1, `${tool}: ${r.stdout}${r.stderr}`);
    const out = `${r.stdout}${r.stderr}`; // verify reports on stdout, logcat on stderr
    t.equal(out.trim().split('\n').length, 1, `${tool}: one line`);
    t.match(out, `${join(dir, name)} is a directory, not a segment file`);
    t.notMatch(out, /EISDIR|    at /);
  }
});

t.test('a-dir-that-is-a-file-is-named-as-given-with-why-by-every-tool', async (t) => {
  // verify said `tapeq: cannot use <dir>/snapshots: not a directory`, a path the user never gave.
  const dir = await tempDir(t);
  const file = join(dir, 'not-a-dir');
  await writeFile(file, 'x');
  const why = `${file} is not a directory: --dir (or DATA_DIR) names the data directory or its log directory`;
  const verify = await runTapeq(['verify', '--dir', file]);
  t.equal(verify.code, 1);
  t.equal(`${verify.stdout}${verify.stderr}`, `tapeq verify: FAILED ${why}\n`);
  for (const [tool, ...args] of [['logcat'], ['replay'], ['export', '--avro', join(dir, 'x.avro')], ['recover', '--until', '1', '--out', join(dir, 'out')]] as const) {
    const r = await runTapeq([tool, ...args, '--dir', file]);
    t.equal(r.code, 1, tool);
    t.equal(r.stderr, `tapeq ${tool}: ${why}\n`, `${tool} says it the same way`);
  }
  t.same(await readdir(dir), ['not-a-dir'], 'nothing was written');
});
