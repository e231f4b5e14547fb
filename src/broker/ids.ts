// UUIDv7 ids (RFC 9562) for jobs and lock tokens: 48-bit unix ms, version 7, a 12-bit counter in
// rand_a, the variant, 62 random bits. Ids are strictly increasing within one generator: inside a
// millisecond the counter steps (seeded randomly below 2^11 to leave room); when it would overflow
// the timestamp borrows the next millisecond. Random bytes come from a pooled node:crypto buffer.
// Synchronous; not shared across processes.

import { randomBytes } from 'node:crypto';

const poolBytes = 4096;
/** ASCII codes of the two hex digits of each byte value, high digit first. */
const hexCodes = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const digits = i.toString(16).padStart(2, '0');
  hexCodes[2 * i] = digits.charCodeAt(0);
  hexCodes[2 * i + 1] = digits.charCodeAt(1);
}
/** Where each of the 16 bytes' two digits go in the 36-character text (dashes at 8, 13, 18, 23). */
const textAt = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const dash = 0x2d;

export class IdGenerator {
  private pool = randomBytes(poolBytes);
  private poolAt = 0;
  private lastMs = -1;
  private counter = 0;
  /** The 16 bytes of the id being built and its 36-character text: reused, since only the
   *  string leaves next(), built by one latin1 decode (a flat string, not 20 concatenations). */
  private readonly bytes = Buffer.alloc(16);
  private readonly text = Buffer.alloc(36, dash);

  constructor(private readonly clock: () => number) {}

  /** Position in `pool` of n fresh random bytes. */
  private random(n: number): number {
    if (this.poolAt + n > poolBytes) {
      this.pool = randomBytes(poolBytes);
      this.poolAt = 0;
    }
    const at = this.poolAt;
    this.poolAt += n;
    return at;
  }

  next(): string {
    let ms = Math.max(Math.floor(this.clock()), 0);
    if (ms <= this.lastMs) {
      ms = this.lastMs;
      this.counter++;
      if (this.counter > 0xfff) {
        ms = this.lastMs + 1;
        this.counter = this.seedCounter();
      }
    } else {
      this.counter = this.seedCounter();
    }
    this.lastMs = ms;
    const b = this.bytes;
    b.writeUIntBE(ms, 0, 6);
    b[6] = 0x70 | (this.counter >> 8);
    b[7] = this.counter & 0xff;
    const at = this.random(8);
    const pool = this.pool;
    for (let i = 0; i < 8; i++) b[8 + i] = pool[at + i] as number; // Buffer#copy would allocate a view
    b[8] = 0x80 | ((b[8] as number) & 0x3f);
    const text = this.text;
    for (let i = 0; i < 16; i++) {
      const byte = b[i] as number;
      const at = textAt[i] as number;
      text[at] = hexCodes[2 * byte] as number;
      text[at + 1] = hexCodes[2 * byte + 1] as number;
    }
    return text.toString('latin1', 0, 36);
  }

  private seedCounter(): number {
    const at = this.random(2);
    return (((this.pool[at] as number) << 8) | (this.pool[at + 1] as number)) & 0x7ff;
  }
}
