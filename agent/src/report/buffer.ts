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

  /** Adds an item at the end; drops the oldest (counts it, and returns it) when full. */
  push(item: T): T | undefined {
    const dropped = this.length === this.capacity ? this.dropOldest() : undefined;
    this.items[(this.head + this.length) % this.capacity] = item;
    this.length++;
    return dropped;
  }

  /** Removes the oldest item and counts it as dropped (a bound other than the count was hit). */
  dropOldest(): T | undefined {
    if (this.length === 0) return undefined;
    this.droppedCount++;
    return this.shift();
  }

  /** The items, oldest first (a copy). */
  toArray(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.length; i++)
      out.push(this.items[(this.head + i) % this.capacity] as T);
    return out;
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

  /** Items dropped since creation, and those added with countDropped(). */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Adds drops counted elsewhere (before a restart) to the count. */
  countDropped(n: number): void {
    this.droppedCount += n;
  }
}
