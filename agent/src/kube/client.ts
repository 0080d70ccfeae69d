// KubeClient: the KubeApi over raw JSON HTTP, with discovery and bounded retries of
// throttling, server errors and connection failures.
import { Backoff, sleep } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import type { KubeConfigSource } from './kubeconfig.js';
import { KubeApiError, KubeConnectionError, hasStatus } from './errors.js';
import { Discovery, groupVersionPath } from './discovery.js';
import { createKubeHttp } from './http.js';
import type { KubeHttp, KubeHttpRequest, KubeStreamOpen } from './http.js';
import type { IncomingMessage } from 'node:http';
import type {
  ApplyRequestOptions,
  KubeApi,
  ListOptions,
  ObjectRef,
  ResourceInfo,
} from './types.js';

/** The one field manager Flotilla applies with. An invariant: renaming it orphans every field Flotilla owns. */
export const FIELD_MANAGER = 'flotilla';

/** Options of KubeClient. */
export interface KubeClientOptions {
  /** Attempts per request for retryable failures (default 5). */
  maxAttempts?: number;
  /** Retry backoff, first and longest delay in ms (default 200 .. 5 000). */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/** Loads a kubeconfig (see kubeconfig.ts: without importing @kubernetes/client-node unless a plugin needs it). */
export { loadKubeConfig } from './kubeconfig.js';

/** A Kubernetes client that speaks raw JSON; see KubeApi. */
export class KubeClient implements KubeApi {
  private readonly discovery: Discovery;
  private readonly maxAttempts: number;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;

  private constructor(
    private readonly send: KubeHttp,
    private readonly open: KubeStreamOpen,
    private readonly closeHttp: () => void,
    opts: KubeClientOptions,
  ) {
    this.maxAttempts = opts.maxAttempts ?? 5;
    this.retryInitialMs = opts.retryInitialMs ?? 200;
    this.retryMaxMs = opts.retryMaxMs ?? 5_000;
    this.discovery = new Discovery((req) => this.request(req));
  }

  /** Creates a client for the kubeconfig's current context. */
  static async create(kc: KubeConfigSource, opts: KubeClientOptions = {}): Promise<KubeClient> {
    const { send, open, close } = await createKubeHttp(kc);
    return new KubeClient(send, open, close, opts);
  }

  /** Closes pooled connections. */
  close(): void {
    this.closeHttp();
  }

  /** Sends a request, retrying 429, 5xx and connection errors with backoff (bounded). */
  async request(req: KubeHttpRequest): Promise<unknown> {
    const backoff = new Backoff({ initialMs: this.retryInitialMs, maxMs: this.retryMaxMs });
    for (;;) {
      try {
        return await this.send(req);
      } catch (err) {
        const retryable =
          err instanceof KubeConnectionError || (err instanceof KubeApiError && err.retryable);
        if (!retryable || backoff.attempts + 1 >= this.maxAttempts || req.signal?.aborted)
          throw err;
        await sleep(backoff.next(), req.signal);
      }
    }
  }

  resource(apiVersion: string, kind: string, signal?: AbortSignal): Promise<ResourceInfo> {
    return this.discovery.resource(apiVersion, kind, signal);
  }

  namespacedKinds(signal?: AbortSignal): Promise<{ apiVersion: string; kind: string }[]> {
    return this.discovery.namespacedKinds(signal);
  }

  /** Forgets discovery results. */
  invalidateDiscovery(): void {
    this.discovery.invalidate();
  }

  async get(ref: ObjectRef, signal?: AbortSignal): Promise<KubeObject | undefined> {
    const path = await this.objectPath(ref, signal);
    try {
      return (await this.request({ method: 'GET', path, signal })) as KubeObject;
    } catch (err) {
      if (hasStatus(err, 404)) return undefined;
      throw err;
    }
  }

  async apply(obj: KubeObject, opts: ApplyRequestOptions = {}): Promise<KubeObject> {
    const path = await this.objectPath(
      {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        namespace: obj.metadata.namespace,
        name: obj.metadata.name,
      },
      opts.signal,
    );
    const query: Record<string, string | undefined> = {
      fieldManager: FIELD_MANAGER,
      fieldValidation: 'Strict',
      force: opts.force ? 'true' : undefined,
      dryRun: opts.dryRun ? 'All' : undefined,
    };
    // JSON is valid YAML, so the apply-patch content type takes a JSON body.
    return (await this.request({
      method: 'PATCH',
      path,
      query,
      body: obj,
      contentType: 'application/apply-patch+yaml',
      signal: opts.signal,
    })) as KubeObject;
  }

  async delete(ref: ObjectRef, signal?: AbortSignal): Promise<boolean> {
    const path = await this.objectPath(ref, signal);
    try {
      await this.request({
        method: 'DELETE',
        path,
        query: { propagationPolicy: 'Background' },
        signal,
      });
      return true;
    } catch (err) {
      if (hasStatus(err, 404)) return false;
      throw err;
    }
  }

  async list(apiVersion: string, kind: string, opts: ListOptions = {}): Promise<KubeObject[]> {
    const info = await this.resource(apiVersion, kind, opts.signal);
    const ns =
      info.namespaced && opts.namespace ? `/namespaces/${encodeURIComponent(opts.namespace)}` : '';
    const path = `${groupVersionPath(info.group, info.version)}${ns}/${info.plural}`;
    const res = (await this.request({
      method: 'GET',
      path,
      query: { labelSelector: opts.labelSelector },
      signal: opts.signal,
    })) as { items?: KubeObject[] };
    // List items carry no apiVersion/kind; put them back so callers can use them as refs.
    return (res.items ?? []).map((item) => ({ ...item, apiVersion, kind }));
  }

  /** Lists a kind (all namespaces) and returns the items with the list's resourceVersion, the start point of a watch. */
  async listVersioned(
    apiVersion: string,
    kind: string,
    opts: ListOptions = {},
  ): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const path = await this.collectionPath(apiVersion, kind, opts.namespace, opts.signal);
    const res = (await this.request({
      method: 'GET',
      path,
      query: { labelSelector: opts.labelSelector },
      signal: opts.signal,
    })) as {
      items?: KubeObject[];
      metadata?: { resourceVersion?: string };
    };
    return {
      items: (res.items ?? []).map((item) => ({ ...item, apiVersion, kind })),
      resourceVersion: res.metadata?.resourceVersion ?? '',
    };
  }

  /** Opens a watch of a kind from resourceVersion (JSON lines; bookmarks on). The caller reads and closes the stream. */
  async openWatch(
    apiVersion: string,
    kind: string,
    opts: ListOptions & { resourceVersion: string; timeoutSeconds?: number },
  ): Promise<IncomingMessage> {
    const path = await this.collectionPath(apiVersion, kind, opts.namespace, opts.signal);
    const query = {
      watch: 'true',
      allowWatchBookmarks: 'true',
      resourceVersion: opts.resourceVersion,
      labelSelector: opts.labelSelector,
      timeoutSeconds: opts.timeoutSeconds === undefined ? undefined : String(opts.timeoutSeconds),
    };
    return this.open({ method: 'GET', path, query, signal: opts.signal });
  }

  private async collectionPath(
    apiVersion: string,
    kind: string,
    namespace: string | undefined,
    signal?: AbortSignal,
  ): Promise<string> {
    const info = await this.resource(apiVersion, kind, signal);
    const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
    return `${groupVersionPath(info.group, info.version)}${ns}/${info.plural}`;
  }

  private async objectPath(ref: ObjectRef, signal?: AbortSignal): Promise<string> {
    const info = await this.resource(ref.apiVersion, ref.kind, signal);
    const ns = info.namespaced
      ? `/namespaces/${encodeURIComponent(ref.namespace || 'default')}`
      : '';
    return `${groupVersionPath(info.group, info.version)}${ns}/${info.plural}/${encodeURIComponent(ref.name)}`;
  }
}
