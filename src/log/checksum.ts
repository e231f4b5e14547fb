// Checksums for log frames and segment headers: xxh32 (xxhash-wasm), the only module that
// imports xxhash-wasm.
//
// Invariant: initChecksum() has resolved before checksum32() is called (Log.open and the CLI
// tools await it first); checksum32 asserts that. Idempotent; concurrent calls share one load.

import xxhash from 'xxhash-wasm';

/** Seed of every tapeq checksum ("tapq" in ASCII). Part of the on-disk format: never change. */
export const checksumSeed = 0x74617071;

let h32Raw: ((input: Uint8Array, seed?: number) => number) | null = null;
let loading: Promise<void> | null = null;

export function initChecksum(): Promise<void> {
  loading ??= xxhash().then((api) => {
    h32Raw = api.h32Raw;
  });
  return loading;
}

/** xxh32 of bytes[start, end) with the fixed tapeq seed (or `seed`, for frames: see framing.ts). */
export function checksum32(bytes: Uint8Array, start: number, end: number, seed = checksumSeed): number {
  if (h32Raw === null) throw new Error('checksum32 before initChecksum()');
  // A plain Uint8Array view: cheaper than Buffer#subarray, which builds a Buffer per call.
  return h32Raw(new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start), seed) >>> 0;
}
