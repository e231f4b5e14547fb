// The tail ring: the most recent durable records, decoded (they are the appended records
// themselves, never re-decoded), so live tail readers and recent reads do not touch the disk.
// Bounded twice: at most `capacity` records and at most `budgetBytes` of their encoded frames,
// whichever binds first. A job's data can be 512 KiB, so a count alone would let a run of large
// jobs pin gigabytes of heap after the jobs themselves are gone; the newest record always stays.
// Invariant: holds exactly the offsets [startOffset, endOffset), consecutive; an evicted slot
// holds no reference. Synchronous.

export class RecordRing<T extends { offset: number }> {
  private readonly items: Array<T | undefined>;
  /** Encoded size of the record in the same slot. */
  private readonly sizes: Float64Array;
  private head = 0; // slot of startOffset
  private size = 0;
  /** Sum of the held records' sizes. */
  bytes = 0;
  endOffset: number;

  constructor(
    private readonly capacity: number,
    private readonly budgetBytes: number,
    endOffset: number,
  ) {
    if (!(capacity >= 1) || !(budgetBytes >= 1)) throw new RangeError(`ring: capacity ${capacity}, budget ${budgetBytes}`);
    this.items = new Array<T | undefined>(capacity);
    this.sizes = new Float64Array(capacity);
    this.endOffset = endOffset;
  }

  get startOffset(): number {
    return this.endOffset - this.size;
  }

  /** Records held. */
  get count(): number {
    return this.size;
  }

  /** Adds the next records (their offsets must continue endOffset), `sizes[i]` the encoded size of
   *  `records[i]`, evicting the oldest beyond the capacity or the byte budget. */
  push(records: readonly T[], sizes: readonly number[]): void {
    if (sizes.length !== records.length) throw new Error(`ring: ${records.length} records, ${sizes.length} sizes`);
    for (let i = 0; i < records.length; i++) {
      const r = records[i] as T;
      if (r.offset !== this.endOffset) throw new Error(`ring: offset ${r.offset} after ${this.endOffset}`);
      if (this.size === this.capacity) this.dropOldest();
      const slot = (this.head + this.size) % this.capacity;
      const bytes = sizes[i] as number;
      this.items[slot] = r;
      this.sizes[slot] = bytes;
      this.size++;
      this.bytes += bytes;
      this.endOffset++;
      while (this.bytes > this.budgetBytes && this.size > 1) this.dropOldest();
    }
  }

  private dropOldest(): void {
    this.items[this.head] = undefined;
    this.bytes -= this.sizes[this.head] as number;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
  }

  /** Records [from, to) if the ring holds all of them, else null. */
  slice(from: number, to: number): T[] | null {
    if (from < this.startOffset || to > this.endOffset || from > to) return null;
    const out = new Array<T>(to - from);
    for (let o = from; o < to; o++) out[o - from] = this.items[(this.head + (o - this.startOffset)) % this.capacity] as T;
    return out;
  }
}
