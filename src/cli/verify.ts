// `tapeq verify [--dir <path>]`: checks every segment header, every frame's length and checksum,
// that every record decodes, and that offsets run without a gap within and across segments.
// Prints a summary and exits 0, or exits 1 naming the first bad record: file, byte position,
// record offset and what is wrong. A torn tail (which the next `serve` would cut) counts as bad.
// Strictly read-only: opens files O_RDONLY and never truncates or rebuilds anything.

import { parseArgs } from 'node:util';
import { dataDirOf } from '../history/state-at.js';
import { findLogDir, LogError, openReadOnly } from '../log/log.js';

export async function verifyCommand(argv: string[]): Promise<number> {
  let dir: string;
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { dir: { type: 'string' } } });
    dir = dataDirOf(values.dir);
  } catch (err) {
    console.error(`tapeq verify: ${(err as Error).message}`);
    return 2;
  }
  try {
    const log = await openReadOnly(await findLogDir(dir));
    const cut = log.openReport.tailCut;
    if (cut !== null) {
      console.log(
        `verify: FAILED ${cut.segment} byte ${cut.position}: torn tail of ${cut.bytes} bytes ` +
          `(record offset ${log.nextOffset}; the next start would cut it)`,
      );
      await log.close();
      return 1;
    }
    let records = 0;
    for await (const batch of log.readBatches(log.firstOffset)) records += batch.length;
    const segments = log.segments();
    const bytes = segments.reduce((n, s) => n + s.bytes, 0);
    const range = records === 0 ? `no record; the next is offset ${log.nextOffset}` : `offsets ${log.firstOffset}..${log.nextOffset - 1}`;
    console.log(`verify: ok ${segments.length} segments, ${records} records (${range}), ${bytes} bytes, log ${log.logId}`);
    await log.close();
    return 0;
  } catch (err) {
    if (!(err instanceof LogError)) throw err;
    // Only what is known: a missing directory has a file but no byte or offset.
    const at = [err.position === undefined ? '' : ` byte ${err.position}`, err.offset === undefined ? '' : ` record offset ${err.offset}`].join('');
    const where = err.file === undefined ? '' : `${err.file}${at}: `;
    console.log(`verify: FAILED ${where}${err.message}`);
    return 1;
  }
}
