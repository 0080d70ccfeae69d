// The fleet renderer: Git tree → desired state per cluster. Incremental and
// content-addressed: every stage is cached by the digest of its inputs, so a commit that
// changes one bundle re-renders only that bundle (and never re-runs kustomize or helm
// for an unchanged one), and clusters whose inputs for a bundle are equal share one
// BundleDesiredState object.
import { performance } from 'node:perf_hooks';
import {
  DEFAULT_MAX_PRUNE_SHARE,
  LogFields,
  TooLargeError,
  desiredStateDigest,
  durations,
} from '@flotilla/common';
import type { ClusterCapabilities, DesiredState, Logger, PrunePolicy } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { assembleCluster } from './assemble.js';
import { BUILTIN_CAPABILITIES, effectiveCapabilities } from './capabilities.js';
import { FailureAttribution, servedRevision } from './failures.js';
import type { ServedFrom } from './failures.js';
import type { Candidate } from './assemble.js';
import { checkDependencies, missingDependency } from './depends.js';
import type { PreparedBundle, RenderedBundle } from './bundle.js';
import { scanLayout } from './layout.js';
import { DEFAULT_RENDER_LIMITS } from './limits.js';
import type { RenderLimits } from './limits.js';
import { RenderRun, scopeOf } from './render-run.js';
import type { Cached, RenderCaches } from './render-run.js';
import { matchTarget } from './spec.js';
import { stageSelects, strategyOf } from './rollout-spec.js';
import type { BundleDef, ClusterDef, ClusterGroupDef } from './spec.js';
import { LazyChartFetcher } from './charts/lazy.js';
import type { ChartFetcher } from './charts/resolver.js';
import { defaultChartCache, defaultChartSettings } from './charts/settings.js';
import { DEFAULT_MAX_TOOL_OUTPUT, DEFAULT_TOOL_MAX_MEMORY, ExecToolRunner } from './tools.js';
import { RemoteToolRunner } from './remote/client.js';
import type { ToolRunner } from './tools.js';
import { SopsDecrypter } from './sops.js';
import type { SecretDecrypter } from './sops.js';
import { DEFAULT_MAX_CLUSTER_BYTES } from './types.js';
import { KeptHelmOutput } from './kept-output.js';
import type {
  RenderInputs,
  RenderOptions,
  RenderResult,
  RenderStats,
  RolloutPlan,
} from './types.js';

/** Keeps caches between renders; call render() with each new snapshot. */
export class FleetRenderer {
  private readonly maxClusterBytes: number;
  private readonly maxPruneShare: number;
  private readonly limits: RenderLimits;
  private readonly log: Logger | undefined;
  private readonly tools: ToolRunner;
  private readonly defaultCapabilities: ClusterCapabilities;
  // Each cache keeps only what the last render used: memory follows the repo, not history.
  private clusterDefs = new Map<string, Cached<ClusterDef>>();
  private bundleDefs = new Map<string, Cached<BundleDef>>();
  private groupDefs = new Map<string, Cached<ClusterGroupDef>>();
  /** helm output per helmKey. */
  private helm = new Map<string, Cached<PreparedBundle>>();
  private prepared = new Map<string, Cached<PreparedBundle>>();
  private rendered = new Map<string, Cached<RenderedBundle>>();
  private decrypted = new Map<string, Cached<Buffer>>();
  private readonly secrets: SecretDecrypter;
  /** Per cluster, the rendering of each bundle it got last time: the fallback when a bundle fails. */
  private previous = new Map<string, Map<string, RenderedBundle>>();
  /** Per cluster, the revisions those renderings came from. */
  private served = new Map<string, ServedFrom>();
  private lastStates = new Map<string, DesiredState>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly charts: ChartFetcher;

  constructor(
    opts: RenderOptions & {
      logger?: Logger;
      tools?: ToolRunner;
      secrets?: SecretDecrypter;
      charts?: ChartFetcher;
    } = {},
  ) {
    this.maxClusterBytes = opts.maxClusterBytes ?? DEFAULT_MAX_CLUSTER_BYTES;
    this.maxPruneShare = opts.maxPruneShare ?? DEFAULT_MAX_PRUNE_SHARE;
    this.limits = {
      maxBundleDocuments: opts.maxBundleDocuments ?? DEFAULT_RENDER_LIMITS.maxBundleDocuments,
      maxBundleObjects: opts.maxBundleObjects ?? DEFAULT_RENDER_LIMITS.maxBundleObjects,
      maxClusterObjects: opts.maxClusterObjects ?? DEFAULT_RENDER_LIMITS.maxClusterObjects,
    };
    this.log = opts.logger;
    this.defaultCapabilities = opts.defaultCapabilities ?? BUILTIN_CAPABILITIES;
    const local =
      opts.tools ??
      new ExecToolRunner({
        ...(opts.kustomizePath !== undefined ? { kustomizePath: opts.kustomizePath } : {}),
        ...(opts.helmPath !== undefined ? { helmPath: opts.helmPath } : {}),
        ...(opts.toolTimeoutMs !== undefined ? { timeoutMs: opts.toolTimeoutMs } : {}),
        ...(opts.toolMaxMemoryBytes !== undefined
          ? { maxMemoryBytes: opts.toolMaxMemoryBytes }
          : {}),
        ...(opts.toolMaxCpuMs !== undefined ? { maxCpuMs: opts.toolMaxCpuMs } : {}),
        ...(opts.sopsPath !== undefined ? { sopsPath: opts.sopsPath } : {}),
        ...(opts.toolSandbox !== undefined ? { sandbox: opts.toolSandbox } : {}),
      });
    // render.remote: kustomize and helm run on the renderer, sops here (the hub holds its key).
    const tools = opts.remoteRenderer
      ? new RemoteToolRunner(
          opts.remoteRenderer,
          {
            timeoutMs: opts.toolTimeoutMs ?? durations.renderToolTimeout,
            maxCpuMs: opts.toolMaxCpuMs ?? durations.renderToolCpuTime,
            maxMemoryBytes: opts.toolMaxMemoryBytes ?? DEFAULT_TOOL_MAX_MEMORY,
            maxOutputBytes: DEFAULT_MAX_TOOL_OUTPUT,
          },
          local,
        )
      : local;
    this.tools = opts.helmOutputDir
      ? new KeptHelmOutput(tools, { dir: opts.helmOutputDir })
      : tools;
    this.secrets =
      opts.secrets ??
      new SopsDecrypter(this.tools, {
        ageKeyFile: opts.sopsAgeKeyFile,
        ...(opts.sopsKeySetting !== undefined ? { keySetting: opts.sopsKeySetting } : {}),
      });
    this.charts =
      opts.charts ??
      new LazyChartFetcher(opts.chartSettings ?? defaultChartSettings(defaultChartCache()));
  }

  /**
   * Renders every cluster's desired state from a tree at a revision, with the clusters'
   * reported capabilities (inputs). Never rejects on bad input. Calls run one at a time,
   * in call order: renders share the caches, and an older revision must never finish
   * after a newer one.
   */
  render(tree: RepoTree, revision: string, inputs: RenderInputs = {}): Promise<RenderResult> {
    const result = this.queue.then(() => this.renderNow(tree, revision, inputs));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private async renderNow(
    tree: RepoTree,
    revision: string,
    inputs: RenderInputs,
  ): Promise<RenderResult> {
    const t0 = performance.now();
    const stats: RenderStats = {
      bundleRenders: 0,
      bundleCacheHits: 0,
      bundlesPrepared: 0,
      toolRuns: 0,
      decryptions: 0,
      durationMs: 0,
    };
    const layout = scanLayout(tree);
    const errors = [...layout.errors];
    const reported = inputs.capabilities;
    this.charts.begin(revision, inputs.refreshCharts === true);
    const run = new RenderRun(
      this.caches(),
      tree,
      stats,
      errors,
      this.tools,
      this.limits,
      (c) => effectiveCapabilities(reported?.get(c.name), c.capabilities, this.defaultCapabilities),
      this.secrets,
      this.charts,
    );
    const all = run.loadClusters(layout);
    const only = inputs.clusters ? new Set(inputs.clusters) : undefined;
    const clusters = only ? new Map([...all].filter(([n]) => only.has(n))) : all;
    const groups = run.loadGroups(layout);
    const bundles = await run.loadBundles(layout, groups, only ? clusters : undefined);
    this.checkDependsOn(layout, bundles, errors);
    await run.runHelm(clusters, bundles, groups);
    this.charts.end();
    const attribution = new FailureAttribution(errors, this.previous);
    const out: RenderResult = {
      revision,
      clusters: new Map(),
      errors,
      held: new Map(),
      labels: new Map([...all].map(([name, def]) => [name, { ...def.labels }])),
      pausedClusters: [],
      brokenClusters: [],
      failures: new Map(),
      rollouts: rolloutPlans(bundles, clusters, groups),
      stats,
      ...(run.usesChartRepositories ? { resolvesCharts: true } : {}),
    };
    const nextPrevious = new Map<string, Map<string, RenderedBundle>>();
    const nextServed = new Map<string, ServedFrom>();
    const names = [...new Set([...clusters.keys(), ...layout.brokenClusters])]
      .filter((n) => !only || only.has(n))
      .sort();
    for (const name of names) {
      const def = clusters.get(name);
      if (!def || def.paused) {
        (def ? out.pausedClusters : out.brokenClusters).push(name);
        if (!def)
          out.failures.set(name, [
            attribution.brokenCluster(name, this.lastStates.get(name)?.revision ?? ''),
          ]);
        this.carryOver(name, out, nextPrevious, nextServed);
        continue;
      }
      this.renderCluster(run, def, bundles, groups, out, { nextPrevious, nextServed, attribution });
    }
    this.clusterDefs = run.used.clusterDefs;
    this.bundleDefs = run.used.bundleDefs;
    this.groupDefs = run.used.groupDefs;
    this.helm = run.used.helm;
    this.prepared = run.used.prepared;
    this.rendered = run.used.rendered;
    this.decrypted = run.used.decrypted;
    this.previous = nextPrevious;
    this.served = nextServed;
    this.lastStates = new Map(out.clusters);
    stats.durationMs = Math.round(performance.now() - t0);
    this.log?.info(
      {
        [LogFields.revision]: revision,
        clusters: out.clusters.size,
        errors: errors.length,
        ...stats,
      },
      'rendered fleet',
    );
    return out;
  }

  // Unknown names and cycles in spec.dependsOn: the bundles that name them are broken.
  private checkDependsOn(
    layout: ReturnType<typeof scanLayout>,
    bundles: Map<string, PreparedBundle | undefined>,
    errors: RenderResult['errors'],
  ): void {
    const known = new Set([...layout.bundles.keys(), ...layout.brokenBundles]);
    const nodes = [...bundles.values()].flatMap((b) => (b ? [b.def] : []));
    for (const [name, err] of checkDependencies(nodes, known)) {
      errors.push(err);
      bundles.set(name, undefined);
    }
  }

  private carryOver(
    name: string,
    out: RenderResult,
    nextPrevious: Map<string, Map<string, RenderedBundle>>,
    nextServed: Map<string, ServedFrom>,
  ): void {
    const last = this.lastStates.get(name);
    if (last) out.clusters.set(name, last);
    const prev = this.previous.get(name);
    if (prev) nextPrevious.set(name, prev);
    const served = this.served.get(name);
    if (served) nextServed.set(name, served);
  }

  private renderCluster(
    run: RenderRun,
    def: ClusterDef,
    bundles: Map<string, PreparedBundle | undefined>,
    groups: ReadonlyMap<string, ClusterGroupDef>,
    out: RenderResult,
    next: {
      nextPrevious: Map<string, Map<string, RenderedBundle>>;
      nextServed: Map<string, ServedFrom>;
      attribution: FailureAttribution;
    },
  ): void {
    const { nextPrevious, nextServed } = next;
    const prev = this.previous.get(def.name);
    const firstError = out.errors.length;
    const candidates: Candidate[] = [];
    for (const [name, b] of bundles) {
      const previous = prev?.get(name);
      if (!b || b.def.paused) {
        candidates.push({ bundle: name, fresh: undefined, previous, file: b?.def.file });
        continue;
      }
      const target = matchTarget(b.def, def, groups);
      if (!target || target.doNotDeploy) continue;
      const fresh = run.renderFor(b, scopeOf(def, target), target, def.name);
      candidates.push({ bundle: name, fresh, previous, file: b.def.file });
    }
    // A dependency must be deployed wherever its dependent is, or the dependent waits forever.
    const deployed = (n: string): boolean => candidates.some((c) => c.bundle === n);
    for (const c of candidates) {
      const b = bundles.get(c.bundle);
      const missing = c.fresh && b ? missingDependency(b.def, def.name, deployed) : undefined;
      if (!missing) continue;
      out.errors.push(missing);
      c.fresh = undefined;
    }
    const asm = assembleCluster(def.name, candidates, this.limits.maxClusterObjects);
    out.errors.push(...asm.errors);
    const bytes = asm.bundles.reduce((n, r) => n + r.bytes, 0);
    if (asm.held.size > 0) out.held.set(def.name, [...asm.held].sort());
    if (bytes > this.maxClusterBytes) {
      const err = new TooLargeError(
        `desired state of cluster "${def.name}"`,
        bytes,
        this.maxClusterBytes,
      );
      out.errors.push({ cluster: def.name, message: err.message });
      out.held.set(def.name, candidates.map((c) => c.bundle).sort());
      const serving = this.lastStates.get(def.name)?.revision ?? '';
      out.failures.set(def.name, [
        { bundle: '', messages: [err.message], servingRevision: serving },
      ]);
      this.carryOver(def.name, out, nextPrevious, nextServed);
      return;
    }
    // Held bundles in the state carry a previous rendering: remember which revision's.
    // (No map for the usual cluster, whose bundles all rendered.)
    const prevServed = this.served.get(def.name);
    let fromPrevious: Map<string, string> | undefined;
    for (const r of asm.held.size > 0 ? asm.bundles : [])
      if (asm.held.has(r.state.name))
        (fromPrevious ??= new Map()).set(r.state.name, servedRevision(prevServed, r.state.name));
    nextServed.set(
      def.name,
      fromPrevious ? { at: out.revision, except: fromPrevious } : { at: out.revision },
    );
    if (asm.held.size > 0) {
      const failures = next.attribution.heldBundles(
        def.name,
        asm.held,
        bundles,
        out.errors.slice(firstError),
        (b) => fromPrevious?.get(b) ?? '',
      );
      if (failures.length > 0) out.failures.set(def.name, failures);
    }
    const states = asm.bundles.map((r) => r.state);
    // Held bundles without a rendering here must not be pruned by the agent.
    const rendered = new Set(states.map((s) => s.name));
    const held = [...asm.held].filter((b) => !rendered.has(b)).sort();
    // The agent enforces it (it knows its inventory across hub restarts); see docs/fleet-repo.md.
    const prune: PrunePolicy = {
      maxShare: this.maxPruneShare,
      ...(def.allowMassPrune ? { allowMassPrune: true } : {}),
    };
    out.clusters.set(def.name, {
      cluster: def.name,
      revision: out.revision,
      digest: desiredStateDigest(def.name, states, held, prune),
      bundles: states,
      ...(held.length > 0 ? { held } : {}),
      prune,
    });
    nextPrevious.set(def.name, new Map(asm.bundles.map((r) => [r.state.name, r])));
  }

  /** Caches of the previous render; internal, read by RenderRun. */
  caches(): RenderCaches {
    return {
      clusterDefs: this.clusterDefs,
      bundleDefs: this.bundleDefs,
      groupDefs: this.groupDefs,
      prepared: this.prepared,
      helm: this.helm,
      rendered: this.rendered,
      decrypted: this.decrypted,
    };
  }
}

/**
 * Per bundle read at this revision, its strategy and the stage of every cluster it
 * targets (paused ones included): the first stage that selects it, else the implicit
 * last one, so a targeted cluster is never left out of a rollout.
 */
function rolloutPlans(
  bundles: ReadonlyMap<string, PreparedBundle | undefined>,
  clusters: ReadonlyMap<string, ClusterDef>,
  groups: ReadonlyMap<string, ClusterGroupDef>,
): Map<string, RolloutPlan> {
  const out = new Map<string, RolloutPlan>();
  for (const [name, b] of bundles) {
    if (!b) continue;
    const def = b.def.rollout;
    const stageOf = new Map<string, number>();
    const paused: string[] = [];
    if (def) {
      for (const c of clusters.values()) {
        const target = matchTarget(b.def, c, groups);
        if (!target || target.doNotDeploy) continue;
        const i = def.stages.findIndex((s) => stageSelects(s, c, groups));
        stageOf.set(c.name, i < 0 ? def.stages.length : i);
        if (c.paused) paused.push(c.name);
      }
    }
    const implicitUsed = def !== undefined && [...stageOf.values()].includes(def.stages.length);
    out.set(name, {
      bundle: name,
      strategy: def ? strategyOf(def, implicitUsed) : undefined,
      stageOf,
      paused,
    });
  }
  return out;
}

/** Renders once with a fresh renderer (no caches kept): for the CLI and tests. */
export function renderFleet(
  tree: RepoTree,
  revision: string,
  opts: RenderOptions &
    RenderInputs & { tools?: ToolRunner; secrets?: SecretDecrypter; charts?: ChartFetcher } = {},
): Promise<RenderResult> {
  const { capabilities, clusters, refreshCharts: _refresh, ...rest } = opts;
  return new FleetRenderer(rest).render(tree, revision, {
    ...(capabilities ? { capabilities } : {}),
    ...(clusters ? { clusters } : {}),
  });
}
