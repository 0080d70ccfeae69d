// Plain YAML manifests: parse, check the fields every object needs, then stamp the
// bundle label and the default namespace.
import { LineCounter, visit } from 'yaml';
import { BUNDLE_LABEL, ValidationError } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import type { BundleBudget } from './limits.js';
import { PLAIN_MARK, hasPlaceholder } from './vars.js';
import { composeDocuments, isRecord, yamlFailure } from './yaml-spec.js';

/**
 * Kinds that are never namespaced. Without API discovery the renderer cannot know a
 * custom resource's scope, so every other kind counts as namespaced; a cluster-scoped
 * custom resource must not rely on the default namespace (set none and the agent's
 * discovery decides).
 */
export const CLUSTER_SCOPED_KINDS: ReadonlySet<string> = new Set([
  'APIService',
  'CSIDriver',
  'CSINode',
  'CertificateSigningRequest',
  'ClusterRole',
  'ClusterRoleBinding',
  'ComponentStatus',
  'CustomResourceDefinition',
  'FlowSchema',
  'IngressClass',
  'MutatingWebhookConfiguration',
  'Namespace',
  'Node',
  'PersistentVolume',
  'PriorityClass',
  'PriorityLevelConfiguration',
  'RuntimeClass',
  'StorageClass',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'ValidatingWebhookConfiguration',
  'VolumeAttachment',
]);

/** One parsed manifest document; `value` may hold variable placeholders. */
export interface ManifestDoc {
  value: unknown;
  file: string;
  /** 1-based line where the document starts. */
  line: number;
}

/**
 * Parses a manifest file (already through compileTemplate) into its non-empty documents,
 * counting them against the bundle's budget. Plain scalars holding placeholders get
 * PLAIN_MARK so they are re-typed once filled. Throws ValidationError with file:line on
 * the first syntax error, the first document over a limit, or any failure of the parser.
 */
export function parseManifestDocs(
  text: string,
  file: string,
  templated: boolean,
  budget: BundleBudget,
): ManifestDoc[] {
  const lineCounter = new LineCounter();
  const out: ManifestDoc[] = [];
  let line = 1;
  try {
    for (const doc of composeDocuments(text, lineCounter, 'kubernetes')) {
      line = lineCounter.linePos(doc.contents?.range?.[0] ?? doc.range[0]).line;
      const e = doc.errors[0];
      if (e) {
        const at = lineCounter.linePos(e.pos[0]).line;
        throw new ValidationError(`invalid YAML: ${e.message.split('\n')[0]}`, { file, line: at });
      }
      budget.document(file, line);
      if (templated && hasPlaceholder(text)) {
        visit(doc, {
          Scalar(_key, node) {
            if (
              node.type === 'PLAIN' &&
              typeof node.value === 'string' &&
              hasPlaceholder(node.value)
            ) {
              node.value = PLAIN_MARK + node.value;
            }
          },
        });
      }
      const value: unknown = doc.toJS({ maxAliasCount: 100 });
      if (value === null || value === undefined) continue;
      budget.object(file, line);
      out.push({ value, file, line });
    }
  } catch (err) {
    throw yamlFailure(err, file, line);
  }
  return out;
}

/** Checks the fields every object needs; throws ValidationError at the document's line. */
export function checkObject(value: unknown, file: string, line: number): KubeObject {
  const fail = (message: string): never => {
    throw new ValidationError(message, { file, line });
  };
  if (!isRecord(value)) return fail('a manifest document must be a mapping (a Kubernetes object)');
  const { apiVersion, kind, metadata } = value;
  if (typeof apiVersion !== 'string' || apiVersion === '') fail('object has no apiVersion');
  if (typeof kind !== 'string' || kind === '') fail('object has no kind');
  if (
    kind === 'List' ||
    (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(value.items))
  ) {
    fail(`${String(kind)} is not supported: write one document per object`);
  }
  if (!isRecord(metadata)) return fail(`${String(kind)} has no metadata`);
  if (typeof metadata.name !== 'string' || metadata.name === '')
    fail(`${String(kind)} has no metadata.name`);
  if (
    metadata.namespace !== undefined &&
    (typeof metadata.namespace !== 'string' || metadata.namespace === '')
  ) {
    fail(`${String(kind)} ${String(metadata.name)}: metadata.namespace must be a non-empty string`);
  }
  for (const field of ['labels', 'annotations'] as const) {
    const m = metadata[field];
    if (m === undefined || m === null) continue;
    if (!isRecord(m) || !Object.values(m).every((v) => typeof v === 'string')) {
      fail(
        `${String(kind)} ${String(metadata.name)}: metadata.${field} must map strings to strings`,
      );
    }
  }
  return value as KubeObject;
}

/**
 * The object as applied: with the bundle label, and the default namespace when it is
 * namespaced and has none. Copies metadata only; the rest is shared with the parsed
 * manifest, which nobody mutates.
 */
export function stampObject(
  obj: KubeObject,
  bundle: string,
  namespace: string | undefined,
): KubeObject {
  const metadata = { ...obj.metadata, labels: { ...obj.metadata.labels, [BUNDLE_LABEL]: bundle } };
  if (
    namespace !== undefined &&
    metadata.namespace === undefined &&
    !CLUSTER_SCOPED_KINDS.has(obj.kind)
  ) {
    metadata.namespace = namespace;
  }
  return { ...obj, metadata };
}
