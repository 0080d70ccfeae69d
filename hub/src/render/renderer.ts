// The fleet renderer: Git tree → desired state per cluster. Incremental and
// content-addressed: every stage is cached by the digest of its inputs, so a commit that
// changes one bundle re-renders only that bundle, and clusters whose inputs for a bundle
// are equal share one BundleDesiredState object.
import { performance } from 'node:perf_hooks';
import { LogFields, TooLargeError, ValidationError, desiredStateDigest, digestOf } from '@flotilla/common';
import type { DesiredState, Logger } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { assembleCluster } from './assemble.js';
import type { Candidate } from './assemble.js';
import { inputDigest, manifestPaths, prepareBundle, renderBundle } from './bundle.js';
import type { PreparedBundle, RenderedBundle } from './bundle.js';
import { scanLayout } from './layout.js';
import type { RepoLayout } from './layout.js';
import { matchTarget, parseBundle, parseCluster } from './spec.js';
import type { BundleDef, ClusterDef } from './spec.js';
import { resolveVariable } from './vars.js';
import type { VarScope } from './vars.js';
import { DEFAULT_MAX_CLUSTER_BYTES } from './types.js';
import type { RenderError, RenderOptions, RenderResult, RenderStats } from './types.js';

type Cached<T> = T | ValidationError;

/** Keeps caches between renders; call render() with each new snapshot. Not reentrant. */
export class FleetRenderer {
  private readonly maxClusterBytes: number;
  private readonly log: Logger | undefined;
  // Each cache keeps only what the last render used: memory follows the repo, not history.
  private clusterDefs = new Map<string, Cached<ClusterDef>>();
  private bundleDefs = new Map<string, Cached<BundleDef>>();
  private prepared = new Map<string, Cached<PreparedBundle>>();
  private rendered = new Map<string, Cached<RenderedBundle>>();
  /** Per cluster, the rendering of each bundle it got last time: the fallback when a bundle fails. */
  private previous = new Map<string, Map<string, RenderedBundle>>();
  private lastStates = new Map<string, DesiredState>();

  constructor(opts: RenderOptions & { logger?: Logger } = {}) {
    this.maxClusterBytes = opts.maxClusterBytes ?? DEFAULT_MAX_CLUSTER_BYTES;
    this.log = opts.logger;
  }

  /** Renders every cluster's desired state from a tree at a revision. Never throws on bad input. */
  render(tree: RepoTree, revision: string): RenderResult {
    const t0 = performance.now();
    const stats: RenderStats = { bundleRenders: 0, bundleCacheHits: 0, bundlesPrepared: 0, durationMs: 0 };
    const layout = scanLayout(tree);
    const errors = [...layout.errors];
    const run = new RenderRun(this, tree, stats, errors);
    const clusters = run.loadClusters(layout);
    const bundles = run.loadBundles(layout);
    const out: RenderResult = {
      revision,
      clusters: new Map(),
      errors,
      held: new Map(),
      labels: new Map([...clusters].map(([name, def]) => [name, { ...def.labels }])),
      pausedClusters: [],
      brokenClusters: [],
      stats,
    };
    const nextPrevious = new Map<string, Map<string, RenderedBundle>>();
    const names = [...new Set([...clusters.keys(), ...layout.brokenClusters])].sort();
    for (const name of names) {
      const def = clusters.get(name);
      if (!def || def.paused) {
        (def ? out.pausedClusters : out.brokenClusters).push(name);
        this.carryOver(name, out, nextPrevious);
        continue;
      }
      this.renderCluster(run, def, bundles, out, nextPrevious);
    }
    this.clusterDefs = run.used.clusterDefs;
    this.bundleDefs = run.used.bundleDefs;
    this.prepared = run.used.prepared;
    this.rendered = run.used.rendered;
    this.previous = nextPrevious;
    this.lastStates = new Map(out.clusters);
    stats.durationMs = Math.round(performance.now() - t0);
    this.log?.info(
      { [LogFields.revision]: revision, clusters: out.clusters.size, errors: errors.length, ...stats },
      'rendered fleet',
    );
    return out;
  }

  private carryOver(name: string, out: RenderResult, nextPrevious: Map<string, Map<string, RenderedBundle>>): void {
    const last = this.lastStates.get(name);
    if (last) out.clusters.set(name, last);
    const prev = this.previous.get(name);
    if (prev) nextPrevious.set(name, prev);
  }

  private renderCluster(
    run: RenderRun,
    def: ClusterDef,
    bundles: Map<string, PreparedBundle | undefined>,
    out: RenderResult,
    nextPrevious: Map<string, Map<string, RenderedBundle>>,
  ): void {
    const prev = this.previous.get(def.name);
    const candidates: Candidate[] = [];
    for (const [name, b] of bundles) {
      const previous = prev?.get(name);
      if (!b || b.def.paused) {
        candidates.push({ bundle: name, fresh: undefined, previous });
        continue;
      }
      const target = matchTarget(b.def, def);
      if (!target || target.doNotDeploy) continue;
      const scope: VarScope = { clusterName: def.name, labels: def.labels, vars: { ...def.vars, ...target.vars } };
      const fresh = run.renderFor(b, scope, target.namespace ?? b.def.namespace, def.name);
      candidates.push({ bundle: name, fresh, previous });
    }
    const asm = assembleCluster(def.name, candidates);
    out.errors.push(...asm.errors);
    const bytes = asm.bundles.reduce((n, r) => n + r.bytes, 0);
    if (asm.held.size > 0) out.held.set(def.name, [...asm.held].sort());
    if (bytes > this.maxClusterBytes) {
      const err = new TooLargeError(`desired state of cluster "${def.name}"`, bytes, this.maxClusterBytes);
      out.errors.push({ cluster: def.name, message: err.message });
      out.held.set(def.name, candidates.map((c) => c.bundle).sort());
      this.carryOver(def.name, out, nextPrevious);
      return;
    }
    const states = asm.bundles.map((r) => r.state);
    // Held bundles without a rendering here must not be pruned by the agent.
    const rendered = new Set(states.map((s) => s.name));
    const held = [...asm.held].filter((b) => !rendered.has(b)).sort();
    out.clusters.set(def.name, {
      cluster: def.name,
      revision: out.revision,
      digest: desiredStateDigest(def.name, states, held),
      bundles: states,
      ...(held.length > 0 ? { held } : {}),
    });
    nextPrevious.set(def.name, new Map(asm.bundles.map((r) => [r.state.name, r])));
  }

  /** Caches of the previous render; internal, read by RenderRun. */
  caches(): {
    clusterDefs: ReadonlyMap<string, Cached<ClusterDef>>;
    bundleDefs: ReadonlyMap<string, Cached<BundleDef>>;
    prepared: ReadonlyMap<string, Cached<PreparedBundle>>;
    rendered: ReadonlyMap<string, Cached<RenderedBundle>>;
  } {
    return { clusterDefs: this.clusterDefs, bundleDefs: this.bundleDefs, prepared: this.prepared, rendered: this.rendered };
  }
}

/** One render's work: reads the previous caches, records what it used for the next. */
class RenderRun {
  readonly used = {
    clusterDefs: new Map<string, Cached<ClusterDef>>(),
    bundleDefs: new Map<string, Cached<BundleDef>>(),
    prepared: new Map<string, Cached<PreparedBundle>>(),
    rendered: new Map<string, Cached<RenderedBundle>>(),
  };
  private readonly old: ReturnType<FleetRenderer['caches']>;

  constructor(
    renderer: FleetRenderer,
    private readonly tree: RepoTree,
    private readonly stats: RenderStats,
    private readonly errors: RenderError[],
  ) {
    this.old = renderer.caches();
  }

  private fileDigest(path: string): string {
    return digestOf(this.tree.read(path) as Buffer);
  }

  /** Parses cluster files (cached by content); broken ones are added to layout.brokenClusters. */
  loadClusters(layout: RepoLayout): Map<string, ClusterDef> {
    const out = new Map<string, ClusterDef>();
    for (const [name, file] of layout.clusters) {
      if (layout.brokenClusters.has(name)) continue;
      const key = `${file}\0${this.fileDigest(file)}`;
      const def = this.cached(this.old.clusterDefs, this.used.clusterDefs, key, () =>
        parseCluster((this.tree.read(file) as Buffer).toString('utf8'), file, name),
      );
      if (def instanceof ValidationError) {
        this.errors.push(toRenderError(def, { cluster: name }));
        layout.brokenClusters.add(name);
      } else {
        out.set(name, def);
      }
    }
    return out;
  }

  /** Bundle name → prepared version, or undefined when it is broken (error recorded). Sorted by name. */
  loadBundles(layout: RepoLayout): Map<string, PreparedBundle | undefined> {
    const out = new Map<string, PreparedBundle | undefined>();
    const names = [...new Set([...layout.bundles.keys(), ...layout.brokenBundles])].sort();
    for (const name of names) {
      const file = layout.bundles.get(name);
      if (!file || layout.brokenBundles.has(name)) {
        out.set(name, undefined);
        continue;
      }
      const p = this.prepare(name, file);
      if (p instanceof ValidationError) this.errors.push(toRenderError(p, { bundle: name }));
      out.set(name, p instanceof ValidationError ? undefined : p);
    }
    return out;
  }

  private prepare(name: string, file: string): Cached<PreparedBundle> {
    const fileDigest = this.fileDigest(file);
    const def = this.cached(this.old.bundleDefs, this.used.bundleDefs, `${file}\0${fileDigest}`, () =>
      parseBundle((this.tree.read(file) as Buffer).toString('utf8'), file, name),
    );
    if (def instanceof ValidationError) return def;
    const paths = manifestPaths(this.tree, def);
    const digest = inputDigest(fileDigest, paths.map((path) => ({ path, digest: this.fileDigest(path) })));
    return this.cached(this.old.prepared, this.used.prepared, digest, () => {
      this.stats.bundlesPrepared++;
      return prepareBundle(this.tree, def, digest, paths);
    });
  }

  /** The bundle rendered for these inputs, from the content-addressed cache when possible. */
  renderFor(b: PreparedBundle, scope: VarScope, namespace: string | undefined, cluster: string): RenderedBundle | undefined {
    const values = b.refs.map((ref) => {
      const r = resolveVariable(ref, scope);
      return 'value' in r ? `=${r.value}` : `!${r.problem}`;
    });
    const key = JSON.stringify([b.inputDigest, namespace ?? null, values]);
    const hit = this.used.rendered.get(key) ?? this.old.rendered.get(key);
    let r: Cached<RenderedBundle>;
    if (hit) {
      this.stats.bundleCacheHits++;
      r = hit;
      this.used.rendered.set(key, hit);
    } else {
      this.stats.bundleRenders++;
      r = this.cached(this.old.rendered, this.used.rendered, key, () => renderBundle(b, scope, namespace));
    }
    if (r instanceof ValidationError) {
      this.errors.push(toRenderError(r, { bundle: b.def.name, cluster }));
      return undefined;
    }
    return r;
  }

  private cached<T>(
    old: ReadonlyMap<string, Cached<T>>,
    used: Map<string, Cached<T>>,
    key: string,
    make: () => T,
  ): Cached<T> {
    let v = used.get(key) ?? old.get(key);
    if (v === undefined) {
      try {
        v = make();
      } catch (err) {
        if (!(err instanceof ValidationError)) throw err;
        v = err;
      }
    }
    used.set(key, v);
    return v;
  }
}

function toRenderError(err: ValidationError, ctx: { bundle?: string; cluster?: string }): RenderError {
  return {
    ...ctx,
    ...(err.file !== undefined ? { file: err.file } : {}),
    ...(err.line !== undefined ? { line: err.line } : {}),
    message: err.message,
  };
}

/** Renders once with a fresh renderer (no caches kept): for the CLI and tests. */
export function renderFleet(tree: RepoTree, revision: string, opts: RenderOptions = {}): RenderResult {
  return new FleetRenderer(opts).render(tree, revision);
}
