// The files a `kustomize build` may read: the overlay's directory and, following its
// kustomization files, every base, component and file they refer to, anywhere in the
// fleet repo. Only these files are copied for the build and digested for its cache key,
// so the build cannot read a file the key does not cover, and a change to a shared base
// re-runs the builds of the bundles that use it and no others. References that leave the
// repository, remote bases and symlinks are refused here, before kustomize runs.
import { posix } from 'node:path';
import { ValidationError } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { isRecord, parseSpecDocument } from './yaml-spec.js';
import type { SpecDocument } from './yaml-spec.js';

/** File names kustomize looks for in a directory, in its order. */
export const KUSTOMIZATION_FILES: readonly string[] = [
  'kustomization.yaml',
  'kustomization.yml',
  'Kustomization',
];

/** Kustomization directories one build may visit (bases of bases…): a bound on hostile input. */
export const MAX_KUSTOMIZATIONS = 1000;

/** What a reference names: a file, or a directory (a base or component, or a plugin config dir). */
type RefKind = 'file' | 'dir-or-file';

/** One path a kustomization refers to, with where it is written. */
interface Ref {
  value: string;
  field: (string | number)[];
  kind: RefKind;
}

/** The kustomization file of a directory ("" = the root), or undefined. */
export function kustomizationFile(tree: RepoTree, dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((f) => (dir === '' ? f : `${dir}/${f}`)).find(
    (p) => tree.read(p) !== undefined,
  );
}

/**
 * Every file a build of `dir` may read, sorted: the whole directory of each kustomization
 * it reaches, and the single files they refer to. Throws ValidationError at the
 * kustomization file and line of a reference that leaves the repository, is remote, or
 * goes through a symlink or submodule.
 */
export function kustomizeInputs(tree: RepoTree, dir: string): string[] {
  const files = new Set<string>();
  const visited = new Set<string>();
  const queue = [dir];
  const rejected = tree.rejected;
  for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
    if (visited.has(next)) continue;
    if (visited.size >= MAX_KUSTOMIZATIONS) {
      throw new ValidationError(
        `a kustomize build reaches more than ${MAX_KUSTOMIZATIONS} kustomization directories`,
        { file: kustomizationFile(tree, dir) ?? dir },
      );
    }
    visited.add(next);
    for (const p of subtree(tree, next)) files.add(p);
    const bad = rejected.find((r) => within(r.path, next));
    const kfile = kustomizationFile(tree, next);
    if (bad && kfile) throw new ValidationError(`${bad.path}: ${bad.reason}`, { file: kfile });
    if (!kfile) continue;
    const doc = parseSpecDocument((tree.read(kfile) as Buffer).toString('utf8'), kfile);
    refuseHelmCharts(doc);
    for (const ref of references(doc.value)) {
      const target = resolve(tree, doc, next, ref);
      if (target === undefined) continue;
      if (target.dir) queue.push(target.path);
      else files.add(target.path);
    }
  }
  return [...files].sort(compare);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function within(path: string, dir: string): boolean {
  return dir === '' || path === dir || path.startsWith(`${dir}/`);
}

/** Files under dir, from the sorted path list (binary search, then a scan of the range). */
function subtree(tree: RepoTree, dir: string): string[] {
  const all = tree.paths();
  if (dir === '') return [...all];
  const prefix = `${dir}/`;
  let lo = 0;
  let hi = all.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((all[mid] as string) < prefix) lo = mid + 1;
    else hi = mid;
  }
  const out: string[] = [];
  for (let i = lo; i < all.length && (all[i] as string).startsWith(prefix); i++)
    out.push(all[i] as string);
  return out;
}

// Paths kustomize v5 reads, by field. Plugin configs (generators, transformers,
// validators) and patches may also be inline YAML, which is not a path.
function references(k: Record<string, unknown>): Ref[] {
  const refs: Ref[] = [];
  const list = (key: string, kind: RefKind, inlineAllowed = false): void => {
    const v = k[key];
    if (!Array.isArray(v)) return;
    v.forEach((item, i) => {
      if (typeof item !== 'string') return;
      if (inlineAllowed && /[\n:]/.test(item.trim()) && !looksRemote(item)) return;
      refs.push({ value: item, field: [key, i], kind });
    });
  };
  const paths = (key: string): void => {
    const v = k[key];
    if (!Array.isArray(v)) return;
    v.forEach((item, i) => {
      if (isRecord(item) && typeof item.path === 'string')
        refs.push({ value: item.path, field: [key, i, 'path'], kind: 'file' });
    });
  };
  list('resources', 'dir-or-file');
  list('bases', 'dir-or-file');
  list('components', 'dir-or-file');
  list('crds', 'file');
  list('configurations', 'file');
  list('generators', 'dir-or-file', true);
  list('transformers', 'dir-or-file', true);
  list('validators', 'dir-or-file', true);
  list('patchesStrategicMerge', 'file', true);
  paths('patches');
  paths('patchesJson6902');
  paths('replacements');
  for (const gen of ['configMapGenerator', 'secretGenerator']) {
    const v = k[gen];
    if (!Array.isArray(v)) continue;
    v.forEach((g, i) => {
      if (!isRecord(g)) return;
      if (Array.isArray(g.files))
        g.files.forEach((f, j) => {
          // "key=path" or "path".
          if (typeof f === 'string')
            refs.push({
              value: f.slice(f.indexOf('=') + 1),
              field: [gen, i, 'files', j],
              kind: 'file',
            });
        });
      if (Array.isArray(g.envs))
        g.envs.forEach((f, j) => {
          if (typeof f === 'string')
            refs.push({ value: f, field: [gen, i, 'envs', j], kind: 'file' });
        });
      if (typeof g.env === 'string')
        refs.push({ value: g.env, field: [gen, i, 'env'], kind: 'file' });
    });
  }
  const openapi = k.openapi;
  if (isRecord(openapi) && typeof openapi.path === 'string')
    refs.push({ value: openapi.path, field: ['openapi', 'path'], kind: 'file' });
  return refs;
}

// kustomize inflates `helmCharts` only with --enable-helm, which the hub never passes (the
// chart would be fetched over the network at build time): kustomize's own refusal dumps
// the chart's config and asks for a flag the user cannot give, so say it plainly here.
function refuseHelmCharts(doc: SpecDocument): void {
  const charts = doc.value.helmCharts;
  if (!Array.isArray(charts) || charts.length === 0) return;
  throw new ValidationError(
    "helmCharts: Kustomize Helm chart inflation is not supported (the hub runs kustomize without --enable-helm): deploy the chart as a Helm bundle (spec.source.helm) and use targets' patches for what the overlay changed",
    { file: doc.file, line: doc.lineOf(['helmCharts']) },
  );
}

/**
 * True for what kustomize would fetch: a URL, go-getter syntax, an scp-like Git address,
 * or a "host/org/repo//dir?ref=" form.
 */
export function looksRemote(ref: string): boolean {
  return (
    /^[a-z][a-z0-9+.-]*::/i.test(ref) ||
    /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) ||
    /^[^/@\s]+@[^/:\s]+:/.test(ref) ||
    /^(github\.com|gitlab\.com|bitbucket\.org|gist\.github\.com|ssh\.dev\.azure\.com|dev\.azure\.com)\//i.test(
      ref,
    ) ||
    /[?&](ref|version|submodules|timeout)=/.test(ref)
  );
}

/** A reference as a repo path; undefined when it names nothing (kustomize reports that). */
function resolve(
  tree: RepoTree,
  doc: SpecDocument,
  dir: string,
  ref: Ref,
): { path: string; dir: boolean } | undefined {
  const at = (): string =>
    ref.field.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  const fail = (problem: string): never => {
    throw new ValidationError(`${at()} "${ref.value}" ${problem}`, {
      file: doc.file,
      line: doc.lineOf(ref.field),
    });
  };
  const value = ref.value.trim();
  if (value === '') return undefined;
  if (posix.isAbsolute(value))
    fail('is an absolute path: paths in a kustomization are relative to its directory');
  const joined = posix.normalize(posix.join(dir === '' ? '.' : dir, value));
  const path = joined === '.' ? '' : joined.replace(/\/$/, '');
  const exists = tree.read(path) !== undefined;
  const isDir = !exists && (path === '' || subtree(tree, path).length > 0);
  if (!exists && !isDir && looksRemote(value))
    fail(
      'is a remote base: the hub builds Kustomize bundles without network access; copy it into the fleet repo',
    );
  if (path === '..' || path.startsWith('../'))
    fail("leaves the fleet repository (its root directory: the source's path)");
  const bad = tree.rejected.find((r) => within(path, r.path));
  if (bad) fail(`is not usable: ${bad.path}: ${bad.reason}`);
  if (exists) return { path, dir: false };
  if (isDir && ref.kind === 'dir-or-file') return { path, dir: true };
  return undefined;
}
