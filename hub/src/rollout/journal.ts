// Changes a decision makes in place to maps and records it shares with the committed
// state (a bundle's slots, a rollout's clusters), each with the value before and after.
// Copying those whole per decision cost what the fleet is, not what changed; instead the
// controller decides in place, encodes what it saves, undoes the changes before anything
// else can read the committed state, and redoes them once the save succeeded. Undo and
// redo cost what changed.

type Container = Map<unknown, unknown> | Record<string, unknown>;

/** The in-place changes of one decision, in order. */
export class Journal {
  // Flat: container, key, had before, before, has after, after (fewer objects per change).
  private readonly log: unknown[] = [];
  /** Records whose membership or stages changed: their member index is stale after undo or redo. */
  readonly reshaped = new Set<object>();

  /** `onRecord` is told of every value undo or redo replaces in a record (before → after). */
  constructor(private readonly onRecord?: (r: object, before: unknown, after: unknown) => void) {}

  /** Number of changes logged. */
  get size(): number {
    return this.log.length / 6;
  }

  /** Sets (value defined) or deletes (undefined) a map's entry. */
  setMap<K, V>(m: Map<K, V>, key: K, value: V | undefined): void {
    const had = m.has(key);
    this.log.push(m, key, had, had ? m.get(key) : undefined, value !== undefined, value);
    if (value === undefined) m.delete(key);
    else m.set(key, value);
  }

  /** Sets (value defined) or deletes (undefined) a record's property. */
  setRecord<V>(r: Record<string, V>, key: string, value: V | undefined): void {
    const had = Object.hasOwn(r, key);
    this.log.push(r, key, had, had ? r[key] : undefined, value !== undefined, value);
    if (value === undefined) delete r[key];
    else r[key] = value;
  }

  /** Calls fn with the container and key of every change, in order. */
  forEachChange(fn: (container: object, key: unknown) => void): void {
    const l = this.log;
    for (let i = 0; i < l.length; i += 6) fn(l[i] as object, l[i + 1]);
  }

  /** Puts every container back as it was before the first change (last change first). */
  undo(): void {
    const l = this.log;
    for (let i = l.length - 6; i >= 0; i -= 6)
      this.put(l[i] as Container, l[i + 1], l[i + 2], l[i + 3]);
  }

  /** Applies every change again, in order (after undo). */
  redo(): void {
    const l = this.log;
    for (let i = 0; i < l.length; i += 6) this.put(l[i] as Container, l[i + 1], l[i + 4], l[i + 5]);
  }

  private put(c: Container, key: unknown, present: unknown, value: unknown): void {
    if (c instanceof Map) {
      if (present) c.set(key, value);
      else c.delete(key);
      return;
    }
    const k = key as string;
    this.onRecord?.(c, Object.hasOwn(c, k) ? c[k] : undefined, present ? value : undefined);
    if (present) c[k] = value;
    else delete c[k];
  }
}
