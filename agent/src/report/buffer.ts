// Events wait here while NATS or the stream is unavailable. Bounded so an agent cut off
// for days cannot run out of memory; when full the oldest event goes, and the drops are
// counted and logged, never silent.

/** A FIFO of at most `capacity` items that drops the oldest when full. */
export class DropOldestBuffer<T> {
  private readonly items: (T | undefined)[];
  private head = 0;
  private length = 0;
  private droppedCount = 0;

  /** capacity: the most items held (default 10 000). */
  constructor(readonly capacity = 10_000) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`buffer capacity must be a positive integer, got ${capacity}`);
    this.items = new Array<T | undefined>(capacity);
  }

  /** Adds an item at the end; drops the oldest (and counts it) when full. */
  push(item: T): void {
    if (this.length === this.capacity) {
      this.head = (this.head + 1) % this.capacity;
      this.length--;
      this.droppedCount++;
    }
    this.items[(this.head + this.length) % this.capacity] = item;
    this.length++;
  }

  /** The oldest item, not removed. */
  peek(): T | undefined {
    return this.length === 0 ? undefined : this.items[this.head];
  }

  /** Removes and returns the oldest item. */
  shift(): T | undefined {
    if (this.length === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.length--;
    return item;
  }

  /** Items held. */
  get size(): number {
    return this.length;
  }

  /** Items dropped since creation. */
  get dropped(): number {
    return this.droppedCount;
  }
}
