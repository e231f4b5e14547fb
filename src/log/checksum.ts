// Checksums for log frames and segment headers: xxh32 (xxhash-wasm), the only module that
// imports xxhash-wasm.
//
// Two ways in:
//   checksum32(bytes, start, end)       one range: xxhash-wasm's h32Raw (it copies the range into
//                                       its wasm memory, ~280 ns per call on a 100-byte frame)
//   loadChecksumRange + checksumLoaded  many small ranges of one buffer (frames of a batch or a
//                                       read chunk): one copy into our own instance of the same
//                                       xxhash-wasm module, then its raw `xxh32(ptr, len, seed)`
//                                       export per range, ~50 ns per frame
//   createChecksum32()                  one range handed over in pieces (a snapshot block read
//                                       piece by piece): update(), then digest()
// The bulk pair shares one wasm memory between all callers, so a load and the checksumLoaded
// calls that read it must run in one synchronous stretch (no await between them). A wasm memory
// grows to the largest range ever copied into it and never shrinks, so nothing copies more than
// bulkChecksumBytesMax at a time: callers load at most that, and checksum32 and the incremental
// hasher feed a longer range to xxh32's streaming state in pieces of that size (a 500 MB
// snapshot block hashed in one copy kept 500 MB of wasm memory in the process for good).
//
// Invariant: initChecksum() has resolved before any other function here is called (Log.open and
// the CLI tools await it first); they assert that. Idempotent; concurrent calls share one load.

import { readFile } from 'node:fs/promises';
import xxhash from 'xxhash-wasm';
import { recordBytesMax } from '../constants.js';

/** Seed of every tapeq checksum ("tapq" in ASCII). Part of the on-disk format: never change. */
export const checksumSeed = 0x74617071;

/** The most bytes one loadChecksumRange may copy (a whole largest frame, with its header). */
export const bulkChecksumBytesMax = recordBytesMax + 64 * 1024;

interface RawXxh {
  mem: WebAssembly.Memory;
  xxh32: (ptr: number, length: number, seed: number) => number;
}

let h32Raw: ((input: Uint8Array, seed?: number) => number) | null = null;
let create32: ((seed?: number) => { update(input: Uint8Array): unknown; digest(): number }) | null = null;
let raw: RawXxh | null = null;
let memBytes: Uint8Array = new Uint8Array(0);
let loadedBytes = 0;
let loading: Promise<void> | null = null;

export function initChecksum(): Promise<void> {
  loading ??= (async () => {
    const api = await xxhash();
    // The same module xxhash-wasm wraps, shipped beside it as a plain .wasm file: instantiating
    // it ourselves exposes the (ptr, len, seed) export that hashes in place.
    const wasmUrl = new URL('../workerd/xxhash.wasm', import.meta.resolve('xxhash-wasm'));
    const { instance } = await WebAssembly.instantiate(await readFile(wasmUrl));
    const exports = instance.exports as unknown as RawXxh;
    const probe = new Uint8Array(37).map((_, i) => i * 7);
    memBytes = new Uint8Array(exports.mem.buffer);
    memBytes.set(probe, 0);
    if (exports.xxh32(0, probe.length, checksumSeed) >>> 0 !== api.h32Raw(probe, checksumSeed) >>> 0) {
      throw new Error('xxhash-wasm: raw xxh32 export disagrees with h32Raw');
    }
    raw = exports;
    h32Raw = api.h32Raw;
    create32 = api.create32;
  })();
  return loading;
}

/** xxh32 of bytes[start, end) with the fixed tapeq seed (or `seed`, for frames: see framing.ts). */
export function checksum32(bytes: Uint8Array, start: number, end: number, seed = checksumSeed): number {
  if (h32Raw === null) throw new Error('checksum32 before initChecksum()');
  if (end - start > bulkChecksumBytesMax) {
    const hash = createChecksum32(seed);
    hash.update(bytes, start, end);
    return hash.digest();
  }
  // A plain Uint8Array view: cheaper than Buffer#subarray, which builds a Buffer per call.
  return h32Raw(new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start), seed) >>> 0;
}

export interface Checksum32 {
  /** Adds bytes[start, end) to the hashed range. */
  update(bytes: Uint8Array, start: number, end: number): void;
  /** xxh32 of everything added, as checksum32 of it all in one range gives. */
  digest(): number;
}

/** An xxh32 over a range handed over in pieces; each piece is copied into wasm memory at most
 *  bulkChecksumBytesMax at a time. */
export function createChecksum32(seed = checksumSeed): Checksum32 {
  if (create32 === null) throw new Error('createChecksum32 before initChecksum()');
  const state = create32(seed);
  return {
    update(bytes, start, end) {
      for (let at = start; at < end; at += bulkChecksumBytesMax) {
        state.update(new Uint8Array(bytes.buffer, bytes.byteOffset + at, Math.min(bulkChecksumBytesMax, end - at)));
      }
    },
    digest: () => state.digest() >>> 0,
  };
}

/** Copies bytes[start, end) into the bulk hasher; checksumLoaded(from, to) then hashes
 *  bytes[start + from, start + to). Replaces whatever an earlier call loaded. */
export function loadChecksumRange(bytes: Uint8Array, start: number, end: number): void {
  if (raw === null) throw new Error('loadChecksumRange before initChecksum()');
  const length = end - start;
  if (length < 0 || length > bulkChecksumBytesMax) throw new Error(`loadChecksumRange: ${length} bytes`);
  if (memBytes.length < length || memBytes.buffer !== raw.mem.buffer) {
    if (raw.mem.buffer.byteLength < length) raw.mem.grow(Math.ceil((length - raw.mem.buffer.byteLength) / 65536));
    memBytes = new Uint8Array(raw.mem.buffer);
  }
  memBytes.set(new Uint8Array(bytes.buffer, bytes.byteOffset + start, length), 0);
  loadedBytes = length;
}

/** xxh32 of loaded bytes [from, to) with `seed`. Same synchronous stretch as the load. */
export function checksumLoaded(from: number, to: number, seed: number): number {
  if (raw === null || from < 0 || to > loadedBytes || from > to) throw new Error(`checksumLoaded(${from}, ${to}) of ${loadedBytes} loaded bytes`);
  return raw.xxh32(from, to - from, seed) >>> 0;
}
