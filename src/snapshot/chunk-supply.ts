// Memory for the payload arenas (state/payloads.ts), written once by a helper thread before use.
//
// The first write to each 4 KiB page of fresh memory is a page fault, and the thread that makes
// it pays for it: about 3.5 ms per MiB on the 2-vCPU VM of our benchmarks, some 350 ms of a cold
// start with a million jobs (100 MB of payloads), all of it on the main thread. So once a process
// has taken a few chunks (a small state never starts the helper), the supply keeps up to
// aheadChunks chunks in reserve and hands each new batch to a worker thread, which writes every
// page of them first; the main thread then writes pages that are already mapped. Chunks are
// SharedArrayBuffers so that both threads see the same memory. The helper writes with
// Atomics.compareExchange(page, 0 → 0): a byte the main thread has written already is left as it
// is, so the main thread may use a chunk before the helper reaches it. Chunks an arena releases
// come back to the reserve while it is short, faulted in already.
//
// A restore also tells the supply how much it is about to store (expect), and all of those
// chunks go to the helper at once; and it asks for the other large blocks it will fill (block: the
// cold rows' columns, the job index's slots), which the helper pages in the same way.
//
// If the helper cannot start or fails, chunks are simply not written ahead; nothing else changes.
// loadState installs the supply (process-wide, like the job tables' seed), so every process that
// loads a state uses it: the server, the snapshot process, the offline tools.

import { Worker } from 'node:worker_threads';
import { chunkBytes, setChunkSource } from '../state/payloads.js';

/** Chunks taken by the process before the helper starts. */
const takenBeforeHelper = 4;
/** Chunks kept in reserve once the helper runs. */
const aheadChunks = 16;

const workerUrl = new URL('./chunk-supply-worker.js', import.meta.url);

const reserve: Buffer[] = [];
let taken = 0;
let helper: Worker | null = null;
let helperFailed = false;
let batchesPaged = 0;

/** Batches of chunks the helper has paged in so far in this process. */
export function chunkBatchesPaged(): number {
  return batchesPaged;
}

/** Makes every payload arena of this process take its chunks from the supply. */
export function installChunkSupply(): void {
  setChunkSource({ take: takeChunk, giveBack: giveBackChunk, block: pagedBlock, expect: expectBytes });
}

/** Chunks in reserve beyond aheadChunks because a restore announced them (expectBytes). */
let expected = 0;

/** A restore is about to fill arenas with about `bytes`: the chunks for all of it are made now and
 *  paged in by the helper from the start, in batches of aheadChunks, rather than sixteen at a time
 *  once the arenas are taking them (the helper then lagged behind and the main thread met the
 *  faults itself). */
function expectBytes(bytes: number): void {
  if (bytes === 0) {
    if (reserve.length > aheadChunks) reserve.length = aheadChunks;
    expected = 0;
    return;
  }
  const chunks = Math.ceil(bytes / chunkBytes) - reserve.length;
  if (chunks <= 0 || helperFailed) return;
  for (let done = 0; done < chunks; done += aheadChunks) {
    const batch: SharedArrayBuffer[] = [];
    for (let i = done; i < Math.min(chunks, done + aheadChunks); i++) batch.push(new SharedArrayBuffer(chunkBytes));
    if (!page(batch)) return;
    for (const memory of batch) reserve.push(Buffer.from(memory));
  }
  expected = Math.max(0, reserve.length - aheadChunks);
}

/** Blocks smaller than this are written by their user straight away: not worth the helper. */
const blockBytesMin = 2 * chunkBytes;

/** A large block (the columns of a restore's cold rows), paged in by the helper like a chunk. */
function pagedBlock(bytes: number): ArrayBuffer | SharedArrayBuffer {
  if (bytes < blockBytesMin || helperFailed) return new ArrayBuffer(bytes);
  const memory = new SharedArrayBuffer(bytes);
  page([memory]);
  return memory;
}

function takeChunk(): Buffer {
  taken++;
  if (expected > 0) expected--;
  else if (taken > takenBeforeHelper && reserve.length < aheadChunks / 2) refill();
  return reserve.shift() ?? Buffer.from(new SharedArrayBuffer(chunkBytes));
}

/** A chunk an arena no longer uses (nothing in it is live). */
function giveBackChunk(chunk: Buffer): void {
  if (reserve.length < aheadChunks) reserve.push(chunk);
}

function refill(): void {
  if (helperFailed) return;
  const batch: SharedArrayBuffer[] = [];
  while (reserve.length + batch.length < aheadChunks) batch.push(new SharedArrayBuffer(chunkBytes));
  page(batch);
  for (const memory of batch) reserve.push(Buffer.from(memory));
}

/** Hands memory to the helper to page in; false when the helper cannot run. */
function page(batch: SharedArrayBuffer[]): boolean {
  try {
    helper ??= startHelper();
    helper.postMessage(batch);
    return true;
  } catch {
    helperFailed = true;
    return false;
  }
}

function startHelper(): Worker {
  const worker = new Worker(workerUrl);
  worker.on('message', () => batchesPaged++);
  // After the listener, which refs the worker: the helper never keeps a process alive.
  worker.unref();
  worker.once('error', () => {
    helperFailed = true;
    helper = null;
  });
  return worker;
}
