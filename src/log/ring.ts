// The tail ring: the last `capacity` durable records, decoded (they are the appended records
// themselves, never re-decoded), so live tail readers and recent reads do not touch the disk.
// Invariant: holds exactly the offsets [startOffset, endOffset), consecutive. Synchronous.

export class RecordRing<T extends { offset: number }> {
  private readonly items: Array<T | undefined>;
  private head = 0; // slot of startOffset
  private size = 0;
  endOffset: number;

  constructor(
    private readonly capacity: number,
    endOffset: number,
  ) {
    this.items = new Array<T | undefined>(capacity);
    this.endOffset = endOffset;
  }

  get startOffset(): number {
    return this.endOffset - this.size;
  }

  /** Adds the next records (their offsets must continue endOffset). */
  push(records: readonly T[]): void {
    for (const r of records) {
      if (r.offset !== this.endOffset) throw new Error(`ring: offset ${r.offset} after ${this.endOffset}`);
      this.items[(this.head + this.size) % this.capacity] = r;
      if (this.size < this.capacity) this.size++;
      else this.head = (this.head + 1) % this.capacity;
      this.endOffset++;
    }
  }

  /** Records [from, to) if the ring holds all of them, else null. */
  slice(from: number, to: number): T[] | null {
    if (from < this.startOffset || to > this.endOffset || from > to) return null;
    const out = new Array<T>(to - from);
    for (let o = from; o < to; o++) out[o - from] = this.items[(this.head + (o - this.startOffset)) % this.capacity] as T;
    return out;
  }
}
