// One bundle: its inputs gathered, parsed and digested once per version, then rendered
// per set of cluster-specific inputs (the variables it actually uses, its namespace).
import { posix } from 'node:path';
import { ValidationError, bundleDigest, digestOf, objectKey } from '@flotilla/common';
import type { BundleChart, BundleDesiredState, KubeObject } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { kustomizeInputs } from './kustomize-inputs.js';
import { isYamlFile } from './layout.js';
import { BundleBudget } from './limits.js';
import type { RenderLimits } from './limits.js';
import { checkObject, parseManifestDocs, stampObject } from './manifests.js';
import type { ManifestDoc } from './manifests.js';
import type { BundleDef } from './spec.js';
import { splitHooks } from './hooks.js';
import type { SourcedObject } from './hooks.js';
import { namespaceToCreate } from './namespace.js';
import { applyPatches } from './patch.js';
import type { JsonPatchOp, PatchDef } from './patch.js';
import {
  compileTemplate,
  fillValue,
  hasPlaceholder,
  placeholderIndexes,
  substituteInValue,
} from './vars.js';
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
  /** Helm bundles: the input files, materialized for each helm run. */
  paths?: readonly string[];
  /** Helm output of a chart from a repository or registry: which version it was. */
  chart?: BundleChart;
}

/** A rendered bundle with what assembly needs about it. */
export interface RenderedBundle {
  state: BundleDesiredState;
  /** objectKey of every object, in the state's order. */
  keys: string[];
  /** Size of the bundle's JSON. */
  bytes: number;
}

/**
 * The files a bundle version depends on, sorted by path. Plain: the YAML files of the
 * source directory (bundle.yaml excluded). Kustomize: every file the build may read,
 * bases and components anywhere in the repo included (kustomizeInputs). Helm: every
 * file of the bundle directory and the chart directory (templates, helpers, values).
 * Throws ValidationError for a kustomization that refers outside the repository.
 */
export function manifestPaths(tree: RepoTree, def: BundleDef): string[] {
  const under = (dir: string): ((p: string) => boolean) =>
    dir === '' ? () => true : (p) => p.startsWith(`${dir}/`);
  const inSource = under(def.sourceDir);
  if (def.sourceType === 'plain')
    return tree.paths().filter((p) => inSource(p) && isYamlFile(p) && p !== def.file);
  if (def.sourceType === 'kustomize') return kustomizeInputs(tree, def.sourceDir);
  const inBundle = under(posix.dirname(def.file));
  return tree.paths().filter((p) => inSource(p) || inBundle(p));
}

/** Digest over a bundle's inputs: equal digests render equal output for equal cluster inputs. */
export function inputDigest(
  bundleFileDigest: string,
  manifests: readonly { path: string; digest: string }[],
): string {
  return digestOf([bundleFileDigest, ...manifests.map((m) => `${m.path}\0${m.digest}`)].join('\n'));
}

/** A text of manifests and whether variables are substituted in it (opt-in; never in Helm output). */
export interface ManifestText {
  /** Repo path, or a description such as "bundles/x/overlay (kustomize build output)". */
  path: string;
  text: string;
  substitute: boolean;
}

/** Parses a plain bundle's files; throws ValidationError with file:line. */
export function prepareBundle(
  tree: RepoTree,
  def: BundleDef,
  digest: string,
  paths: readonly string[],
  limits: RenderLimits,
): PreparedBundle {
  if (paths.length === 0) {
    throw new ValidationError(`spec.source.path "${def.sourceDir}" holds no .yaml or .yml files`, {
      file: def.file,
    });
  }
  return prepareTexts(
    def,
    digest,
    paths.map((path) => ({
      path,
      text: (tree.read(path) as Buffer).toString('utf8'),
      substitute: def.substitute,
    })),
    limits,
  );
}

/**
 * Parses a bundle version's manifests once, and checks the documents that use no
 * variable, so their errors are reported once for the bundle rather than per cluster.
 * Throws ValidationError with file:line, also for the first document over a limit.
 */
export function prepareTexts(
  def: BundleDef,
  digest: string,
  texts: readonly ManifestText[],
  limits: RenderLimits,
): PreparedBundle {
  const docs: PreparedDoc[] = [];
  const refs = new Set<string>();
  const budget = new BundleBudget(limits);
  for (const { path, text, substitute } of texts) {
    const template = substitute ? compileTemplate(text, path) : { text, occurrences: [] };
    for (const doc of parseManifestDocs(template.text, path, substitute, budget)) {
      const used = new Set<number>();
      if (substitute) collectPlaceholders(doc.value, used);
      for (const i of used) refs.add((template.occurrences[i] as { ref: string }).ref);
      docs.push({
        doc,
        template,
        object: used.size === 0 ? checkObject(doc.value, path, doc.line) : undefined,
      });
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
export function renderBundle(
  b: PreparedBundle,
  scope: VarScope,
  namespace: string | undefined,
  patches: readonly PatchDef[] = [],
): RenderedBundle {
  let objects = b.docs.map(({ doc, template, object: fixed }) =>
    stampObject(
      fixed ?? checkObject(fillValue(doc.value, template, doc.file, scope), doc.file, doc.line),
      b.def.name,
      namespace,
    ),
  );
  if (patches.length > 0) {
    const filled = patches.map((p) => fillPatch(p, scope));
    objects = applyPatches(objects, filled).map((o, i) => {
      const doc = (b.docs[i] as PreparedDoc).doc;
      // A patch may have dropped a required field or the label: check and stamp again.
      return stampObject(checkObject(o, doc.file, doc.line), b.def.name, namespace);
    });
  }
  const seen = new Map<string, ManifestDoc>();
  const items: SourcedObject[] = [];
  objects.forEach((object, i) => {
    const doc = (b.docs[i] as PreparedDoc).doc;
    const key = objectKey(object);
    const first = seen.get(key);
    if (first) {
      throw new ValidationError(
        `object ${key} is defined twice in the bundle (first at ${first.file}:${first.line})`,
        {
          file: doc.file,
          line: doc.line,
        },
      );
    }
    seen.set(key, doc);
    items.push({ key, object, file: doc.file, line: doc.line });
  });
  // Sorted by identity, not by file order, so moving an object between files changes nothing.
  items.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
  // Helm hooks are run by the agent at their phases, never applied as ordinary objects.
  const split = splitHooks(items);
  const plain = split.objects.map((i) => i.object);
  const ns = namespaceToCreate(b.def, namespace, plain);
  const body = {
    name: b.def.name,
    drift: b.def.drift,
    forceConflicts: b.def.forceConflicts,
    ...(b.def.allowMassPrune ? { allowMassPrune: true } : {}),
    objects: plain,
    ...(split.hooks.length > 0 ? { hooks: split.hooks.map((h) => h.spec) } : {}),
    ...(ns ? { namespace: ns } : {}),
    ...(b.def.dependsOn.length > 0 ? { dependsOn: b.def.dependsOn.map((d) => d.name) } : {}),
    ...(b.chart ? { chart: b.chart } : {}),
  };
  const state: BundleDesiredState = { ...body, digest: bundleDigest(body) };
  const keys = [...split.objects, ...split.hooks].map((i) => i.key);
  return { state, keys, bytes: Buffer.byteLength(JSON.stringify(state)) };
}

function fillPatch(p: PatchDef, scope: VarScope): PatchDef {
  if (p.jsonPatch)
    return {
      ...p,
      jsonPatch: substituteInValue(p.jsonPatch, p.file, p.line, scope) as JsonPatchOp[],
    };
  return { ...p, merge: substituteInValue(p.merge, p.file, p.line, scope) };
}
