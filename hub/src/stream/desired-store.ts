// The hub's current desired state per cluster, as the stream reads it. Replacing the
// whole map (one render) notifies listeners with only the clusters whose state changed.
import type { DesiredState } from '@flotilla/common';
import type { DesiredStateSource } from './types.js';

/** In-memory DesiredStateSource fed by the renderer. */
export class DesiredStateStore implements DesiredStateSource {
  private states = new Map<string, DesiredState>();
  private readonly listeners = new Set<(clusters: string[]) => void>();

  /** The cluster's state, or undefined when it is not in the fleet. */
  get(cluster: string): DesiredState | undefined {
    return this.states.get(cluster);
  }

  /** Every cluster that has a desired state. */
  clusters(): string[] {
    return [...this.states.keys()];
  }

  /** Registers listener for changed clusters; returns the unsubscribe function. */
  subscribe(listener: (clusters: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Replaces all states; returns and announces the clusters that were added, removed or changed. */
  replace(next: ReadonlyMap<string, DesiredState>): string[] {
    const changed: string[] = [];
    for (const [cluster, state] of next) {
      const old = this.states.get(cluster);
      if (!old || old.digest !== state.digest || old.revision !== state.revision)
        changed.push(cluster);
    }
    for (const cluster of this.states.keys()) if (!next.has(cluster)) changed.push(cluster);
    this.states = new Map(next);
    if (changed.length > 0) for (const l of this.listeners) l(changed);
    return changed;
  }
}
