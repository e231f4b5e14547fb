// tapeq export --avro as a real child process: the file is a standard Avro object container
// (read back with avsc's container decoder, schema from the file header) holding every record
// of the log, field for field; filters select exactly the matching records.

import { createReadStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { openReadOnly } from '../../src/log/log.js';
import { recordToJson } from '../../src/record/codec.js';
import { jobIdsOf, queueOf, type LogRecord } from '../../src/record/types.js';
import { createAvroContainerDecoder } from '../../src/snapshot/codec.js';
import { runTapeq } from '../fixtures/process.js';
import { compactedDataDir, runWorkload } from '../history/workload.js';

const root = await mkdtemp(join(tmpdir(), 'tapeq-export-'));
t.teardown(() => rm(root, { recursive: true, force: true }));
const w = await runWorkload(join(root, 'src'), 60);

async function logRecords(): Promise<LogRecord[]> {
  const log = await openReadOnly(join(w.dir, 'log'));
  const out: LogRecord[] = [];
  for await (const batch of log.readBatches(log.firstOffset)) out.push(...batch);
  await log.close();
  return out;
}

async function readAvro(file: string): Promise<{ rows: any[]; schema: any; codec: string }> {
  const decoder = createAvroContainerDecoder();
  let schema: any = null;
  let codec = '';
  decoder.on('metadata', (type: { schema(): unknown }, c: string) => {
    schema = type.schema();
    codec = c;
  });
  const rows: any[] = [];
  createReadStream(file).pipe(decoder);
  for await (const row of decoder) rows.push(row);
  return { rows, schema, codec };
}

function expectedRow(r: LogRecord): unknown {
  const { time: _time, ...json } = recordToJson(r);
  return json;
}

function rowAsJson(row: any): unknown {
  return { offset: row.offset, timestamp: row.timestamp, type: row.type, ...(row.actor === null ? {} : { actor: row.actor }), ...JSON.parse(row.body) };
}

t.test('export-round-trips-every-record', async (t) => {
  const file = join(root, 'all.avro');
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file]);
  t.equal(r.code, 0, r.stderr);
  t.equal((await readFile(file)).subarray(0, 4).toString('latin1'), 'Obj\x01', 'Avro object container magic');
  const { rows, schema, codec } = await readAvro(file);
  t.equal(codec, 'deflate');
  t.equal(schema.name, 'tapeq.export.v1.LogRecord');
  const records = await logRecords();
  t.equal(rows.length, records.length, 'one row per record');
  t.equal(rows.length, w.records);
  for (const [i, record] of records.entries()) {
    const row = rows[i];
    t.equal(row.queue, queueOf(record.body));
    t.same(row.jobIds, jobIdsOf(record.body));
    t.same(rowAsJson(row), expectedRow(record), `record ${record.offset}`);
  }
});

t.test('export-file-header-holds-the-schema-file-logical-type-and-docs-included', async (t) => {
  const file = join(root, 'header.avro');
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file]);
  t.equal(r.code, 0, r.stderr);
  const decoder = createAvroContainerDecoder();
  const header = new Promise<{ meta: Record<string, Buffer> }>((resolve) => decoder.on('metadata', (_type: unknown, _codec: string, h: any) => resolve(h)));
  createReadStream(file).pipe(decoder);
  decoder.resume();
  const written = JSON.parse((await header).meta['avro.schema']?.toString() ?? 'null');
  const schemaFile = JSON.parse(await readFile(new URL('../../../src/history/export-schema.json', import.meta.url), 'utf8'));
  t.same(written, schemaFile, 'the schema Avro readers see is src/history/export-schema.json');
  t.same(written.fields.find((f: any) => f.name === 'timestamp').type, { type: 'long', logicalType: 'timestamp-millis' }, 'timestamps read as times, not bare longs');
});

t.test('export-filters-by-queue-and-range', async (t) => {
  const records = await logRecords();
  const cp = w.checkpoints[1];
  const first = w.checkpoints[0];
  if (cp === undefined || first === undefined) throw new Error('no checkpoint');
  const file = join(root, 'q1.avro');
  const since = new Date(first.timestamp + 1).toISOString();
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file, '--queue', 'q1', '--since', since, '--until', String(cp.offset)]);
  t.equal(r.code, 0, r.stderr);
  const { rows } = await readAvro(file);
  const want = records.filter((x) => queueOf(x.body) === 'q1' && x.timestamp > first.timestamp && x.offset < cp.offset);
  t.ok(want.length > 0);
  t.same(rows.map((x) => x.offset), want.map((x) => x.offset));
  t.equal((await runTapeq(['export', '--dir', w.dir])).code, 2, '--avro required');
});

t.test('export-summary-names-the-offsets-of-the-rows-written-and-the-range-scanned-apart', async (t) => {
  // With --queue the summary gave the range read ("offsets 13..57") for rows at 17..23.
  const records = await logRecords();
  const first = w.checkpoints[0];
  if (first === undefined) throw new Error('no checkpoint');
  const since = new Date(first.timestamp + 1).toISOString();
  const from = records.find((x) => x.timestamp > first.timestamp)?.offset;
  const rows = records.filter((x) => queueOf(x.body) === 'q2' && x.timestamp > first.timestamp);
  const [firstRow, lastRow] = [rows[0], rows.at(-1)];
  if (from === undefined || firstRow === undefined || lastRow === undefined || firstRow.offset === from) throw new Error('the range must start with another queue');
  const file = join(root, 'summary.avro');
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file, '--queue', 'q2', '--since', since]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, `tapeq export: ${rows.length} records of queue q2 (offsets ${firstRow.offset}..${lastRow.offset}; scanned offsets ${from}..${w.records - 1}) written to ${file}\n`);
  t.same((await readAvro(file)).rows.map((x) => x.offset), rows.map((x) => x.offset), 'the rows the summary names');
  const none = await runTapeq(['export', '--dir', w.dir, '--avro', file, '--queue', 'nope', '--until', '10']);
  t.equal(none.stderr, `tapeq export: 0 records of queue nope (scanned offsets 0..9) written to ${file}\n`, 'no rows: no offsets of rows');
});

t.test('export-into-a-missing-directory-fails-with-a-clear-message', async (t) => {
  const file = join(root, 'no-such-dir', 'x.avro');
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file]);
  t.equal(r.code, 1);
  t.match(r.stderr, new RegExp(`^tapeq export: cannot write ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ENOENT`));
  t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

t.test('export-refuses-a-since-time-after-an-offset-until-and-writes-nothing', async (t) => {
  const records = await logRecords();
  const late = records.at(-1);
  if (late === undefined) throw new Error('empty log');
  const file = join(root, 'reversed.avro');
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file, '--since', new Date(late.timestamp).toISOString(), '--until', '1']);
  t.equal(r.code, 2, 'a reversed range is a usage error, not an empty file');
  t.match(r.stderr, /^tapeq export: --since is after --until: the first record stamped at or after --since is offset \d+, --until ends before 1/);
  await t.rejects(readFile(file), { code: 'ENOENT' }, 'no file written');
});

t.test('export-refuses-a-file-inside-the-data-directory-and-leaves-it-byte-identical', async (t) => {
  // The export is renamed over its --avro path: one naming a segment (a typo, a tab completion)
  // replaced the log's records with an Avro file. Every tool but serve is read-only (README).
  const segment = (await readdir(join(w.dir, 'log'))).find((name) => name.endsWith('.log'));
  if (segment === undefined) throw new Error('no segment');
  const before = await readFile(join(w.dir, 'log', segment));
  for (const file of [join(w.dir, 'log', segment), join(w.dir, 'export.avro'), join(w.dir, 'log', '..', 'snapshots', 'x.avro')]) {
    const r = await runTapeq(['export', '--dir', w.dir, '--avro', file]);
    t.equal(r.code, 2, file);
    t.match(r.stderr, /^tapeq export: --avro .* is inside the data directory .*; export never writes into it/);
    t.notMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  t.same(await readFile(join(w.dir, 'log', segment)), before, 'the segment is untouched');
  await t.rejects(readFile(join(w.dir, 'export.avro')), { code: 'ENOENT' }, 'nothing written into the data dir');
});

t.test('export-refuses-a-fifo-as-target-and-leaves-it-in-place', async (t) => {
  const fifo = join(root, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', fifo]);
  t.equal(r.code, 2, r.stderr);
  t.match(r.stderr, /--avro .*out\.fifo exists and is not a regular file \(a FIFO\)/);
  t.ok((await lstat(fifo)).isFIFO(), 'the FIFO was not replaced');
  t.same((await readdir(root)).filter((f) => f.includes('.tmp-')), [], 'no temporary file left');
});

t.test('export-of-an-empty-range-says-so-and-writes-a-file-without-rows', async (t) => {
  const records = await logRecords();
  const last = records.at(-1);
  if (last === undefined) throw new Error('empty log');
  const file = join(root, 'empty.avro');
  const r = await runTapeq(['export', '--dir', w.dir, '--avro', file, '--since', new Date(last.timestamp + 1).toISOString()]);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stderr, `tapeq export: 0 records (no record in the range) written to ${file}\n`, 'not "offsets N..N-1"');
  t.same((await readAvro(file)).rows, []);
});

t.test('export-of-records-retention-removed-says-they-are-gone-instead-of-no-record-in-the-range', async (t) => {
  // A log whose first segments retention removed: records [0, firstOffset) existed but are gone.
  // `--until 5` summed up as "0 records (no record in the range)", exit 0, and a full export named
  // only the offsets it wrote: an audit trail short of its beginning, without a word.
  const src = await compactedDataDir(join(root, 'compacted'));
  const gone = `records [0, ${src.firstOffset}) are gone from the log`;
  for (const until of [String(src.firstOffset - 5), String(src.firstOffset)]) {
    const file = join(root, `gone-${until}.avro`);
    const r = await runTapeq(['export', '--dir', src.dir, '--avro', file, '--until', until, '--since', '2000-01-01']);
    t.equal(r.code, 1, `--until ${until}: every record asked for is gone`);
    t.equal(r.stderr, `tapeq export: --until ${until} ends before the log's first record (offset ${src.firstOffset}): ${gone} (retention)\n`);
    await t.rejects(readFile(file), { code: 'ENOENT' }, 'no file written');
  }
  const file = join(root, 'compacted.avro');
  const all = await runTapeq(['export', '--dir', src.dir, '--avro', file]);
  t.equal(all.code, 0, all.stderr);
  t.equal(all.stderr, `tapeq export: ${src.records - src.firstOffset} records (offsets ${src.firstOffset}..${src.records - 1}; ${gone}) written to ${file}\n`);
  t.equal((await readAvro(file)).rows.length, src.records - src.firstOffset);
});
