// What each cluster's agent last reported it serves (Kubernetes version, API versions):
// the renderer's per-cluster Helm capabilities. Reports are checked against
// CAPABILITIES_LIMITS at this edge, and equal sets are interned (one object per distinct
// set), so 10,000 clusters on a few Kubernetes versions hold a few lists, and the
// renderer hashes each distinct set once per render.
import { LogFields, capabilitiesDigest, checkCapabilities, errorMessage } from '@flotilla/common';
import type { ClusterCapabilities, Logger } from '@flotilla/common';
import type { CapabilitiesSink } from '../stream/types.js';

/** One cluster's stored report. */
export interface CapabilitiesRecord {
  cluster: string;
  kubeVersion: string;
  apiVersions: readonly string[];
  /** When the agent first reported this content (ISO time). */
  reportedAt: string;
}

interface Entry {
  caps: ClusterCapabilities;
  digest: string;
  reportedAt: string;
}

/** Options of CapabilitiesStore. */
export interface CapabilitiesStoreOptions {
  logger: Logger;
  now?: () => number;
}

/** Reported capabilities per cluster; the stream's CapabilitiesSink. */
export class CapabilitiesStore implements CapabilitiesSink {
  private readonly entries = new Map<string, Entry>();
  /** digest → the one object of that content, with how many clusters use it. */
  private readonly interned = new Map<string, { caps: ClusterCapabilities; users: number }>();
  private readonly listeners = new Set<(clusters: string[]) => void>();
  private readonly dirty = new Set<string>();
  /** Last refusal per cluster, so a repeating bad report is logged once. */
  private readonly refused = new Map<string, string>();
  private view: ReadonlyMap<string, ClusterCapabilities> | undefined;
  private readonly now: () => number;
  private versionValue = 0;

  constructor(private readonly opts: CapabilitiesStoreOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Checks and keeps a cluster's report; true (and listeners hear of it) when it changed something. */
  reported(cluster: string, raw: ClusterCapabilities): boolean {
    let caps: ClusterCapabilities;
    try {
      caps = checkCapabilities(raw, `capabilities of cluster "${cluster}"`);
    } catch (err) {
      const message = errorMessage(err);
      if (this.refused.get(cluster) !== message) {
        this.refused.set(cluster, message);
        this.opts.logger.warn(
          { [LogFields.cluster]: cluster, [LogFields.err]: message },
          'capabilities report refused; rendering with what was known before',
        );
      }
      return false;
    }
    this.refused.delete(cluster);
    const reportedAt = new Date(this.now()).toISOString();
    if (!this.set(cluster, caps, reportedAt)) return false;
    this.dirty.add(cluster);
    this.opts.logger.info(
      {
        [LogFields.cluster]: cluster,
        kubeVersion: caps.kubeVersion,
        apiVersions: caps.apiVersions.length,
      },
      'cluster capabilities changed',
    );
    this.emit([cluster]);
    return true;
  }

  /** Adds stored records for clusters that have not reported since start; returns how many were added. */
  restore(records: readonly CapabilitiesRecord[]): number {
    const added: string[] = [];
    for (const r of records) {
      if (this.entries.has(r.cluster)) continue;
      let caps: ClusterCapabilities;
      try {
        caps = checkCapabilities(r, `stored capabilities of cluster "${r.cluster}"`);
      } catch (err) {
        this.opts.logger.warn(
          { [LogFields.cluster]: r.cluster, [LogFields.err]: errorMessage(err) },
          'stored capabilities skipped',
        );
        continue;
      }
      if (this.set(r.cluster, caps, r.reportedAt)) added.push(r.cluster);
    }
    if (added.length > 0) this.emit(added);
    return added.length;
  }

  /** A cluster's report, or undefined when none is known. */
  get(cluster: string): CapabilitiesRecord | undefined {
    const e = this.entries.get(cluster);
    return e && { cluster, ...e.caps, reportedAt: e.reportedAt };
  }

  /** Every cluster's capabilities (equal sets are one object): the renderer's input. Unchanged until a report changes it. */
  snapshot(): ReadonlyMap<string, ClusterCapabilities> {
    this.view ??= new Map([...this.entries].map(([name, e]) => [name, e.caps]));
    return this.view;
  }

  /** Calls listener with the clusters whose capabilities changed; returns an unsubscribe function. */
  onChange(listener: (clusters: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records changed since the last call, to persist. */
  takeDirty(): CapabilitiesRecord[] {
    const out: CapabilitiesRecord[] = [];
    for (const name of this.dirty) {
      const r = this.get(name);
      if (r) out.push(r);
    }
    this.dirty.clear();
    return out;
  }

  /** Marks records to persist again (their write failed). */
  markDirty(names: readonly string[]): void {
    for (const n of names) if (this.entries.has(n)) this.dirty.add(n);
  }

  /** Increases with every change of a cluster's capabilities: a render records it when it begins. */
  get version(): number {
    return this.versionValue;
  }

  /** Number of distinct capability sets held. */
  get distinctSets(): number {
    return this.interned.size;
  }

  // Keeps caps for cluster (interned); false when the cluster already had this content.
  private set(cluster: string, caps: ClusterCapabilities, reportedAt: string): boolean {
    const digest = capabilitiesDigest(caps);
    const old = this.entries.get(cluster);
    if (old?.digest === digest) return false;
    let shared = this.interned.get(digest);
    if (!shared) {
      shared = { caps, users: 0 };
      this.interned.set(digest, shared);
    }
    shared.users++;
    if (old) this.release(old.digest);
    this.entries.set(cluster, { caps: shared.caps, digest, reportedAt });
    this.view = undefined;
    this.versionValue++;
    return true;
  }

  private release(digest: string): void {
    const shared = this.interned.get(digest);
    if (shared && --shared.users === 0) this.interned.delete(digest);
  }

  private emit(clusters: string[]): void {
    for (const l of this.listeners) l(clusters);
  }
}
