// One render's work over a tree: loads clusters, groups and bundles, runs kustomize and
// helm where needed, renders bundles per cluster inputs. Reads the renderer's caches
// from the previous render and records what it used, so the next render keeps only that.
import { ValidationError, digestOf, errorMessage } from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { inputDigest, manifestPaths, prepareBundle, renderBundle } from './bundle.js';
import type { PreparedBundle, RenderedBundle } from './bundle.js';
import type { RepoLayout } from './layout.js';
import type { RenderLimits } from './limits.js';
import { matchTarget, parseBundle, parseCluster, parseClusterGroup } from './spec.js';
import type { BundleDef, ClusterDef, ClusterGroupDef, TargetDef } from './spec.js';
import { OverlayTree, sopsFormat } from './sops.js';
import type { SecretDecrypter } from './sops.js';
import { ChartFetches } from './chart-fetches.js';
import type { ChartFetcher } from './charts/resolver.js';
import { helmInvocation, helmKey, prepareHelm, prepareKustomize } from './tool-sources.js';
import type { FetchedCharts, HelmInvocation } from './tool-sources.js';
import type { ToolRunner } from './tools.js';
import { isTransientRenderError } from './remote/client.js';
import { resolveVariable } from './vars.js';
import { stageGroups } from './rollout-spec.js';
import type { VarScope } from './vars.js';
import type { RenderError, RenderStats } from './types.js';

/** A cached value, or the validation error making it failed. */
export type Cached<T> = T | ValidationError;

/** The caches a render reads: what the previous render used. */
export type RenderCaches = {
  readonly [K in keyof RenderRun['used']]: ReadonlyMap<
    string,
    RenderRun['used'][K] extends Map<string, infer V> ? V : never
  >;
};

/** One render's work: reads the previous caches, records what it used for the next. */
export class RenderRun {
  readonly used = {
    clusterDefs: new Map<string, Cached<ClusterDef>>(),
    bundleDefs: new Map<string, Cached<BundleDef>>(),
    groupDefs: new Map<string, Cached<ClusterGroupDef>>(),
    prepared: new Map<string, Cached<PreparedBundle>>(),
    helm: new Map<string, Cached<PreparedBundle>>(),
    rendered: new Map<string, Cached<RenderedBundle>>(),
    /** Plaintext of SOPS-encrypted files, per format and ciphertext digest. */
    decrypted: new Map<string, Cached<Buffer>>(),
  };
  /** True once a helm run needed a chart from a repository or registry. */
  usesChartRepositories = false;
  /** helm output key (or the error computing it) per cluster\0bundle, for this run. */
  private readonly helmFor = new Map<string, string | ValidationError>();
  private readonly old: RenderCaches;

  constructor(
    caches: RenderCaches,
    private readonly tree: RepoTree,
    private readonly stats: RenderStats,
    private readonly errors: RenderError[],
    private readonly tools: ToolRunner,
    private readonly limits: RenderLimits,
    /** The capabilities a cluster's Helm bundles render with (see capabilities.ts). */
    private readonly capabilitiesOf: (c: ClusterDef) => ClusterCapabilities,
    private readonly secrets?: SecretDecrypter,
    /** Fetches charts from repositories and registries (none: such bundles fail). */
    private readonly charts?: ChartFetcher,
  ) {
    this.old = caches;
  }

  /**
   * The tree with the SOPS-encrypted files among `paths` decrypted (each once per
   * content, cached like the other stages); throws the first file's ValidationError.
   */
  private async plainView(paths: readonly string[]): Promise<RepoTree> {
    const plain = new Map<string, Buffer>();
    await Promise.all(
      paths.map(async (path) => {
        const bytes = this.tree.read(path) as Buffer;
        const format = sopsFormat(path, bytes);
        if (!format) return;
        const key = `${format}\0${digestOf(bytes)}`;
        const v = await this.cachedAsync(this.old.decrypted, this.used.decrypted, key, path, () => {
          if (!this.secrets)
            throw new ValidationError('cannot decrypt this SOPS-encrypted file: no decrypter', {
              file: path,
            });
          this.stats.decryptions++;
          return this.secrets.decrypt(path, bytes, format);
        });
        if (v instanceof ValidationError) throw v;
        plain.set(path, v);
      }),
    );
    return plain.size === 0 ? this.tree : new OverlayTree(this.tree, plain);
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
      const def = this.cached(this.old.clusterDefs, this.used.clusterDefs, key, file, () =>
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

  /** Parses cluster group files (cached by content); broken ones are left out with an error. */
  loadGroups(layout: RepoLayout): Map<string, ClusterGroupDef> {
    const out = new Map<string, ClusterGroupDef>();
    for (const [name, file] of layout.groups) {
      if (layout.brokenGroups.has(name)) continue;
      const key = `${file}\0${this.fileDigest(file)}`;
      const def = this.cached(this.old.groupDefs, this.used.groupDefs, key, file, () =>
        parseClusterGroup((this.tree.read(file) as Buffer).toString('utf8'), file, name),
      );
      if (def instanceof ValidationError) {
        this.errors.push(toRenderError(def, {}));
        layout.brokenGroups.add(name);
      } else {
        out.set(name, def);
      }
    }
    return out;
  }

  /**
   * Bundle name → prepared version, or undefined when it is broken (error recorded).
   * Sorted by name. With `only`, a Kustomize bundle none of those clusters gets is not
   * built (no kustomize needed to render one cluster that does not use it).
   */
  async loadBundles(
    layout: RepoLayout,
    groups: ReadonlyMap<string, ClusterGroupDef>,
    only?: ReadonlyMap<string, ClusterDef>,
  ): Promise<Map<string, PreparedBundle | undefined>> {
    const names = [...new Set([...layout.bundles.keys(), ...layout.brokenBundles])].sort();
    const prepared = await Promise.all(
      names.map(async (name) => {
        const file = layout.bundles.get(name);
        if (!file || layout.brokenBundles.has(name)) return undefined;
        const p = await this.prepare(name, file, groups, only);
        if (!(p instanceof ValidationError)) return p;
        this.errors.push(toRenderError(p, { bundle: name }));
        return undefined;
      }),
    );
    return new Map(names.map((name, i) => [name, prepared[i]]));
  }

  private async prepare(
    name: string,
    file: string,
    groups: ReadonlyMap<string, ClusterGroupDef>,
    only: ReadonlyMap<string, ClusterDef> | undefined,
  ): Promise<Cached<PreparedBundle>> {
    const fileDigest = this.fileDigest(file);
    const def = this.cached(
      this.old.bundleDefs,
      this.used.bundleDefs,
      `${file}\0${fileDigest}`,
      file,
      () => parseBundle((this.tree.read(file) as Buffer).toString('utf8'), file, name),
    );
    if (def instanceof ValidationError) return def;
    const missing = def.targets.find(
      (t) => t.clusterGroup !== undefined && !groups.has(t.clusterGroup),
    );
    if (missing) {
      return new ValidationError(
        `spec.targets[${missing.index}].clusterGroup "${missing.clusterGroup}" is not a valid cluster group (no readable clusterGroups/${missing.clusterGroup}.yaml)`,
        {
          file,
          line: missing.line,
        },
      );
    }
    const stage = stageGroups(def.rollout).find((g) => !groups.has(g.group));
    if (stage) {
      return new ValidationError(
        `spec.rollout.stages[${stage.index}].clusterGroup "${stage.group}" is not a valid cluster group (no readable clusterGroups/${stage.group}.yaml)`,
        { file, line: stage.line },
      );
    }
    let paths: string[];
    try {
      paths = manifestPaths(this.tree, def);
    } catch (err) {
      return asValidationError(err, file);
    }
    const digest = inputDigest(
      fileDigest,
      paths.map((path) => ({ path, digest: this.fileDigest(path) })),
    );
    // Not cached: a later full render must build it.
    if (def.sourceType === 'kustomize' && only && !targetsAny(def, only, groups))
      return { def, inputDigest: digest, docs: [], refs: [] };
    return this.cachedAsync(this.old.prepared, this.used.prepared, digest, file, async () => {
      this.stats.bundlesPrepared++;
      // Helm bundles decrypt when helm runs (runHelm), which may be for new values only.
      if (def.sourceType === 'helm') return { def, inputDigest: digest, docs: [], refs: [], paths };
      const view = await this.plainView(paths);
      if (def.sourceType === 'plain') return prepareBundle(view, def, digest, paths, this.limits);
      this.stats.toolRuns++;
      return prepareKustomize(view, def, digest, paths, this.tools, this.limits);
    });
  }

  /**
   * Runs helm for every distinct (values, capabilities, fetched charts) the clusters need
   * (cached by helmKey). Remote charts and local charts' missing dependencies are
   * resolved first, each distinct one once; one that cannot be had fails its bundle.
   */
  async runHelm(
    clusters: ReadonlyMap<string, ClusterDef>,
    bundles: ReadonlyMap<string, PreparedBundle | undefined>,
    groups: ReadonlyMap<string, ClusterGroupDef>,
  ): Promise<void> {
    const wanted: { at: string; b: PreparedBundle; inv: HelmInvocation }[] = [];
    for (const b of bundles.values()) {
      if (!b || b.def.sourceType !== 'helm' || b.def.paused) continue;
      for (const c of clusters.values()) {
        const target = c.paused ? undefined : matchTarget(b.def, c, groups);
        if (!target || target.doNotDeploy) continue;
        const at = `${c.name}\0${b.def.name}`;
        try {
          const caps = this.capabilitiesOf(c);
          const inv = helmInvocation(this.tree, b.def, target, scopeOf(c, target), caps);
          wanted.push({ at, b, inv });
        } catch (err) {
          this.helmFor.set(at, asValidationError(err, b.def.file));
        }
      }
    }
    const fetching = new ChartFetches(this.tree, this.charts);
    const fetched = await Promise.all(wanted.map(({ b, inv }) => fetching.forRun(b.def, inv)));
    if (fetching.used) this.usesChartRepositories = true;
    const jobs = new Map<string, { b: PreparedBundle; inv: HelmInvocation; f: FetchedCharts }>();
    wanted.forEach(({ at, b, inv }, i) => {
      const f = fetched[i] as Cached<FetchedCharts & { digests: string[] }>;
      if (f instanceof ValidationError) {
        this.helmFor.set(at, f);
        return;
      }
      const key = helmKey(b.inputDigest, inv, f.digests);
      this.helmFor.set(at, key);
      jobs.set(key, { b, inv, f });
    });
    await Promise.all(
      [...jobs].map(([key, { b, inv, f }]) =>
        this.cachedAsync(this.old.helm, this.used.helm, key, b.def.file, async () => {
          const view = await this.plainView(b.paths ?? []);
          this.stats.toolRuns++;
          return prepareHelm(view, b.def, key, inv, b.paths ?? [], this.tools, this.limits, f);
        }),
      ),
    );
  }

  /** The bundle rendered for these inputs, from the content-addressed cache when possible. */
  renderFor(
    bundle: PreparedBundle,
    scope: VarScope,
    target: TargetDef,
    cluster: string,
  ): RenderedBundle | undefined {
    const b = bundle.def.sourceType === 'helm' ? this.helmOutput(bundle, cluster) : bundle;
    if (b instanceof ValidationError) {
      this.errors.push(toRenderError(b, { bundle: bundle.def.name, cluster }));
      return undefined;
    }
    const resolve = (refs: readonly string[]): string[] =>
      refs.map((ref) => {
        const r = resolveVariable(ref, scope);
        return 'value' in r ? `=${r.value}` : `!${r.problem}`;
      });
    const namespace = target.namespace ?? b.def.namespace;
    // Patches are identified by the target's position: bundle.yaml is in the input digest.
    const patches = target.patches.length > 0 ? [target.index, resolve(target.refs)] : null;
    const key = JSON.stringify([b.inputDigest, namespace ?? null, resolve(b.refs), patches]);
    const hit = this.used.rendered.get(key) ?? this.old.rendered.get(key);
    let r: Cached<RenderedBundle>;
    if (hit) {
      this.stats.bundleCacheHits++;
      r = hit;
      this.used.rendered.set(key, hit);
    } else {
      this.stats.bundleRenders++;
      r = this.cached(this.old.rendered, this.used.rendered, key, b.def.file, () =>
        renderBundle(b, scope, namespace, target.patches),
      );
    }
    if (r instanceof ValidationError) {
      this.errors.push(toRenderError(r, { bundle: b.def.name, cluster }));
      return undefined;
    }
    return r;
  }

  private helmOutput(b: PreparedBundle, cluster: string): Cached<PreparedBundle> {
    const key = this.helmFor.get(`${cluster}\0${b.def.name}`);
    if (key === undefined)
      return new ValidationError('internal: helm output missing', { file: b.def.file });
    if (key instanceof ValidationError) return key;
    return (
      this.used.helm.get(key) ??
      new ValidationError('internal: helm output missing', { file: b.def.file })
    );
  }

  // `file` names the input an unexpected failure is reported against.
  private async cachedAsync<T>(
    old: ReadonlyMap<string, Cached<T>>,
    used: Map<string, Cached<T>>,
    key: string,
    file: string,
    make: () => Promise<T> | T,
  ): Promise<Cached<T>> {
    let v = used.get(key) ?? old.get(key);
    // The renderer unreachable last time is no verdict on the input: try again.
    if (v === undefined || (isTransientRenderError(v) && !used.has(key))) {
      try {
        v = await make();
      } catch (err) {
        v = asValidationError(err, file);
      }
    }
    used.set(key, v);
    return v;
  }

  private cached<T>(
    old: ReadonlyMap<string, Cached<T>>,
    used: Map<string, Cached<T>>,
    key: string,
    file: string,
    make: () => T,
  ): Cached<T> {
    let v = used.get(key) ?? old.get(key);
    if (v === undefined) {
      try {
        v = make();
      } catch (err) {
        v = asValidationError(err, file);
      }
    }
    used.set(key, v);
    return v;
  }
}

/**
 * Any failure while reading or rendering one input (a parser's exhausted stack, a bug
 * tripped by hostile content) as that input's error: it fails its bundle or cluster,
 * never the whole commit.
 */
function asValidationError(err: unknown, file: string): ValidationError {
  if (err instanceof ValidationError) return err;
  return new ValidationError(`cannot render: ${errorMessage(err)}`, { file, cause: err });
}

/** A ValidationError as a RenderError of a bundle and/or cluster. */
export function toRenderError(
  err: ValidationError,
  ctx: { bundle?: string; cluster?: string },
): RenderError {
  return {
    ...ctx,
    ...(err.file !== undefined ? { file: err.file } : {}),
    ...(err.line !== undefined ? { line: err.line } : {}),
    message: err.message,
  };
}

/** True when a (non-paused) cluster of `clusters` gets the bundle. */
function targetsAny(
  def: BundleDef,
  clusters: ReadonlyMap<string, ClusterDef>,
  groups: ReadonlyMap<string, ClusterGroupDef>,
): boolean {
  for (const c of clusters.values()) {
    if (c.paused) continue;
    const t = matchTarget(def, c, groups);
    if (t && !t.doNotDeploy) return true;
  }
  return false;
}

/** What a cluster contributes to substitution under a target. */
export function scopeOf(c: ClusterDef, target: TargetDef): VarScope {
  return { clusterName: c.name, labels: c.labels, vars: { ...c.vars, ...target.vars } };
}
