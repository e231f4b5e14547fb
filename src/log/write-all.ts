// Positional writes that write everything or throw. One write(2) may write less than asked (a
// disk filling up, a write past 2 GiB): Node's FileHandle.write and writev then resolve with the
// short count, not an error, so a caller that ignores it leaves a hole in the file. These loop
// until every byte is written; the call that finds no room at all throws (ENOSPC), as it should.

import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';

export async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}

export function writeAllSync(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, position + done);
}
