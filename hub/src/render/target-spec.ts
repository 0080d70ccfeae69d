// One entry of a bundle's `targets`: who it matches (cluster name, label selector,
// cluster group) and what it changes for them (vars, namespace, patches, Helm values).
import { compileLabelSelector, isDnsLabel } from '@flotilla/common';
import type { LabelSelector, Selector } from '@flotilla/common';
import { chartSource, versionRange } from './charts/source.js';
import type { ChartSource } from './charts/source.js';
import type { JsonPatchOp, PatchDef, PatchSelector } from './patch.js';
import { pointerTokens } from './patch.js';
import { refsInValue } from './vars.js';
import type { FieldReader } from './yaml-spec.js';
import { isRecord } from './yaml-spec.js';

/** Helm settings; on a target every field is optional and overrides the bundle's. */
export interface HelmOverrides {
  /** Chart directory, relative to the repo root (normalized); absent for a remote chart. */
  chart?: string;
  /** Bundle only: the chart comes from a chart repository or an OCI registry. */
  remote?: ChartSource;
  /** Target only: the version (or range) of the bundle's remote chart for these clusters. */
  version?: string;
  /** Line of the `helm:` block, for errors about its chart. */
  line?: number;
  releaseName?: string;
  /** Merged over the bundle's values (RFC 7386); vars are substituted in strings. */
  values?: Record<string, unknown>;
  /** Repo paths of values files, applied after the bundle's. */
  valuesFiles?: string[];
}

/** One entry of a bundle's targets list. */
export interface TargetDef {
  /** Position in the list, for messages. */
  index: number;
  selector: Selector | undefined;
  clusterName: string | undefined;
  /** Name of a ClusterGroup the cluster must belong to. */
  clusterGroup: string | undefined;
  vars: Readonly<Record<string, string>>;
  /** The matching clusters get nothing from this bundle. */
  doNotDeploy: boolean;
  /** Overrides the bundle's default namespace for these clusters. */
  namespace: string | undefined;
  patches: PatchDef[];
  helm: HelmOverrides | undefined;
  /** Variables the patches and Helm values use, sorted. */
  refs: string[];
  /** Line of the target in bundle.yaml. */
  line: number;
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const OPS = ['add', 'remove', 'replace', 'move', 'copy', 'test'];

/** Reads `vars`, checking names. */
export function readVars(r: FieldReader): Record<string, string> {
  const v = r.stringMap('vars') ?? {};
  for (const k of Object.keys(v))
    if (!VAR_NAME.test(k)) r.fail(['vars', k], `invalid variable name "${k}"`);
  return v;
}

/** Reads a namespace field, checking it is a DNS label. */
export function readNamespace(r: FieldReader, key = 'namespace'): string | undefined {
  const ns = r.str(key);
  if (ns !== undefined && !isDnsLabel(ns))
    r.fail([key], `${r.at(key)} "${ns}" is not a valid namespace name`);
  return ns;
}

/** Parses one target; `repoPath` turns a path relative to the bundle into a repo path (or fails). */
export function parseTarget(
  t: FieldReader,
  index: number,
  repoPath: (r: FieldReader, key: string, rel: string) => string,
): TargetDef {
  t.only([
    'clusterSelector',
    'clusterName',
    'clusterGroup',
    'vars',
    'doNotDeploy',
    'namespace',
    'patches',
    'helm',
  ]);
  const clusterName = t.str('clusterName');
  if (clusterName !== undefined && !isDnsLabel(clusterName))
    t.fail(['clusterName'], `invalid cluster name "${clusterName}"`);
  const clusterGroup = t.str('clusterGroup');
  if (clusterGroup !== undefined && !isDnsLabel(clusterGroup))
    t.fail(['clusterGroup'], `invalid cluster group name "${clusterGroup}"`);
  const selector = readSelector(t, 'clusterSelector');
  if (!selector && clusterName === undefined && clusterGroup === undefined) {
    t.fail(
      [],
      `${t.at()} needs clusterSelector, clusterName or clusterGroup (use "clusterSelector: {}" for every cluster)`,
    );
  }
  const patches = t.list('patches').map((p) => parsePatch(p));
  const helmReader = t.child('helm');
  const helm = helmReader ? parseHelm(helmReader, repoPath, true) : undefined;
  const refs = new Set<string>();
  for (const p of patches)
    for (const r of refsInValue(p.jsonPatch ?? p.merge, p.file, p.line)) refs.add(r);
  if (helmReader && helm?.values)
    for (const r of refsInValue(helm.values, helmReader.file(), helmReader.lineOf(['values'])))
      refs.add(r);
  for (const f of helm?.valuesFiles ?? [])
    for (const r of refsInValue(f, t.file(), t.lineOf(['helm']))) refs.add(r);
  return {
    index,
    selector,
    clusterName,
    clusterGroup,
    vars: readVars(t),
    doNotDeploy: t.bool('doNotDeploy') ?? false,
    namespace: readNamespace(t),
    patches,
    helm,
    refs: [...refs].sort(),
    line: t.lineOf([]),
  };
}

/** Reads a Kubernetes label selector field, or undefined when absent. */
export function readSelector(r: FieldReader, key: string): Selector | undefined {
  const sel = r.child(key);
  if (!sel) return undefined;
  sel.only(['matchLabels', 'matchExpressions']);
  try {
    return compileLabelSelector(r.raw(key) as LabelSelector, r.at(key));
  } catch (err) {
    return sel.fail([], (err as Error).message, err);
  }
}

function parsePatch(p: FieldReader): PatchDef {
  p.only(['target', 'merge', 'jsonPatch']);
  const tr =
    p.child('target') ??
    p.fail([], `${p.at('target')} is required ({ kind, name, namespace?, group? })`);
  tr.only(['kind', 'name', 'namespace', 'group']);
  const selector: PatchSelector = {
    kind: tr.str('kind') ?? tr.fail([], `${tr.at('kind')} is required`),
    name: tr.str('name') ?? tr.fail([], `${tr.at('name')} is required`),
  };
  const ns = tr.str('namespace');
  if (ns !== undefined) selector.namespace = ns;
  const group = tr.str('group');
  if (group !== undefined) selector.group = group;
  const merge = p.raw('merge');
  const json = p.raw('jsonPatch');
  if ((merge === undefined) === (json === undefined))
    p.fail([], `${p.at()} needs exactly one of merge (RFC 7386) or jsonPatch (RFC 6902)`);
  if (merge !== undefined && !isRecord(merge))
    p.fail(['merge'], `${p.at('merge')} must be a mapping`);
  return {
    selector,
    merge: merge ?? undefined,
    jsonPatch: json === undefined ? undefined : p.list('jsonPatch').map((op) => parseOp(op)),
    file: p.file(),
    line: p.lineOf([]),
    at: p.at(),
  };
}

function parseOp(r: FieldReader): JsonPatchOp {
  r.only(['op', 'path', 'value', 'from']);
  const op = r.str('op') ?? r.fail([], `${r.at('op')} is required`);
  if (!OPS.includes(op))
    r.fail(['op'], `${r.at('op')} must be one of ${OPS.join(', ')}, not "${op}"`);
  const pointer = (key: string): string => {
    const v = r.str(key) ?? r.fail([], `${r.at(key)} is required for "${op}"`);
    try {
      pointerTokens(v);
    } catch (err) {
      r.fail([key], `${r.at(key)}: ${(err as Error).message}`, err);
    }
    return v;
  };
  const out: JsonPatchOp = { op: op as JsonPatchOp['op'], path: pointer('path') };
  if (op === 'move' || op === 'copy') out.from = pointer('from');
  if (op === 'add' || op === 'replace' || op === 'test') {
    if (!Object.prototype.hasOwnProperty.call(r.rawObject(), 'value'))
      r.fail([], `${r.at('value')} is required for "${op}"`);
    out.value = r.raw('value');
  }
  return out;
}

/** Parses a `helm:` block (bundle source, or a target's override when `target`). */
export function parseHelm(
  h: FieldReader,
  repoPath: (r: FieldReader, key: string, rel: string) => string,
  target = false,
): HelmOverrides {
  h.only(['chart', 'repo', 'version', 'releaseName', 'values', 'valuesFiles']);
  const out: HelmOverrides = { line: h.lineOf([]) };
  const chart = h.str('chart');
  const repo = h.str('repo');
  const version = h.str('version');
  if (target && repo !== undefined)
    h.fail(
      ['repo'],
      `${h.at('repo')}: a target may change the chart's version, not its repository`,
    );
  if (repo !== undefined || chart?.startsWith('oci://')) {
    if (target)
      h.fail(['chart'], `${h.at('chart')}: a target may change the chart's version, not the chart`);
    if (chart === undefined)
      h.fail([], `${h.at('chart')} is required with repo (the chart's name in the repository)`);
    const src = chartSource(repo, chart as string, version);
    if (typeof src === 'string') {
      const key = /^version /.test(src)
        ? 'version'
        : repo !== undefined && !/^chart /.test(src)
          ? 'repo'
          : 'chart';
      h.fail([key], `${h.at(key)}: ${src}`);
    }
    out.remote = src as ChartSource;
  } else if (chart !== undefined) {
    out.chart = repoPath(h, 'chart', chart);
  }
  if (version !== undefined && !out.remote) {
    if (!versionRange(version))
      h.fail(
        ['version'],
        `${h.at('version')}: "${version}" is neither a version nor a semver range`,
      );
    out.version = version;
  }
  const releaseName = h.str('releaseName');
  if (releaseName !== undefined) {
    if (!isDnsLabel(releaseName))
      h.fail(['releaseName'], `${h.at('releaseName')} "${releaseName}" must be a DNS label`);
    out.releaseName = releaseName;
  }
  const values = h.raw('values');
  if (values !== undefined && values !== null) {
    if (!isRecord(values)) h.fail(['values'], `${h.at('values')} must be a mapping`);
    out.values = values as Record<string, unknown>;
  }
  const files = h.raw('valuesFiles');
  if (files !== undefined && files !== null) {
    if (!Array.isArray(files) || !files.every((f) => typeof f === 'string' && f !== '')) {
      h.fail(['valuesFiles'], `${h.at('valuesFiles')} must be a list of paths`);
    }
    // A path may hold variables (values-${cluster.labels.env}.yaml); it is checked again once filled.
    out.valuesFiles = (files as string[]).map((f) => repoPath(h, 'valuesFiles', f));
  }
  return out;
}
