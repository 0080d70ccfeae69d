// One bundle: its inputs gathered, parsed and digested once per version, then rendered
// per set of cluster-specific inputs (the variables it actually uses, its namespace).
import { ValidationError, bundleDigest, digestOf, objectKey } from '@flotilla/common';
import type { BundleDesiredState, KubeObject } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { isYamlFile } from './layout.js';
import { checkObject, parseManifestDocs, stampObject } from './manifests.js';
import type { ManifestDoc } from './manifests.js';
import type { BundleDef } from './spec.js';
import { compileTemplate, fillValue, hasPlaceholder, placeholderIndexes } from './vars.js';
import type { Template, VarScope } from './vars.js';

/** A parsed manifest document of a bundle version. */
interface PreparedDoc {
  doc: ManifestDoc;
  template: Template;
  /** The checked object when the document uses no variable (the same for every cluster). */
  object: KubeObject | undefined;
}

/** A bundle version ready to render: definition, parsed documents, variables used. */
export interface PreparedBundle {
  def: BundleDef;
  /** Digest of bundle.yaml and every manifest (path and content). */
  inputDigest: string;
  docs: PreparedDoc[];
  /** Variables the documents use, sorted: the only cluster inputs that change the output. */
  refs: string[];
}

/** A rendered bundle with what assembly needs about it. */
export interface RenderedBundle {
  state: BundleDesiredState;
  /** objectKey of every object, in the state's order. */
  keys: string[];
  /** Size of the bundle's JSON. */
  bytes: number;
}

/** The manifest files of a bundle's source directory, sorted by path; bundle.yaml itself excluded. */
export function manifestPaths(tree: RepoTree, def: BundleDef): string[] {
  const prefix = def.sourceDir === '' ? '' : `${def.sourceDir}/`;
  return tree.paths().filter((p) => p.startsWith(prefix) && isYamlFile(p) && p !== def.file);
}

/** Digest over a bundle's inputs: equal digests render equal output for equal cluster inputs. */
export function inputDigest(bundleFileDigest: string, manifests: readonly { path: string; digest: string }[]): string {
  return digestOf([bundleFileDigest, ...manifests.map((m) => `${m.path}\0${m.digest}`)].join('\n'));
}

/**
 * Parses a bundle version's manifests once, and checks the documents that use no
 * variable, so their errors are reported once for the bundle rather than per cluster.
 * Throws ValidationError with file:line.
 */
export function prepareBundle(tree: RepoTree, def: BundleDef, digest: string, paths: readonly string[]): PreparedBundle {
  if (paths.length === 0) {
    throw new ValidationError(`spec.source.path "${def.sourceDir}" holds no .yaml or .yml files`, { file: def.file });
  }
  const docs: PreparedDoc[] = [];
  const refs = new Set<string>();
  for (const path of paths) {
    const template = compileTemplate((tree.read(path) as Buffer).toString('utf8'), path);
    for (const doc of parseManifestDocs(template.text, path)) {
      const used = new Set<number>();
      collectPlaceholders(doc.value, used);
      for (const i of used) refs.add((template.occurrences[i] as { ref: string }).ref);
      docs.push({ doc, template, object: used.size === 0 ? checkObject(doc.value, path, doc.line) : undefined });
    }
  }
  return { def, inputDigest: digest, docs, refs: [...refs].sort() };
}

function collectPlaceholders(v: unknown, into: Set<number>): void {
  if (typeof v === 'string') {
    if (hasPlaceholder(v)) for (const i of placeholderIndexes(v)) into.add(i);
  } else if (Array.isArray(v)) {
    for (const x of v) collectPlaceholders(x, into);
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      collectPlaceholders(k, into);
      collectPlaceholders(x, into);
    }
  }
}

/** Renders a bundle for one set of cluster inputs; throws ValidationError with file:line. */
export function renderBundle(b: PreparedBundle, scope: VarScope, namespace: string | undefined): RenderedBundle {
  const seen = new Map<string, ManifestDoc>();
  const items: { key: string; object: KubeObject }[] = [];
  for (const { doc, template, object: fixed } of b.docs) {
    const raw = fixed ?? checkObject(fillValue(doc.value, template, doc.file, scope), doc.file, doc.line);
    const object = stampObject(raw, b.def.name, namespace);
    const key = objectKey(object);
    const first = seen.get(key);
    if (first) {
      throw new ValidationError(`object ${key} is defined twice in the bundle (first at ${first.file}:${first.line})`, {
        file: doc.file,
        line: doc.line,
      });
    }
    seen.set(key, doc);
    items.push({ key, object });
  }
  // Sorted by identity, not by file order, so moving an object between files changes nothing.
  items.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  const body = { name: b.def.name, drift: b.def.drift, forceConflicts: b.def.forceConflicts, objects: items.map((i) => i.object) };
  const state: BundleDesiredState = { ...body, digest: bundleDigest(body) };
  return { state, keys: items.map((i) => i.key), bytes: Buffer.byteLength(JSON.stringify(state)) };
}
