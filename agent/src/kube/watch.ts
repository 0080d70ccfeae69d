// A watch of one kind, restarted forever: list (to get a resourceVersion and the current
// objects), then a streaming GET ?watch=true that yields JSON lines. Bookmarks keep the
// resourceVersion fresh; a 410 Gone (or an ERROR event) relists, and objects that
// vanished while nobody watched are reported as DELETED. Watchers only trigger: what an
// event means is the listener's business.
import type { IncomingMessage } from 'node:http';
import { Backoff, LogFields, errorMessage, objectKey, sleep } from '@flotilla/common';
import type { KubeObject, Logger } from '@flotilla/common';
import { hasStatus } from './errors.js';
import type { ListOptions } from './types.js';

/** What happened to an object. SYNC: it was there when the watch (re)listed. */
export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'SYNC';

/** One event of a watch. */
export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject;
}

/** The part of KubeClient a watcher needs. */
export interface WatchSource {
  listVersioned(
    apiVersion: string,
    kind: string,
    opts?: ListOptions,
  ): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  openWatch(
    apiVersion: string,
    kind: string,
    opts: ListOptions & { resourceVersion: string; timeoutSeconds?: number },
  ): Promise<IncomingMessage>;
}

/** Options of KindWatcher. */
export interface KindWatcherOptions {
  apiVersion: string;
  kind: string;
  /** Only objects matching it, e.g. "flotilla.dev/bundle" (default: all). */
  labelSelector?: string;
  /** Only this namespace (namespaced mode; default: all namespaces). */
  namespace?: string;
  onEvent(ev: WatchEvent): void;
  logger: Logger;
  /** Restart delays after a failure (default 200 .. 10 000 ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** The server ends each watch after this long; it is then resumed (default 300 s). */
  timeoutSeconds?: number;
}

/** A watch expired or was cut: relist. */
class Gone extends Error {}

/** Watches one kind until stop(). */
export class KindWatcher {
  private readonly controller = new AbortController();
  private readonly known = new Set<string>();
  private running: Promise<void> | undefined;
  private resourceVersion = '';
  /** Resolves after the first list was delivered. */
  readonly synced: Promise<void>;
  private markSynced!: () => void;

  constructor(
    private readonly source: WatchSource,
    private readonly opts: KindWatcherOptions,
  ) {
    this.synced = new Promise((r) => (this.markSynced = r));
  }

  /** Starts watching in the background. */
  start(): void {
    this.running ??= this.run();
  }

  /** Stops and waits for the loop to end. */
  async stop(): Promise<void> {
    this.controller.abort();
    await this.running;
  }

  private async run(): Promise<void> {
    const signal = this.controller.signal;
    const backoff = new Backoff({
      initialMs: this.opts.retryInitialMs ?? 200,
      maxMs: this.opts.retryMaxMs ?? 10_000,
    });
    const what = {
      kind: this.opts.kind,
      apiVersion: this.opts.apiVersion,
      ...(this.opts.namespace ? { namespace: this.opts.namespace } : {}),
    };
    while (!signal.aborted) {
      try {
        if (!this.resourceVersion) await this.relist(signal);
        const res = await this.source.openWatch(this.opts.apiVersion, this.opts.kind, {
          labelSelector: this.opts.labelSelector,
          namespace: this.opts.namespace,
          resourceVersion: this.resourceVersion,
          timeoutSeconds: this.opts.timeoutSeconds ?? 300,
          signal,
        });
        backoff.reset();
        await this.consume(res);
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof Gone || hasStatus(err, 410)) {
          this.resourceVersion = '';
          continue;
        }
        const delayMs = backoff.next();
        this.opts.logger.warn(
          { ...what, [LogFields.err]: errorMessage(err), delayMs },
          'watch failed; restarting',
        );
        // After an unknown failure the version may be unusable; a relist is always safe.
        this.resourceVersion = '';
        await sleep(delayMs, signal);
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const { items, resourceVersion } = await this.source.listVersioned(
      this.opts.apiVersion,
      this.opts.kind,
      { labelSelector: this.opts.labelSelector, namespace: this.opts.namespace, signal },
    );
    const seen = new Set<string>();
    for (const object of items) {
      const key = objectKey(object);
      seen.add(key);
      this.known.add(key);
      this.opts.onEvent({ type: 'SYNC', object });
    }
    for (const key of [...this.known]) {
      if (seen.has(key)) continue;
      this.known.delete(key);
      const [, kind, namespace, name] = key.split('/');
      const metadata = namespace ? { name: name ?? '', namespace } : { name: name ?? '' };
      this.opts.onEvent({
        type: 'DELETED',
        object: { apiVersion: this.opts.apiVersion, kind: kind ?? this.opts.kind, metadata },
      });
    }
    this.resourceVersion = resourceVersion;
    this.markSynced();
  }

  private consume(res: IncomingMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      let rest = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        rest += chunk;
        for (let nl = rest.indexOf('\n'); nl >= 0; nl = rest.indexOf('\n')) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          try {
            if (line.trim()) this.line(line);
          } catch (err) {
            res.destroy();
            return reject(err instanceof Error ? err : new Error(String(err)));
          }
        }
      });
      res.on('end', resolve);
      res.on('close', resolve);
      res.on('error', reject);
    });
  }

  private line(line: string): void {
    const ev = JSON.parse(line) as {
      type: string;
      object: KubeObject & { code?: number; message?: string };
    };
    const rv = ev.object?.metadata?.resourceVersion;
    if (ev.type === 'ERROR') {
      if (ev.object.code === 410) throw new Gone('watch expired');
      throw new Error(`watch error: ${ev.object.message ?? JSON.stringify(ev.object)}`);
    }
    if (typeof rv === 'string') this.resourceVersion = rv;
    if (ev.type === 'BOOKMARK') return;
    if (ev.type !== 'ADDED' && ev.type !== 'MODIFIED' && ev.type !== 'DELETED') return;
    const key = objectKey(ev.object);
    if (ev.type === 'DELETED') this.known.delete(key);
    else this.known.add(key);
    this.opts.onEvent({ type: ev.type, object: ev.object });
  }
}
