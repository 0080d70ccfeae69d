// Follows the hub's status through its watch stream (GET /api/v1/watch, server-sent
// events of the same cluster views `flotilla status` prints), so a benchmark learns the
// moment status shows a revision everywhere without polling a 1,000-cluster list many
// times a second (which costs the hub more than what it measures).
import { performance } from 'node:perf_hooks';

interface Row {
  state: string;
  appliedRevision: string;
}

type Waiter = { revision: string; n: number; resolve: (at: number) => void };

/** A live view of every cluster's status; open(), until(), close(). */
export class StatusWatch {
  private readonly rows = new Map<string, Row>();
  private readonly waiters = new Set<Waiter>();
  private readonly abort = new AbortController();
  private synced!: () => void;
  private failed: ((e: Error) => void) | undefined;

  private constructor() {}

  /** Opens the stream; resolves once the hub sent its snapshot. */
  static async open(httpUrl: string): Promise<StatusWatch> {
    const w = new StatusWatch();
    const ready = new Promise<void>((resolve, reject) => {
      w.synced = resolve;
      w.failed = reject;
    });
    const res = await fetch(`${httpUrl}/api/v1/watch`, { signal: w.abort.signal });
    if (!res.ok || !res.body) throw new Error(`watch: ${res.status}`);
    void w.read(res.body).catch((err: unknown) => w.failed?.(err as Error));
    await ready;
    return w;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of body) {
      buf += decoder.decode(chunk, { stream: true });
      for (let end = buf.indexOf('\n\n'); end >= 0; end = buf.indexOf('\n\n')) {
        this.event(buf.slice(0, end));
        buf = buf.slice(end + 2);
      }
    }
  }

  private event(block: string): void {
    const type = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (type === 'synced') this.synced();
    if ((type !== 'snapshot' && type !== 'changed') || !data) return;
    const c = JSON.parse(data) as { name: string } & Row;
    this.rows.set(c.name, { state: c.state, appliedRevision: c.appliedRevision });
    const at = performance.timeOrigin + performance.now();
    for (const w of [...this.waiters])
      if (this.count(w.revision) >= w.n) {
        this.waiters.delete(w);
        w.resolve(at);
      }
  }

  /** Clusters Ready at revision now. */
  count(revision: string): number {
    let n = 0;
    for (const r of this.rows.values())
      if (r.state === 'Ready' && r.appliedRevision === revision) n++;
    return n;
  }

  /** Resolves with the wall time (ms) at which n clusters were Ready at revision. */
  until(revision: string, n: number, timeoutMs = 300_000): Promise<number> {
    if (this.count(revision) >= n)
      return Promise.resolve(performance.timeOrigin + performance.now());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `watch: ${this.count(revision)} of ${n} Ready at ${revision.slice(0, 12)} after ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = { revision, n, resolve: (at) => (clearTimeout(timer), resolve(at)) };
      this.waiters.add(waiter);
    });
  }

  /** Closes the stream. */
  close(): void {
    this.abort.abort();
  }
}
