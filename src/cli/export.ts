// `tapeq export --avro <file> [--dir <path>] [--since <time>] [--until <offset|ISO time>] [--queue <name>]`:
// writes log records as an Avro object container file (deflate blocks) with the schema in
// src/history/export-schema.json, readable by any Avro tool (avro-tools tojson, fastavro, Spark).
//
//   --since <time>               first record stamped >= time (ISO 8601)
//   --until <offset|ISO time>    offset N: records < N; a time: records stamped <= it
//   --queue <name>               only that queue's records
//
// The file is written as `<file>.tmp-<pid>`, flushed, then renamed: a reader never sees half a
// file. The data directory is only read (an --avro file inside it is refused). Prints a one-line
// summary on stderr: the rows written and their first and last offsets (with --queue, also the
// range scanned for them). Exit 0; 1 on log errors; 2 on usage errors.

import { avroExportBlockBytes } from '../constants.js';
import { once } from 'node:events';
import { open, rename, rm, stat } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { isInside } from '../history/fork.js';
import { isoTimeMs, parsePoint, PointError, sinceOffset, untilOffset, type Point } from '../history/point.js';
import { dataDirOf, openAtPoint, sourcePathsOf } from '../history/state-at.js';
import { LogError } from '../log/log.js';
import { recordToJson } from '../record/codec.js';
import { jobIdsOf, queueOf, type LogRecord } from '../record/types.js';
import { createAvroContainerEncoder } from '../snapshot/codec.js';
import exportSchema from '../history/export-schema.json' with { type: 'json' };


interface ExportArgs {
  dir: string;
  file: string;
  since: number | null;
  until: Point | null;
  queue: string | null;
}

function parseExportArgs(argv: string[]): ExportArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      dir: { type: 'string' },
      avro: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      queue: { type: 'string' },
    },
  });
  if (values.avro === undefined) throw new PointError('--avro <file> is required');
  if (values.avro === '') throw new PointError('--avro: empty; name the file to write');
  if (values.queue === '') throw new PointError('--queue: empty; name the queue');
  let since: number | null = null;
  if (values.since !== undefined) {
    since = isoTimeMs(values.since);
    if (!Number.isFinite(since)) throw new PointError(`--since: not an ISO 8601 time: ${values.since}`);
  }
  const until = values.until === undefined ? null : parsePoint('--until', values.until);
  if (since !== null && until?.kind === 'time' && since > until.ms) throw new PointError('--since is after --until');
  return { dir: dataDirOf(values.dir), file: values.avro, since, until, queue: values.queue ?? null };
}

/** One row of the export schema. */
export function exportRow(r: LogRecord): Record<string, unknown> {
  const { offset: _o, timestamp: _t, time: _time, type: _type, actor: _a, ...fields } = recordToJson(r);
  return {
    offset: r.offset,
    timestamp: r.timestamp,
    type: r.body.type,
    queue: queueOf(r.body),
    jobIds: jobIdsOf(r.body),
    actor: r.actor === null ? null : { name: r.actor.name, address: r.actor.address },
    body: JSON.stringify(fields),
  };
}

export async function exportCommand(argv: string[]): Promise<number> {
  let args: ExportArgs;
  try {
    args = parseExportArgs(argv);
  } catch (err) {
    console.error(`tapeq export: ${(err as Error).message}`);
    return 2;
  }
  const tmp = `${args.file}.tmp-${process.pid}`;
  try {
    // The file is renamed over --avro: a path naming a segment would replace it. Like every tool
    // but serve, export leaves the data directory byte-identical.
    const source = await sourcePathsOf(args.dir);
    if (await isInside(args.file, source.dataDir)) {
      console.error(`tapeq export: --avro ${args.file} is inside the data directory (${source.dataDir}); export never writes into it`);
      return 2;
    }
    // The rename would replace a FIFO, socket or device node named by --avro with a plain file.
    const kind = await nonRegularKind(args.file);
    if (kind !== null) {
      console.error(`tapeq export: --avro ${args.file} exists and is not a regular file (${kind}); export writes only a new or regular file`);
      return 2;
    }
    // With --until, the log is read only as far as the point needs: damage after it does not stop the export.
    const log = await openAtPoint(source.logDir, args.until ?? undefined, (line) => console.error(`tapeq export: ${line}`));
    const rows: Rows = { count: 0, first: null, last: null };
    try {
      const from = args.since === null ? log.firstOffset : Math.max(log.firstOffset, await sinceOffset(log, args.since));
      const to = args.until === null ? log.durableOffset : await untilOffset(log, args.until);
      if (args.until?.kind === 'offset' && args.until.offset > to) {
        console.error(`tapeq export: --until ${args.until.offset} is past the log's end: records to its end, offset ${to}`);
      }
      // Retention removed the records below firstOffset: a range that starts there may lack some,
      // and one that ends there has none left to write (as logcat and replay refuse it).
      const gone = log.firstOffset > 0 && from === log.firstOffset ? `records [0, ${log.firstOffset}) are gone from the log` : null;
      if (gone !== null && args.until?.kind === 'offset' && args.until.offset <= log.firstOffset) {
        console.error(`tapeq export: --until ${args.until.offset} ends before the log's first record (offset ${log.firstOffset}): ${gone} (retention)`);
        return 1;
      }
      // Times were compared while parsing; an offset --until is compared once --since is an offset.
      if (args.since !== null && args.until?.kind === 'offset' && from > to) {
        console.error(`tapeq export: --since is after --until: the first record stamped at or after --since is offset ${from}, --until ends before ${to}`);
        return 2;
      }
      const encoder = createAvroContainerEncoder(exportSchema, 'deflate', avroExportBlockBytes);
      // Opened first, so that a directory that does not exist is an error here, not an 'error'
      // event of a stream nobody listens to; a later write error ends the encoder too.
      const out = (await open(tmp, 'wx')).createWriteStream();
      out.on('error', (error) => encoder.destroy(error));
      encoder.pipe(out);
      if (from < to) {
        for await (const batch of log.readBatches(from, to)) {
          for (const r of batch) {
            if (args.queue !== null && queueOf(r.body) !== args.queue) continue;
            rows.count++;
            rows.first ??= r.offset;
            rows.last = r.offset;
            if (!encoder.write(exportRow(r))) await once(encoder, 'drain');
          }
        }
      }
      encoder.end();
      await finished(out);
      const fh = await open(tmp, 'r+');
      await fh.sync().finally(() => fh.close());
      await rename(tmp, args.file);
      const notes = [...rangesOf(rows, from, to, args.queue), ...(gone === null ? [] : [gone])];
      console.error(`tapeq export: ${rows.count} records${args.queue === null ? '' : ` of queue ${args.queue}`} (${notes.join('; ')}) written to ${args.file}`);
    } finally {
      await log.close();
    }
    return 0;
  } catch (err) {
    await rm(tmp, { force: true });
    if (err instanceof LogError) {
      console.error(`tapeq export: ${err.message}`);
      return 1;
    }
    if (typeof (err as NodeJS.ErrnoException).code === 'string') {
      console.error(`tapeq export: cannot write ${args.file}: ${(err as Error).message}`);
      return 1;
    }
    throw err;
  }
}

/** The rows written: how many, and the offsets of the first and the last. */
interface Rows {
  count: number;
  first: number | null;
  last: number | null;
}

/** The summary's offsets: those of the rows written; with --queue, which picks rows out of the
 *  range, also the range read, labelled as such. */
function rangesOf(rows: Rows, from: number, to: number, queue: string | null): string[] {
  if (from >= to) return ['no record in the range'];
  const written = rows.first === null ? [] : [`offsets ${rows.first}..${rows.last}`];
  return queue === null ? written : [...written, `scanned offsets ${from}..${to - 1}`];
}

/** What a path that exists as something other than a regular file is (following links), or null. */
async function nonRegularKind(path: string): Promise<string | null> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (st === null || st.isFile()) return null;
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'an unknown file type';
}
