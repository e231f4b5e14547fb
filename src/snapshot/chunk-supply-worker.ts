// Worker-thread entry of the chunk supply (chunk-supply.ts): writes one word in every page of
// each chunk it is sent, with a compare-and-swap of 0 to 0, so the page is mapped and nothing the
// main thread wrote there first changes. Says 'paged' after each batch.

import { parentPort } from 'node:worker_threads';

const pageWords = 4096 / 4;

parentPort?.on('message', (batch: SharedArrayBuffer[]) => {
  for (const memory of batch) {
    const words = new Int32Array(memory);
    for (let i = 0; i < words.length; i += pageWords) Atomics.compareExchange(words, i, 0, 0);
  }
  parentPort?.postMessage('paged');
});
