// UUIDv7 ids (RFC 9562) for jobs and lock tokens: 48-bit unix ms, version 7, a 12-bit counter in
// rand_a, the variant, 62 random bits. Ids are strictly increasing within one generator: inside a
// millisecond the counter steps (seeded randomly below 2^11 to leave room); when it would overflow
// the timestamp borrows the next millisecond. Random bytes come from a pooled node:crypto buffer.
// Synchronous; not shared across processes.

import { randomBytes } from 'node:crypto';

const poolBytes = 4096;
const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export class IdGenerator {
  private pool = randomBytes(poolBytes);
  private poolAt = 0;
  private lastMs = -1;
  private counter = 0;
  /** The 16 bytes of the id being built: reused, since only the string leaves next(). */
  private readonly bytes = Buffer.alloc(16);

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
    this.pool.copy(b, 8, at, at + 8);
    b[8] = 0x80 | ((b[8] as number) & 0x3f);
    let s = '';
    for (let i = 0; i < 16; i++) {
      if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
      s += hex[b[i] as number];
    }
    return s;
  }

  private seedCounter(): number {
    const at = this.random(2);
    return (((this.pool[at] as number) << 8) | (this.pool[at + 1] as number)) & 0x7ff;
  }
}
