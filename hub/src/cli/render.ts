// `flotilla render`: renders a fleet repo checkout for one cluster, without a hub. What a
// reviewer runs on a pull request to see exactly what a cluster would get.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { errorMessage } from '@flotilla/common';
import type { DesiredState } from '@flotilla/common';
import { formatRenderError, renderFleet } from '../render/index.js';
import type { RenderError, RenderOptions, RenderResult } from '../render/index.js';
import { readDirectoryTree, validateFleetPath } from '../source/index.js';
import { redactSecret } from './secrets.js';
import { capabilitiesFor, parseCapabilityFlags } from './render-capabilities.js';
import type { CapabilityFlags } from './render-capabilities.js';
import { DEFAULT_HUB_URL } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { CA_FILE_OPTION, CA_FILE_USAGE } from './hub-tls.js';
import { loadChartSettings } from '../config/load.js';

/** Usage of `flotilla render`. */
export const RENDER_USAGE = `Usage: flotilla render --cluster NAME [--repo DIR] [--path PATH] [--bundle NAME] [-o yaml|json]
                       [--kube-version V] [--api-versions LIST] [--hub] [--show-secrets]
                       [--hub-config FILE]

Renders the fleet repo in DIR (default: the current directory) for one cluster and
prints its objects: a YAML stream (default) or the desired state as JSON.
--path is the fleet's root directory inside DIR, as a hub source's \`path\`
(e.g. deploy/fleet; default: DIR itself); bundles cannot read files outside it.
Kustomize and Helm bundles the cluster gets run the kustomize and helm programs found
on PATH, or FLOTILLA_KUSTOMIZE / FLOTILLA_HELM (bundles it does not get need neither).
SOPS-encrypted files are decrypted with sops (PATH or FLOTILLA_SOPS) and the age keys
in SOPS_AGE_KEY_FILE. The values of Secrets print as <redacted> unless --show-secrets.
Charts from chart repositories and OCI registries are fetched (cached in
~/.cache/flotilla/charts); --hub-config FILE reads the credentials and CAs for them
from a hub config's charts: section (docs/install.md).

Helm charts see the cluster's capabilities: what its agent reported to the hub (with
--hub), else the Cluster's spec.kubeVersion / spec.apiVersions, else the default
(v1.35.0; the hub's render.defaultKubeVersion with --hub). Flags win over all of them:
  --kube-version V      Kubernetes version, e.g. v1.29.4 (.Capabilities.KubeVersion)
  --api-versions LIST   served API versions, comma separated or repeated, e.g.
                        monitoring.coreos.com/v1,apps/v1/Deployment (.Capabilities.APIVersions)
  --hub                 read the cluster's capabilities from the hub's API
  --hub-url URL         hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
${CA_FILE_USAGE}

Exit codes: 0 rendered without errors, 1 render errors (printed to stderr with
file:line; what could be rendered is still printed), 2 usage error or, with --hub,
the hub could not be read.
`;

/** Where renderCommand writes; process streams or anything with write(). */
export interface RenderIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Base for a relative --repo (default process.cwd()). */
  cwd?: string;
  /** Environment (FLOTILLA_KUSTOMIZE, FLOTILLA_HELM; default process.env). */
  env?: NodeJS.ProcessEnv;
}

/** The cwd and environment of an invocation, defaults filled in. */
function fullIo(io: RenderIo): { env: NodeJS.ProcessEnv; cwd: string } & RenderIo {
  return { ...io, env: io.env ?? process.env, cwd: io.cwd ?? process.cwd() };
}

interface Args {
  repo: string;
  /** Normalised fleet path inside repo ("" = repo itself). */
  path: string;
  cluster: string;
  bundle: string | undefined;
  output: 'yaml' | 'json';
  capabilities: CapabilityFlags;
  showSecrets: boolean;
  hubConfig: string | undefined;
}

function parse(argv: string[], io: RenderIo): Args | 'help' | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        repo: { type: 'string' },
        path: { type: 'string' },
        cluster: { type: 'string' },
        bundle: { type: 'string' },
        output: { type: 'string', short: 'o' },
        'show-secrets': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        'kube-version': { type: 'string' },
        'api-versions': { type: 'string', multiple: true },
        hub: { type: 'boolean' },
        'hub-url': { type: 'string' },
        'hub-config': { type: 'string' },
        ...CA_FILE_OPTION,
      },
    }));
  } catch (err) {
    return errorMessage(err);
  }
  if (values.help) return 'help';
  if (!values.cluster) return 'missing --cluster NAME';
  const output = values.output ?? 'yaml';
  if (output !== 'yaml' && output !== 'json') return `-o must be yaml or json, not "${output}"`;
  let path: string;
  let capabilities: CapabilityFlags;
  try {
    path = validateFleetPath(values.path, '--path');
    capabilities = parseCapabilityFlags(values);
  } catch (err) {
    return errorMessage(err);
  }
  return {
    repo: resolve(io.cwd ?? process.cwd(), values.repo ?? '.'),
    path,
    cluster: values.cluster,
    bundle: values.bundle,
    output,
    capabilities,
    showSecrets: values['show-secrets'] === true,
    hubConfig: values['hub-config'],
  };
}

/**
 * Where the CLI finds kustomize, helm and sops (FLOTILLA_KUSTOMIZE / FLOTILLA_HELM /
 * FLOTILLA_SOPS, else PATH) and the age keys of SOPS-encrypted files (SOPS_AGE_KEY_FILE,
 * as sops itself). Read when a command runs, never at import time.
 */
export function renderOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): RenderOptions {
  return {
    ...(env.FLOTILLA_KUSTOMIZE ? { kustomizePath: env.FLOTILLA_KUSTOMIZE } : {}),
    ...(env.FLOTILLA_HELM ? { helmPath: env.FLOTILLA_HELM } : {}),
    ...(env.FLOTILLA_SOPS ? { sopsPath: env.FLOTILLA_SOPS } : {}),
    ...(env.SOPS_AGE_KEY_FILE ? { sopsAgeKeyFile: env.SOPS_AGE_KEY_FILE } : {}),
    sopsKeySetting: 'SOPS_AGE_KEY_FILE',
  };
}

/** `chartSettings` from `--hub-config FILE` (its charts: section), or nothing. */
export async function chartSettingsOf(
  file: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<Pick<RenderOptions, 'chartSettings'>> {
  return file === undefined ? {} : { chartSettings: await loadChartSettings(file, env) };
}

/** Runs `flotilla render` with argv (after "render"); returns the exit code. */
export async function renderCommand(
  argv: string[],
  io: RenderIo,
  fetchFn: Fetch = fetch,
): Promise<number> {
  const args = parse(argv, io);
  if (args === 'help') {
    io.stdout.write(RENDER_USAGE);
    return 0;
  }
  if (typeof args === 'string') {
    io.stderr.write(`flotilla render: ${args}\n\n${RENDER_USAGE}`);
    return 2;
  }
  let tree;
  try {
    tree = await readDirectoryTree(args.repo, { path: args.path });
  } catch (err) {
    io.stderr.write(`flotilla render: cannot read ${args.repo}: ${errorMessage(err)}\n`);
    return 2;
  }
  let capabilities;
  try {
    capabilities = await capabilitiesFor(
      tree,
      args.cluster,
      args.capabilities,
      fullIo(io),
      fetchFn,
    );
  } catch (err) {
    io.stderr.write(`flotilla render: ${errorMessage(err)}\n`);
    return 2;
  }
  let chartSettings;
  try {
    chartSettings = await chartSettingsOf(args.hubConfig, fullIo(io).env);
  } catch (err) {
    io.stderr.write(`flotilla render: ${errorMessage(err)}\n`);
    return 2;
  }
  // Only this cluster: bundles it does not get run no kustomize or helm.
  const result: RenderResult = await renderFleet(tree, 'local', {
    ...renderOptionsFromEnv(io.env),
    ...chartSettings,
    clusters: [args.cluster],
    capabilities: new Map([[args.cluster, capabilities]]),
  });
  const errors = result.errors.filter((e) => relevant(e, args));
  for (const e of errors) io.stderr.write(`error: ${formatRenderError(e)}\n`);
  const state = result.clusters.get(args.cluster);
  if (!state) return explainMissing(result, args, io, errors.length);
  const bundles = state.bundles.filter((b) => args.bundle === undefined || b.name === args.bundle);
  if (args.bundle !== undefined && bundles.length === 0 && errors.length === 0) {
    io.stderr.write(
      `error: bundle "${args.bundle}" is not deployed to cluster "${args.cluster}"\n`,
    );
    return 1;
  }
  const shown = args.showSecrets
    ? bundles
    : bundles.map((b) => ({ ...b, objects: b.objects.map((o) => redactSecret(o)) }));
  io.stdout.write(args.output === 'json' ? toJson(state, shown) : toYaml(shown));
  return errors.length > 0 ? 1 : 0;
}

// Errors about other clusters are not this reviewer's question; repo-wide and
// bundle-wide errors (no cluster) may well affect this cluster, so they are shown.
function relevant(e: RenderError, args: Args): boolean {
  if (e.cluster !== undefined && e.cluster !== args.cluster) return false;
  return args.bundle === undefined || e.bundle === undefined || e.bundle === args.bundle;
}

function explainMissing(
  result: RenderResult,
  args: Args,
  io: RenderIo,
  errorCount: number,
): number {
  if (result.pausedClusters.includes(args.cluster)) {
    io.stderr.write(
      `cluster "${args.cluster}" is paused: the hub keeps sending what it rendered before the pause\n`,
    );
    return errorCount > 0 ? 1 : 0;
  }
  if (!result.brokenClusters.includes(args.cluster) && errorCount === 0) {
    io.stderr.write(
      `error: cluster "${args.cluster}" not found (expected clusters/${args.cluster}.yaml)\n`,
    );
  }
  return 1;
}

function toYaml(bundles: DesiredState['bundles']): string {
  return (
    bundles
      // Helm hooks too (their helm.sh/hook annotations say they are hooks; docs/helm.md).
      .flatMap((b) => [...b.objects, ...(b.hooks ?? []).map((h) => h.object)])
      .map((o) => `---\n${stringify(o, { lineWidth: 0, aliasDuplicateObjects: false })}`)
      .join('')
  );
}

function toJson(state: DesiredState, bundles: DesiredState['bundles']): string {
  return `${JSON.stringify({ ...state, bundles }, null, 2)}\n`;
}
