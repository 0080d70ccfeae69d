// Which bundles failed to render on which cluster, and which revision's rendering each
// cluster keeps getting instead: what status needs to say "serving <old>; <new> failed
// to render: file:line: …" instead of Ready.
import type { PreparedBundle } from './bundle.js';
import type { RenderError, RenderFailure } from './types.js';

/**
 * The revisions a cluster's bundle renderings came from: `at` for all of them, except the
 * held bundles listed (one small object per cluster, whatever the number of bundles).
 */
export interface ServedFrom {
  at: string;
  except?: Map<string, string>;
}

/** Revision of the rendering of `bundle` a cluster got ("" when unknown). */
export function servedRevision(s: ServedFrom | undefined, bundle: string): string {
  return s?.except?.get(bundle) ?? s?.at ?? '';
}

function push(map: Map<string, string[]>, key: string, message: string): void {
  const list = map.get(key);
  if (list) list.push(message);
  else map.set(key, [message]);
}

/** Attributes one render's errors to the clusters they keep from a new rendering. */
export class FailureAttribution {
  /** Errors of a bundle as a whole (its bundle.yaml, its files, its kustomize run). */
  private readonly bundleErrors = new Map<string, string[]>();
  /** Errors of a cluster as a whole (its file). */
  private readonly clusterErrors = new Map<string, string[]>();
  private holders: Set<string> | undefined;

  /**
   * `errors` are those found before any cluster is rendered; `previous` is, per cluster,
   * the bundles it got at the last render (whose targets a broken bundle.yaml hides).
   */
  constructor(
    errors: readonly RenderError[],
    private readonly previous: ReadonlyMap<string, ReadonlyMap<string, unknown>>,
  ) {
    for (const e of errors) {
      if (e.bundle !== undefined && e.cluster === undefined)
        push(this.bundleErrors, e.bundle, e.message);
      else if (e.cluster !== undefined && e.bundle === undefined)
        push(this.clusterErrors, e.cluster, e.message);
    }
  }

  /** The failure of a cluster whose file is broken: its whole previous state is kept. */
  brokenCluster(cluster: string, servingRevision: string): RenderFailure {
    const messages = this.clusterErrors.get(cluster) ?? [`cluster "${cluster}" could not be read`];
    return { bundle: '', messages, servingRevision };
  }

  /**
   * Failures among a cluster's held bundles (paused ones are not failures). `own` are the
   * errors found while rendering this cluster; `serving(bundle)` is the revision of the
   * previous rendering it keeps, "" when it gets none.
   */
  heldBundles(
    cluster: string,
    held: Iterable<string>,
    bundles: ReadonlyMap<string, PreparedBundle | undefined>,
    own: readonly RenderError[],
    serving: (bundle: string) => string,
  ): RenderFailure[] {
    const out: RenderFailure[] = [];
    for (const name of held) {
      const b = bundles.get(name);
      if (b?.def.paused) continue;
      // A bundle.yaml too broken to know its targets fails where the bundle was; a bundle
      // nobody had (new, or right after a hub restart) fails everywhere, since it may
      // target any cluster.
      if (!b && !this.previous.get(cluster)?.has(name) && this.heldAnywhere().has(name)) continue;
      const messages = own
        .filter((e) => e.bundle === name || e.conflictsWith === name)
        .map((e) => e.message);
      if (messages.length === 0) messages.push(...(this.bundleErrors.get(name) ?? []));
      if (messages.length === 0) messages.push(`bundle "${name}" could not be rendered`);
      out.push({ bundle: name, messages, servingRevision: serving(name) });
    }
    return out.sort((x, y) => (x.bundle < y.bundle ? -1 : x.bundle > y.bundle ? 1 : 0));
  }

  // Every bundle some cluster got at the last render; computed once, and only when a
  // bundle is broken.
  private heldAnywhere(): Set<string> {
    if (!this.holders) {
      this.holders = new Set();
      for (const bundles of this.previous.values())
        for (const name of bundles.keys()) this.holders.add(name);
    }
    return this.holders;
  }
}
