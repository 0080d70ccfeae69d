// The charts from repositories and registries a source's rendered revision uses, as the
// sources API shows them: per bundle and resolved version, how many clusters get it.
// Computed once per render, not per request.
import type { BundleChart, DesiredState } from '@flotilla/common';
import type { SourceChart } from './types.js';

/** Entries kept per source (100): a fleet rarely has more remote charts in use. */
export const MAX_SOURCE_CHARTS = 100;

/** The remote charts in the desired states, sorted by bundle then version. */
export function sourceCharts(states: ReadonlyMap<string, DesiredState>): SourceChart[] {
  const byKey = new Map<string, SourceChart>();
  // Clusters share bundle objects (one per digest): look at each bundle object once per cluster.
  for (const state of states.values()) {
    for (const b of state.bundles) {
      const c: BundleChart | undefined = b.chart;
      if (!c) continue;
      const key = `${b.name}\0${c.repo}\0${c.name}\0${c.version}\0${c.digest}`;
      const entry = byKey.get(key);
      if (entry) entry.clusters++;
      else byKey.set(key, { bundle: b.name, ...c, clusters: 1 });
    }
  }
  return [...byKey.values()]
    .sort((a, b) =>
      a.bundle !== b.bundle ? (a.bundle < b.bundle ? -1 : 1) : a.version < b.version ? -1 : 1,
    )
    .slice(0, MAX_SOURCE_CHARTS);
}

/** A bundle whose chart versions changed between two renderings. */
export interface ChartChange {
  bundle: string;
  chart: string;
  /** Versions before and after, comma separated ("" when it had none). */
  from: string;
  to: string;
}

/** Bundles whose remote chart versions differ between two lists of sourceCharts. */
export function chartChanges(
  before: readonly SourceChart[],
  after: readonly SourceChart[],
): ChartChange[] {
  const versions = (list: readonly SourceChart[]) => {
    const m = new Map<string, { chart: string; versions: Set<string> }>();
    for (const c of list) {
      const e = m.get(c.bundle) ?? { chart: c.name, versions: new Set<string>() };
      e.versions.add(c.version);
      m.set(c.bundle, e);
    }
    return m;
  };
  const [old, now] = [versions(before), versions(after)];
  const out: ChartChange[] = [];
  for (const [bundle, n] of now) {
    const from = [...(old.get(bundle)?.versions ?? [])].sort().join(', ');
    const to = [...n.versions].sort().join(', ');
    if (from !== to) out.push({ bundle, chart: n.chart, from, to });
  }
  return out;
}
