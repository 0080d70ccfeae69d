// Applies install manifests (what `flotilla cluster add` writes, deploy/ artifacts) to a
// real API server, the way `kubectl apply --server-side` would: one document at a time,
// in file order, so Namespaces exist before what lives in them.
import { KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';

/** Options of applyManifests. */
export interface ApplyManifestsOptions {
  /** Server-side dry run: validated and admitted by the API server, nothing persisted. */
  dryRun?: boolean;
}

/** Parses multi-document YAML into objects (empty documents skipped). */
export function parseManifests(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`invalid YAML: ${d.errors[0]?.message}`);
      return d.toJS() as KubernetesObject | null;
    })
    .filter(
      (o): o is KubernetesObject =>
        o !== null && typeof o === 'object' && typeof o.kind === 'string',
    );
}

/** Server-side applies every document; rejects with the API server's message naming the object. */
export async function applyManifests(
  kubeconfigPath: string,
  text: string,
  opts: ApplyManifestsOptions = {},
): Promise<KubernetesObject[]> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const api = KubernetesObjectApi.makeApiClient(kc);
  const applied: KubernetesObject[] = [];
  for (const obj of parseManifests(text)) {
    try {
      applied.push(
        await api.patch(
          obj,
          undefined,
          opts.dryRun ? 'All' : undefined,
          'flotilla-install',
          true,
          PatchStrategy.ServerSideApply,
        ),
      );
    } catch (err) {
      const body = (err as { body?: unknown }).body;
      throw new Error(
        `${obj.kind}/${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name ?? ''}: ${typeof body === 'string' ? body : (err as Error).message}`,
      );
    }
  }
  return applied;
}
