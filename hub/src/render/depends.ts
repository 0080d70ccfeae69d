// Ordering between bundles: `spec.dependsOn: [bundle, …]`. The renderer checks the graph
// (unknown names and cycles are errors of the bundles that name them, at the entry's line)
// and that a dependency is deployed wherever its dependent is; the agent holds a bundle
// until its dependencies are applied and healthy there (agent/src/sync/dependencies.ts).
import { ValidationError, isDnsLabel } from '@flotilla/common';
import type { FieldReader } from './yaml-spec.js';
import type { RenderError } from './types.js';

/** One entry of spec.dependsOn, with its line in bundle.yaml. */
export interface DependencyRef {
  name: string;
  line: number;
  /** Position in the list, for messages ("spec.dependsOn[1]"). */
  index: number;
}

/** Reads spec.dependsOn (a list of bundle names); throws ValidationError at the entry's line. */
export function readDependsOn(spec: FieldReader, self: string): DependencyRef[] {
  const raw = spec.raw('dependsOn');
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw))
    spec.fail(['dependsOn'], 'spec.dependsOn must be a list of bundle names');
  const seen = new Set<string>();
  return (raw as unknown[]).map((name, index) => {
    const at = (): number => spec.lineOf(['dependsOn', index]);
    const fail = (message: string): never => {
      throw new ValidationError(`spec.dependsOn[${index}]: ${message}`, {
        file: spec.file(),
        line: at(),
      });
    };
    if (typeof name !== 'string' || !isDnsLabel(name))
      fail(`must be a bundle name (a DNS label), not ${JSON.stringify(name)}`);
    const n = name as string;
    if (n === self) fail(`bundle "${self}" cannot depend on itself`);
    if (seen.has(n)) fail(`"${n}" is listed twice`);
    seen.add(n);
    return { name: n, line: at(), index };
  });
}

/** What the graph check needs of a bundle. */
export interface DependencyNode {
  name: string;
  file: string;
  dependsOn: readonly DependencyRef[];
}

/**
 * Checks every bundle's dependsOn against the bundles that exist (`known`: every bundle
 * directory, broken ones included) and for cycles. Returns one error per offending bundle,
 * at the line of the entry at fault; those bundles are then broken (not rendered fresh).
 */
export function checkDependencies(
  nodes: readonly DependencyNode[],
  known: ReadonlySet<string>,
): Map<string, RenderError> {
  const errors = new Map<string, RenderError>();
  const fail = (n: DependencyNode, d: DependencyRef, message: string): void => {
    if (errors.has(n.name)) return;
    errors.set(n.name, {
      bundle: n.name,
      file: n.file,
      line: d.line,
      message: `${n.file}:${d.line}: spec.dependsOn[${d.index}]: ${message}`,
    });
  };
  const byName = new Map(nodes.map((n) => [n.name, n]));
  for (const n of nodes) {
    for (const d of n.dependsOn) {
      if (!known.has(d.name))
        fail(n, d, `bundle "${d.name}" does not exist (no bundles/${d.name}/bundle.yaml)`);
    }
  }
  // Depth-first search; a back edge closes a cycle, reported on every bundle in it.
  const state = new Map<string, 'open' | 'done'>();
  const path: { node: DependencyNode; via: DependencyRef | undefined }[] = [];
  const visit = (n: DependencyNode): void => {
    state.set(n.name, 'open');
    for (const d of n.dependsOn) {
      const next = byName.get(d.name);
      if (!next) continue;
      path.push({ node: n, via: d });
      if (state.get(next.name) === 'open') reportCycle(next.name);
      else if (!state.has(next.name)) visit(next);
      path.pop();
    }
    state.set(n.name, 'done');
  };
  const reportCycle = (start: string): void => {
    const from = path.findIndex((p) => p.node.name === start);
    const cycle = path.slice(from);
    const names = [...cycle.map((p) => p.node.name), start].join(' → ');
    for (const p of cycle) fail(p.node, p.via as DependencyRef, `dependency cycle: ${names}`);
  };
  for (const n of [...nodes].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
    if (!state.has(n.name)) visit(n);
  return errors;
}

/**
 * The first dependency of a bundle that is not deployed to a cluster (no target of it
 * matches there, or doNotDeploy), as an error at the entry's line; undefined when all are.
 */
export function missingDependency(
  n: DependencyNode,
  cluster: string,
  deployed: (bundle: string) => boolean,
): RenderError | undefined {
  const d = n.dependsOn.find((x) => !deployed(x.name));
  if (!d) return undefined;
  return {
    bundle: n.name,
    cluster,
    file: n.file,
    line: d.line,
    message: `${n.file}:${d.line}: spec.dependsOn[${d.index}]: bundle "${d.name}" is not deployed to cluster "${cluster}" (none of its targets matches there), so "${n.name}" would wait for it forever`,
  };
}
