// Where things are in a fleet repo: clusters/<name>.yaml, clusterGroups/<name>.yaml and
// bundles/<name>/bundle.yaml.
import { isDnsLabel } from '@flotilla/common';
import { FLEET_ROOTS } from '../source/tree.js';
import type { RepoTree } from '../source/tree.js';
import type { RenderError } from './types.js';

/** The files that declare clusters and bundles, found by path alone. */
export interface RepoLayout {
  /** Cluster name → its file. */
  clusters: Map<string, string>;
  /** Bundle name → its bundle.yaml. */
  bundles: Map<string, string>;
  /** Cluster group name → its file (clusterGroups/<name>.yaml). */
  groups: Map<string, string>;
  errors: RenderError[];
  /** Names with a problem found while scanning (they get no fresh render). */
  brokenClusters: Set<string>;
  brokenBundles: Set<string>;
  brokenGroups: Set<string>;
}

const YAML_EXT = /\.ya?ml$/;

/** True for a file render reads as YAML. */
export function isYamlFile(path: string): boolean {
  return YAML_EXT.test(path);
}

/** Finds cluster and bundle files; problems become errors, not exceptions. */
export function scanLayout(tree: RepoTree): RepoLayout {
  const out: RepoLayout = {
    clusters: new Map(),
    bundles: new Map(),
    groups: new Map(),
    errors: [],
    brokenClusters: new Set(),
    brokenBundles: new Set(),
    brokenGroups: new Set(),
  };
  const bundleDirs = new Set<string>();
  for (const path of tree.paths()) {
    const parts = path.split('/');
    if (parts[0] === 'clusters' && parts.length === 2 && isYamlFile(path))
      addCluster(out, path, parts[1] as string);
    if (parts[0] === 'clusterGroups' && parts.length === 2 && isYamlFile(path))
      addGroup(out, path, parts[1] as string);
    if (parts[0] === 'bundles' && parts.length >= 3) {
      bundleDirs.add(parts[1] as string);
      if (parts.length === 3 && parts[2] === 'bundle.yaml')
        out.bundles.set(parts[1] as string, path);
    }
  }
  for (const dir of bundleDirs) {
    if (out.bundles.has(dir)) continue;
    out.errors.push({
      bundle: dir,
      file: `bundles/${dir}`,
      message: `bundles/${dir}: has no bundle.yaml`,
    });
  }
  for (const name of out.bundles.keys()) {
    if (isDnsLabel(name)) continue;
    out.errors.push({
      bundle: name,
      file: `bundles/${name}`,
      message: `bundle name "${name}" is not a DNS label (lower-case letters, digits, '-')`,
    });
    out.bundles.delete(name);
  }
  // A symlink elsewhere (e.g. docs/) matters only when a bundle refers to it, and then
  // that bundle reports it (kustomize-inputs.ts).
  for (const r of tree.rejected)
    if (FLEET_ROOTS.includes(r.path.split('/')[0] as string))
      attributeRejected(out, r.path, r.reason);
  return out;
}

function addCluster(out: RepoLayout, path: string, base: string): void {
  const name = base.replace(YAML_EXT, '');
  if (!isDnsLabel(name)) {
    out.errors.push({
      file: path,
      message: `${path}: cluster name "${name}" is not a DNS label (lower-case letters, digits, '-')`,
    });
    return;
  }
  const other = out.clusters.get(name);
  if (other) {
    out.errors.push({
      cluster: name,
      file: path,
      message: `${path}: cluster "${name}" is also declared in ${other}`,
    });
    out.brokenClusters.add(name);
    return;
  }
  out.clusters.set(name, path);
}

function addGroup(out: RepoLayout, path: string, base: string): void {
  const name = base.replace(YAML_EXT, '');
  if (!isDnsLabel(name)) {
    out.errors.push({
      file: path,
      message: `${path}: cluster group name "${name}" is not a DNS label (lower-case letters, digits, '-')`,
    });
    return;
  }
  const other = out.groups.get(name);
  if (other) {
    out.errors.push({
      file: path,
      message: `${path}: cluster group "${name}" is also declared in ${other}`,
    });
    out.brokenGroups.add(name);
    return;
  }
  out.groups.set(name, path);
}

function attributeRejected(out: RepoLayout, path: string, reason: string): void {
  const parts = path.split('/');
  const message = `${path}: ${reason}`;
  if (parts[0] === 'bundles' && parts[1]) {
    out.errors.push({ bundle: parts[1], file: path, message });
    out.brokenBundles.add(parts[1]);
  } else if (parts[0] === 'clusterGroups' && parts[1] && parts.length === 2) {
    out.errors.push({ file: path, message });
    out.brokenGroups.add(parts[1].replace(YAML_EXT, ''));
  } else if (parts[0] === 'clusters' && parts[1] && parts.length === 2) {
    const name = parts[1].replace(YAML_EXT, '');
    out.errors.push({ cluster: name, file: path, message });
    out.brokenClusters.add(name);
  } else {
    out.errors.push({ file: path, message });
  }
}
