// The fleet repo's own kinds, Cluster and Bundle: parsed, checked and defaulted once
// per file version. Format documented in docs/fleet-repo.md.
import { posix } from 'node:path';
import {
  checkCapabilities,
  compileLabelSelector,
  isApiVersionEntry,
  isKubeVersion,
} from '@flotilla/common';
import type { DriftIgnoreRule, DriftPolicy, Selector } from '@flotilla/common';
import { readDependsOn } from './depends.js';
import type { DependencyRef } from './depends.js';
import type { DeclaredCapabilities } from './capabilities.js';
import { parseHelm, parseTarget, readNamespace, readSelector, readVars } from './target-spec.js';
import type { HelmOverrides, TargetDef } from './target-spec.js';
import { FieldReader, parseSpecDocument } from './yaml-spec.js';
import { parseRollout } from './rollout-spec.js';
import type { RolloutDef } from './rollout-spec.js';

export type { TargetDef } from './target-spec.js';

/** apiVersion of Cluster and Bundle documents. */
export const FLEET_API_VERSION = 'flotilla.dev/v1alpha1';

/** A cluster as declared in clusters/<name>.yaml. */
export interface ClusterDef {
  name: string;
  labels: Readonly<Record<string, string>>;
  vars: Readonly<Record<string, string>>;
  /** Paused: the cluster keeps the last state rendered before it was paused. */
  paused: boolean;
  /** spec.allowMassPrune: a commit may delete any share of this cluster's objects (default false). */
  allowMassPrune: boolean;
  /** spec.kubeVersion / spec.apiVersions: Helm capabilities until the cluster's agent reports its own. */
  capabilities: DeclaredCapabilities | undefined;
  file: string;
}

/** A bundle as declared in bundles/<name>/bundle.yaml. */
export interface BundleDef {
  name: string;
  file: string;
  /** How the objects are produced: plain YAML files, `kustomize build`, or `helm template`. */
  sourceType: 'plain' | 'kustomize' | 'helm';
  /** Directory of the manifests / kustomization / chart, relative to the repo root ("" = the root). */
  sourceDir: string;
  /** Bundle-level Helm settings (chart = sourceDir); undefined unless sourceType is helm. */
  helm: HelmOverrides | undefined;
  /** Default namespace of namespaced objects that have none. */
  namespace: string | undefined;
  targets: TargetDef[];
  drift: DriftPolicy;
  forceConflicts: boolean;
  paused: boolean;
  /** spec.allowMassPrune: deleting many or all of this bundle's objects at once is not held (default false). */
  allowMassPrune: boolean;
  /** `${...}` variables are substituted in the manifests (spec.substitute, default false). */
  substitute: boolean;
  /** spec.createNamespace: the agent creates the bundle's namespace when missing (default true, like Fleet). */
  createNamespace: boolean;
  /** spec.namespaceLabels / namespaceAnnotations: set on that namespace (default none). */
  namespaceLabels: Readonly<Record<string, string>>;
  namespaceAnnotations: Readonly<Record<string, string>>;
  /** spec.dependsOn: bundles applied and healthy on a cluster before this one (default none). */
  dependsOn: DependencyRef[];
  /** spec.rollout: new revisions go out stage by stage (default undefined: to every cluster at once). */
  rollout: RolloutDef | undefined;
}

function header(r: FieldReader, kind: string, expectedName: string): FieldReader {
  r.only(['apiVersion', 'kind', 'metadata', 'spec']);
  if (r.str('apiVersion') !== FLEET_API_VERSION)
    r.fail(['apiVersion'], `apiVersion must be "${FLEET_API_VERSION}"`);
  if (r.str('kind') !== kind) r.fail(['kind'], `kind must be "${kind}"`);
  const meta = r.child('metadata') ?? r.fail(['metadata'], 'metadata is required');
  meta.only(['name', 'labels', 'annotations']);
  const name = meta.str('name');
  if (name !== expectedName) {
    meta.fail(
      ['name'],
      `metadata.name must be "${expectedName}", the ${kind === 'Bundle' ? 'directory' : 'file'} name`,
    );
  }
  return meta;
}

/** Parses clusters/<name>.yaml; throws ValidationError with file:line. */
export function parseCluster(text: string, file: string, name: string): ClusterDef {
  const root = rootReader(text, file);
  const meta = header(root, 'Cluster', name);
  const labels = meta.stringMap('labels') ?? {};
  try {
    compileLabelSelector({ matchLabels: labels }, 'metadata.labels');
  } catch (err) {
    meta.fail(['labels'], (err as Error).message, err);
  }
  const spec = root.child('spec');
  spec?.only(['vars', 'paused', 'allowMassPrune', 'kubeVersion', 'apiVersions']);
  return {
    name,
    labels,
    vars: spec ? readVars(spec) : {},
    paused: spec?.bool('paused') ?? false,
    allowMassPrune: spec?.bool('allowMassPrune') ?? false,
    capabilities: spec ? readCapabilities(spec) : undefined,
    file,
  };
}

// spec.kubeVersion and spec.apiVersions, checked like an agent's report.
function readCapabilities(spec: FieldReader): DeclaredCapabilities | undefined {
  const kubeVersion = spec.str('kubeVersion');
  if (kubeVersion !== undefined && !isKubeVersion(kubeVersion))
    spec.fail(['kubeVersion'], `spec.kubeVersion "${kubeVersion}" is not a version like v1.35.4`);
  const raw = spec.raw('apiVersions');
  let apiVersions: readonly string[] | undefined;
  if (raw !== undefined && raw !== null) {
    if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string'))
      spec.fail(
        ['apiVersions'],
        'spec.apiVersions must be a list of strings ("apps/v1/Deployment")',
      );
    const list = raw as string[];
    const bad = list.findIndex((v) => !isApiVersionEntry(v));
    if (bad >= 0)
      spec.fail(
        ['apiVersions', bad],
        `spec.apiVersions[${bad}] "${list[bad]}" is not group/version or group/version/Kind`,
      );
    try {
      apiVersions = checkCapabilities(
        { kubeVersion: '', apiVersions: list },
        'spec.apiVersions',
      ).apiVersions;
    } catch (err) {
      spec.fail(['apiVersions'], (err as Error).message, err);
    }
  }
  if (kubeVersion === undefined && apiVersions === undefined) return undefined;
  return {
    ...(kubeVersion !== undefined ? { kubeVersion } : {}),
    ...(apiVersions !== undefined ? { apiVersions } : {}),
  };
}

function rootReader(text: string, file: string): FieldReader {
  const doc = parseSpecDocument(text, file);
  return new FieldReader(doc, [], doc.value);
}

/** Parses bundles/<name>/bundle.yaml; throws ValidationError with file:line. */
export function parseBundle(text: string, file: string, name: string): BundleDef {
  const root = rootReader(text, file);
  header(root, 'Bundle', name);
  const spec = root.child('spec') ?? root.fail(['spec'], 'spec is required');
  spec.only([
    'source',
    'namespace',
    'targets',
    'drift',
    'forceConflicts',
    'paused',
    'allowMassPrune',
    'substitute',
    'createNamespace',
    'namespaceLabels',
    'namespaceAnnotations',
    'dependsOn',
    'rollout',
  ]);
  const bundleDir = posix.dirname(file);
  const repoPath = (r: FieldReader, key: string, rel: string): string =>
    toRepoPath(r, key, rel, bundleDir);
  const source = parseSource(spec, repoPath);
  return {
    name,
    file,
    ...source,
    namespace: readNamespace(spec),
    targets: spec.list('targets').map((t, i) => parseTarget(t, i, repoPath)),
    drift: parseDrift(spec.child('drift')),
    forceConflicts: spec.bool('forceConflicts') ?? true,
    paused: spec.bool('paused') ?? false,
    allowMassPrune: spec.bool('allowMassPrune') ?? false,
    substitute: spec.bool('substitute') ?? false,
    ...parseNamespaceFields(spec),
    dependsOn: readDependsOn(spec, name),
    rollout: rolloutOf(spec),
  };
}

type NamespaceFields = Pick<
  BundleDef,
  'createNamespace' | 'namespaceLabels' | 'namespaceAnnotations'
>;

// createNamespace (default true), namespaceLabels, namespaceAnnotations: Fleet's names.
function parseNamespaceFields(spec: FieldReader): NamespaceFields {
  const createNamespace = spec.bool('createNamespace') ?? true;
  const namespaceLabels = spec.stringMap('namespaceLabels') ?? {};
  const namespaceAnnotations = spec.stringMap('namespaceAnnotations') ?? {};
  for (const key of ['namespaceLabels', 'namespaceAnnotations'] as const) {
    const given = Object.keys(key === 'namespaceLabels' ? namespaceLabels : namespaceAnnotations);
    if (given.length > 0 && !createNamespace)
      spec.fail([key], `spec.${key} has no effect with spec.createNamespace: false`);
  }
  return { createNamespace, namespaceLabels, namespaceAnnotations };
}

function rolloutOf(spec: FieldReader): RolloutDef | undefined {
  const r = spec.child('rollout');
  return r ? parseRollout(r) : undefined;
}

type SourceFields = Pick<BundleDef, 'sourceType' | 'sourceDir' | 'helm'>;

// source: { path } (plain YAML, the default) | { kustomize: { path } } | { helm: { chart, … } }
function parseSource(
  spec: FieldReader,
  repoPath: (r: FieldReader, key: string, rel: string) => string,
): SourceFields {
  const src = spec.child('source');
  if (!src)
    return {
      sourceType: 'plain',
      sourceDir: repoPath(spec, 'source', 'manifests'),
      helm: undefined,
    };
  src.only(['path', 'kustomize', 'helm']);
  const given = ['path', 'kustomize', 'helm'].filter(
    (k) => src.raw(k) !== undefined && src.raw(k) !== null,
  );
  if (given.length > 1)
    src.fail(
      [given[1] as string],
      `spec.source takes one of path, kustomize or helm, not ${given.join(' and ')}`,
    );
  const k = src.child('kustomize');
  if (k) {
    k.only(['path']);
    return {
      sourceType: 'kustomize',
      sourceDir: repoPath(k, 'path', k.str('path') ?? '.'),
      helm: undefined,
    };
  }
  const h = src.child('helm');
  if (h) {
    const helm = parseHelm(h, repoPath);
    // A remote chart brings its templates; the bundle directory holds values files.
    if (helm.remote) return { sourceType: 'helm', sourceDir: repoPath(h, 'chart', '.'), helm };
    if (helm.version !== undefined)
      h.fail(
        ['version'],
        'spec.source.helm.version applies to a chart from a repository (repo) or an OCI registry (chart: oci://…)',
      );
    const chart =
      helm.chart ??
      h.fail(
        [],
        'spec.source.helm.chart is required (the chart directory, relative to the bundle, or a chart name with repo, or oci://…)',
      );
    return { sourceType: 'helm', sourceDir: chart, helm };
  }
  return {
    sourceType: 'plain',
    sourceDir: repoPath(src, 'path', src.str('path') ?? 'manifests'),
    helm: undefined,
  };
}

// A path relative to the bundle directory, as a repo path; it may not leave the repository.
// The renderer's repository is the fleet's root directory (a source's `path`), so nothing
// outside it can be read.
function toRepoPath(r: FieldReader, key: string, rel: string, bundleDir: string): string {
  if (rel === '' || posix.isAbsolute(rel) || rel.includes('\\'))
    r.fail([key], `${r.at(key)} "${rel}" must be a relative POSIX path`);
  const dir = posix.normalize(posix.join(bundleDir, rel));
  if (dir === '..' || dir.startsWith('../'))
    r.fail([key], `${r.at(key)} "${rel}" leaves the repository (the fleet's root directory)`);
  return dir === '.' ? '' : dir.replace(/\/$/, '');
}

function parseDrift(d: FieldReader | undefined): DriftPolicy {
  if (!d) return { mode: 'enforce', ignore: [] };
  d.only(['mode', 'ignore']);
  const mode = d.str('mode') ?? 'enforce';
  if (mode !== 'enforce' && mode !== 'warn')
    d.fail(['mode'], `spec.drift.mode must be "enforce" or "warn", not "${mode}"`);
  const ignore = d.list('ignore').map((rule): DriftIgnoreRule => {
    rule.only(['kind', 'name', 'namespace', 'paths']);
    const paths = rule.raw('paths');
    if (
      !Array.isArray(paths) ||
      paths.length === 0 ||
      !paths.every((p) => typeof p === 'string' && p.startsWith('/'))
    ) {
      rule.fail(
        ['paths'],
        `${rule.at('paths')} must be a non-empty list of JSON pointers ("/spec/replicas")`,
      );
    }
    const out: DriftIgnoreRule = { paths: paths as string[] };
    for (const key of ['kind', 'name', 'namespace'] as const) {
      const v = rule.str(key);
      if (v !== undefined) out[key] = v;
    }
    return out;
  });
  return { mode: mode as DriftPolicy['mode'], ignore };
}

/** A cluster group as declared in clusterGroups/<name>.yaml. */
export interface ClusterGroupDef {
  name: string;
  file: string;
  /** Clusters whose labels match (all clusters for {}), or undefined. */
  selector: Selector | undefined;
  /** Clusters named explicitly. */
  clusterNames: readonly string[];
}

/** Parses clusterGroups/<name>.yaml; throws ValidationError with file:line. */
export function parseClusterGroup(text: string, file: string, name: string): ClusterGroupDef {
  const root = rootReader(text, file);
  header(root, 'ClusterGroup', name);
  const spec = root.child('spec') ?? root.fail(['spec'], 'spec is required');
  spec.only(['selector', 'clusterNames']);
  const selector = readSelector(spec, 'selector');
  const names = spec.raw('clusterNames') ?? [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string'))
    spec.fail(['clusterNames'], 'spec.clusterNames must be a list of cluster names');
  if (!selector && (names as string[]).length === 0)
    spec.fail([], 'a ClusterGroup needs spec.selector and/or spec.clusterNames');
  return { name, file, selector, clusterNames: names as string[] };
}

/** True when the cluster belongs to the group (by name or by labels). */
export function inGroup(group: ClusterGroupDef, cluster: ClusterDef): boolean {
  return (
    group.clusterNames.includes(cluster.name) || (group.selector?.matches(cluster.labels) ?? false)
  );
}

/**
 * The first target that matches the cluster, or undefined (no targets = no clusters).
 * Every condition a target gives (name, selector, group) must hold.
 */
export function matchTarget(
  bundle: BundleDef,
  cluster: ClusterDef,
  groups: ReadonlyMap<string, ClusterGroupDef> = new Map(),
): TargetDef | undefined {
  return bundle.targets.find((t) => {
    if (t.clusterName !== undefined && t.clusterName !== cluster.name) return false;
    if (t.selector !== undefined && !t.selector.matches(cluster.labels)) return false;
    if (t.clusterGroup === undefined) return true;
    const g = groups.get(t.clusterGroup);
    return g !== undefined && inGroup(g, cluster);
  });
}
