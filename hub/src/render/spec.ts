// The fleet repo's own kinds, Cluster and Bundle: parsed, checked and defaulted once
// per file version. Format documented in docs/fleet-repo.md.
import { posix } from 'node:path';
import { compileLabelSelector, isDnsLabel } from '@flotilla/common';
import type { DriftIgnoreRule, DriftPolicy, LabelSelector, Selector } from '@flotilla/common';
import { FieldReader, parseSpecDocument } from './yaml-spec.js';

/** apiVersion of Cluster and Bundle documents. */
export const FLEET_API_VERSION = 'flotilla.dev/v1alpha1';

/** A cluster as declared in clusters/<name>.yaml. */
export interface ClusterDef {
  name: string;
  labels: Readonly<Record<string, string>>;
  vars: Readonly<Record<string, string>>;
  /** Paused: the cluster keeps the last state rendered before it was paused. */
  paused: boolean;
  file: string;
}

/** One entry of a bundle's targets list. */
export interface TargetDef {
  /** Position in the list, for messages. */
  index: number;
  selector: Selector | undefined;
  clusterName: string | undefined;
  vars: Readonly<Record<string, string>>;
  /** The matching clusters get nothing from this bundle. */
  doNotDeploy: boolean;
  /** Overrides the bundle's default namespace for these clusters. */
  namespace: string | undefined;
}

/** A bundle as declared in bundles/<name>/bundle.yaml. */
export interface BundleDef {
  name: string;
  file: string;
  /** Directory of the manifests, relative to the repo root ("" = the root). */
  sourceDir: string;
  /** Default namespace of namespaced objects that have none. */
  namespace: string | undefined;
  targets: TargetDef[];
  drift: DriftPolicy;
  forceConflicts: boolean;
  paused: boolean;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function header(r: FieldReader, kind: string, expectedName: string): FieldReader {
  r.only(['apiVersion', 'kind', 'metadata', 'spec']);
  if (r.str('apiVersion') !== FLEET_API_VERSION) r.fail(['apiVersion'], `apiVersion must be "${FLEET_API_VERSION}"`);
  if (r.str('kind') !== kind) r.fail(['kind'], `kind must be "${kind}"`);
  const meta = r.child('metadata') ?? r.fail(['metadata'], 'metadata is required');
  meta.only(['name', 'labels', 'annotations']);
  const name = meta.str('name');
  if (name !== expectedName) {
    meta.fail(['name'], `metadata.name must be "${expectedName}", the ${kind === 'Cluster' ? 'file' : 'directory'} name`);
  }
  return meta;
}

function vars(r: FieldReader): Record<string, string> {
  const v = r.stringMap('vars') ?? {};
  for (const k of Object.keys(v)) if (!VAR_NAME.test(k)) r.fail(['vars', k], `invalid variable name "${k}"`);
  return v;
}

function namespace(r: FieldReader, key = 'namespace'): string | undefined {
  const ns = r.str(key);
  if (ns !== undefined && !isDnsLabel(ns)) r.fail([key], `${r.at(key)} "${ns}" is not a valid namespace name`);
  return ns;
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
  spec?.only(['vars', 'paused']);
  return { name, labels, vars: spec ? vars(spec) : {}, paused: spec?.bool('paused') ?? false, file };
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
  spec.only(['source', 'namespace', 'targets', 'drift', 'forceConflicts', 'paused']);
  const bundleDir = posix.dirname(file);
  return {
    name,
    file,
    sourceDir: sourceDir(spec, bundleDir),
    namespace: namespace(spec),
    targets: spec.list('targets').map((t, i) => parseTarget(t, i)),
    drift: parseDrift(spec.child('drift')),
    forceConflicts: spec.bool('forceConflicts') ?? true,
    paused: spec.bool('paused') ?? false,
  };
}

function sourceDir(spec: FieldReader, bundleDir: string): string {
  const src = spec.child('source');
  src?.only(['path']);
  const rel = src?.str('path') ?? 'manifests';
  if (rel === '' || posix.isAbsolute(rel) || rel.includes('\\')) {
    (src ?? spec).fail(['path'], `spec.source.path "${rel}" must be a relative POSIX path`);
  }
  const dir = posix.normalize(posix.join(bundleDir, rel));
  if (dir === '..' || dir.startsWith('../')) {
    (src ?? spec).fail(['path'], `spec.source.path "${rel}" leaves the repository`);
  }
  return dir === '.' ? '' : dir.replace(/\/$/, '');
}

function parseTarget(t: FieldReader, index: number): TargetDef {
  t.only(['clusterSelector', 'clusterName', 'vars', 'doNotDeploy', 'namespace']);
  const clusterName = t.str('clusterName');
  if (clusterName !== undefined && !isDnsLabel(clusterName)) t.fail(['clusterName'], `invalid cluster name "${clusterName}"`);
  let selector: Selector | undefined;
  const sel = t.child('clusterSelector');
  if (sel) {
    sel.only(['matchLabels', 'matchExpressions']);
    try {
      selector = compileLabelSelector(t.raw('clusterSelector') as LabelSelector, `${t.at('clusterSelector')}`);
    } catch (err) {
      sel.fail([], (err as Error).message, err);
    }
  }
  if (!selector && clusterName === undefined) {
    t.fail([], `${t.at()} needs clusterSelector or clusterName (use "clusterSelector: {}" for every cluster)`);
  }
  return { index, selector, clusterName, vars: vars(t), doNotDeploy: t.bool('doNotDeploy') ?? false, namespace: namespace(t) };
}

function parseDrift(d: FieldReader | undefined): DriftPolicy {
  if (!d) return { mode: 'enforce', ignore: [] };
  d.only(['mode', 'ignore']);
  const mode = d.str('mode') ?? 'enforce';
  if (mode !== 'enforce' && mode !== 'warn') d.fail(['mode'], `spec.drift.mode must be "enforce" or "warn", not "${mode}"`);
  const ignore = d.list('ignore').map((rule): DriftIgnoreRule => {
    rule.only(['kind', 'name', 'namespace', 'paths']);
    const paths = rule.raw('paths');
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every((p) => typeof p === 'string' && p.startsWith('/'))) {
      rule.fail(['paths'], `${rule.at('paths')} must be a non-empty list of JSON pointers ("/spec/replicas")`);
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

/** The first target that matches the cluster, or undefined (no targets = no clusters). */
export function matchTarget(bundle: BundleDef, cluster: ClusterDef): TargetDef | undefined {
  return bundle.targets.find(
    (t) =>
      (t.clusterName === undefined || t.clusterName === cluster.name) &&
      (t.selector === undefined || t.selector.matches(cluster.labels)),
  );
}
