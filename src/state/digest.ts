// Canonical text of a StateImage: JSON with object keys sorted at every level, so two images that
// are deep-equal serialize to the same text whatever order their keys were built in. The text is
// produced in chunks of about `chunkChars` and handed to `sink`, because the image of a million
// jobs is larger than the longest string V8 can hold; the hash is taken by the caller
// (src/broker/digest.ts), keeping this module free of node:crypto.

import type { StateImage } from './image.js';

const chunkChars = 64 * 1024;

class ChunkWriter {
  private buffer = '';
  constructor(private readonly sink: (chunk: string) => void) {}

  write(text: string): void {
    this.buffer += text;
    if (this.buffer.length >= chunkChars) this.flush();
  }

  flush(): void {
    if (this.buffer.length > 0) this.sink(this.buffer);
    this.buffer = '';
  }
}

function canonicalInto(value: unknown, out: ChunkWriter): void {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`stateDigest: non-finite number`);
    out.write(JSON.stringify(value) ?? 'null');
    return;
  }
  if (Array.isArray(value)) {
    out.write('[');
    value.forEach((item, i) => {
      if (i > 0) out.write(',');
      canonicalInto(item, out);
    });
    out.write(']');
    return;
  }
  const obj = value as Record<string, unknown>;
  out.write('{');
  let first = true;
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] === undefined) continue;
    out.write(first ? `${JSON.stringify(key)}:` : `,${JSON.stringify(key)}:`);
    first = false;
    canonicalInto(obj[key], out);
  }
  out.write('}');
}

/** Feeds the canonical text of `image` to `sink` in order, in chunks. */
export function stateDigest(image: StateImage, sink: (chunk: string) => void): void {
  const out = new ChunkWriter(sink);
  canonicalInto(image, out);
  out.flush();
}
