// Job payloads off the JS heap: the JSON text of every job's data, as UTF-8 bytes in 1 MiB chunks.
//
// A million waiting jobs used to hold a million data strings on the heap. Each one was born in
// V8's young generation and copied twice on its way to the old one, which made the payloads the
// largest share of the garbage collector's work in a replay or a snapshot load. Here they are
// bytes in Buffers the collector never scans or moves; a job keeps only their position (a small
// integer) and its data is decoded again each time it is read.
//
//   chunks   Buffer of chunkBytes, or null once released; a position is chunk * chunkBytes + offset
//   entry    at a position: the payload's UTF-8 length (u16 LE), then its bytes
//   live     bytes still in use per chunk: a chunk whose count drops to zero is released at once
//
// Allocation bumps a pointer through the current chunk and opens a new one (reusing a released
// index) when the next entry does not fit. A chunk with a single long-lived payload left in it
// stays held, so `wasteful()` tells the owner when held bytes exceed twice the live ones (plus
// slack); the owner then moves the payloads out of chunks less than half full (`relocate`), which
// releases those chunks. Positions stay below 2^30, small integers even under pointer
// compression: empty payloads, payloads larger than payloadBytesMax and any beyond 1 GiB of chunks
// are refused (-1) and the caller keeps them as strings.
//
// Pure data; not part of the state image and not observable through it: where a payload lives
// never changes what a job holds.

const chunkShift = 20;
/** Bytes of one chunk. */
export const chunkBytes = 1 << chunkShift;
const chunksMax = 1 << (30 - chunkShift);
/** Larger payloads stay strings: rare, and V8 keeps big strings out of the young generation. */
export const payloadBytesMax = 16 * 1024;
const lengthBytes = 2;
/** Waste tolerated beyond the live bytes before `wasteful()` asks for a compaction. */
const slackBytes = 16 * chunkBytes;

/** Where arenas get their chunks (of chunkBytes) and give back the ones they release, and where
 *  other large blocks about to be written (the columns of cold-jobs.ts) come from. */
export interface ChunkSource {
  take(): Buffer;
  giveBack(chunk: Buffer): void;
  /** `bytes` of zeroed memory that is about to be written from start to end. */
  block(bytes: number): ArrayBuffer | SharedArrayBuffer;
  /** The arenas are about to take chunks for about `bytes` of entries (a restore knows); 0: the
   *  restore is over, and chunks set aside for it and not taken need not be kept. */
  expect(bytes: number): void;
}

const freshChunks: ChunkSource = {
  take: () => Buffer.allocUnsafeSlow(chunkBytes),
  giveBack: () => {},
  block: (bytes) => new ArrayBuffer(bytes),
  expect: () => {},
};

let chunkSource = freshChunks;

/** Sets, for the whole process, where arenas get their chunks from now on (loadState installs
 *  the chunk supply of snapshot/chunk-supply.ts; the default allocates each one). */
export function setChunkSource(source: ChunkSource): void {
  chunkSource = source;
}

/** Tells the process's chunk source that arenas are about to store about `bytes` of entries (0:
 *  no more than usual from now on). */
export function expectPayloadBytes(bytes: number): void {
  chunkSource.expect(bytes);
}

/** Zeroed memory for a large block about to be written, from the process's chunk source. */
export function freshBlock(bytes: number): ArrayBuffer | SharedArrayBuffer {
  return chunkSource.block(bytes);
}

/** Buffer's native slicer and writers (public JS, untyped): no argument coercion per call. */
type Chunk = Buffer & {
  utf8Slice(start: number, end: number): string;
  utf8Write(text: string, offset: number, length: number): number;
  latin1Write(text: string, offset: number, length: number): number;
};

export class PayloadArena {
  private readonly chunks: (Chunk | null)[] = [];
  private readonly live: number[] = [];
  private readonly released: number[] = [];
  private current = -1;
  private used = chunkBytes;
  /** Bytes of the stored entries (payloads and their lengths). */
  liveBytes = 0;
  /** Bytes of the chunks held. */
  heldBytes = 0;

  /** Stores `text`; its position, or -1 when it must stay a string. */
  store(text: string): number {
    // A text too long for the arena in characters is too long in bytes: no need to count them.
    if (text.length > payloadBytesMax) return -1;
    const bytes = Buffer.byteLength(text);
    const at = this.allocate(bytes);
    if (at < 0) return at;
    const chunk = this.chunks[at >>> chunkShift] as Chunk;
    const offset = (at & (chunkBytes - 1)) + lengthBytes;
    // As many bytes as characters: all ASCII, which the Latin-1 writer copies without encoding.
    if (bytes === text.length) chunk.latin1Write(text, offset, bytes);
    else chunk.utf8Write(text, offset, bytes);
    return at;
  }

  /** Stores UTF-8 bytes as they are; their position, or the text when it must stay a string. */
  storeBytes(from: Buffer, start: number, end: number): number | string {
    const at = this.allocate(end - start);
    if (at < 0) return (from as Chunk).utf8Slice(start, end);
    from.copy(this.chunks[at >>> chunkShift] as Chunk, (at & (chunkBytes - 1)) + lengthBytes, start, end);
    return at;
  }

  read(at: number): string {
    const chunk = this.chunks[at >>> chunkShift] as Chunk;
    const offset = at & (chunkBytes - 1);
    return chunk.utf8Slice(offset + lengthBytes, offset + lengthBytes + chunk.readUInt16LE(offset));
  }

  /** The chunk holding the entry at `at`: its bytes are [bytesStart(at), bytesStart(at) + bytesLength(at)). */
  chunkOf(at: number): Buffer {
    return this.chunks[at >>> chunkShift] as Chunk;
  }

  bytesStart(at: number): number {
    return (at & (chunkBytes - 1)) + lengthBytes;
  }

  bytesLength(at: number): number {
    return (this.chunks[at >>> chunkShift] as Chunk).readUInt16LE(at & (chunkBytes - 1));
  }

  free(at: number): void {
    const index = at >>> chunkShift;
    const entry = this.entryBytes(at);
    const left = (this.live[index] as number) - entry;
    this.live[index] = left;
    this.liveBytes -= entry;
    if (left === 0 && index !== this.current) this.release(index);
  }

  /** Held bytes exceed twice the live ones by more than the slack: time to relocate. */
  wasteful(): boolean {
    return this.heldBytes - this.liveBytes > this.liveBytes + slackBytes;
  }

  /** Whether the payload at `at` sits in a chunk worth emptying (less than half of it live). */
  sparse(at: number): boolean {
    const index = at >>> chunkShift;
    return index !== this.current && (this.live[index] as number) < chunkBytes / 2;
  }

  /** Copies the payload at `at` to a fresh position (never a sparse chunk) and frees the old one. */
  relocate(at: number): number {
    const entry = this.entryBytes(at);
    const to = this.allocate(entry - lengthBytes);
    if (to < 0) return at;
    const offset = at & (chunkBytes - 1);
    const from = this.chunks[at >>> chunkShift] as Chunk;
    from.copy(this.chunks[to >>> chunkShift] as Chunk, (to & (chunkBytes - 1)) + lengthBytes, offset + lengthBytes, offset + entry);
    this.free(at);
    return to;
  }

  private entryBytes(at: number): number {
    return lengthBytes + (this.chunks[at >>> chunkShift] as Chunk).readUInt16LE(at & (chunkBytes - 1));
  }

  /** Room for a payload of `bytes` and its length, the length written; -1 when refused. */
  private allocate(bytes: number): number {
    if (!(bytes > 0 && bytes <= payloadBytesMax && Number.isInteger(bytes))) return -1;
    const entry = lengthBytes + bytes;
    if (this.used + entry > chunkBytes && !this.open()) return -1;
    const at = (this.current << chunkShift) + this.used;
    (this.chunks[this.current] as Chunk).writeUInt16LE(bytes, this.used);
    this.used += entry;
    this.live[this.current] = (this.live[this.current] as number) + entry;
    this.liveBytes += entry;
    return at;
  }

  /** Makes a fresh chunk current (the old one is released if nothing in it is live). */
  private open(): boolean {
    const index = this.released.pop() ?? this.chunks.length;
    if (index >= chunksMax) return false;
    const previous = this.current;
    this.chunks[index] = chunkSource.take() as Chunk;
    this.live[index] = 0;
    this.heldBytes += chunkBytes;
    this.current = index;
    this.used = 0;
    if (previous >= 0 && this.live[previous] === 0) this.release(previous);
    return true;
  }

  private release(index: number): void {
    chunkSource.giveBack(this.chunks[index] as Chunk);
    this.chunks[index] = null;
    this.heldBytes -= chunkBytes;
    this.released.push(index);
  }
}
