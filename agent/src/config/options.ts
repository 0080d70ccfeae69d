// Stage 1 of config: what the user said, from flags with environment fallbacks. Nothing
// is defaulted or validated here (see config.ts), and the environment is read only when
// called, never at import time.
import { parseArgs } from 'node:util';
import { ConfigError } from '@flotilla/common';

/** User options, as given (strings; absent when not given). */
export interface AgentOptions {
  cluster?: string;
  hub?: string;
  kubeconfig?: string;
  nats?: string;
  /** CA bundle to verify the NATS server's certificate; implies TLS. */
  natsCaFile?: string;
  /** Accept plaintext NATS to a non-loopback address. */
  natsAllowPlaintext?: boolean;
  /** Directory of the file that keeps events not yet accepted by NATS across restarts. */
  eventBufferDir?: string;
  tokenFile?: string;
  /** One-time bootstrap token file (first start only; otherwise Secret flotilla-bootstrap is read). */
  bootstrapTokenFile?: string;
  /** A token from FLOTILLA_TOKEN (no flag: flags show in `ps`). */
  token?: string;
  namespace?: string;
  /** Namespaced mode: comma-separated namespaces the agent may manage; absent = cluster-wide. */
  managedNamespaces?: string;
  insecure?: boolean;
  caFile?: string;
  logLevel?: string;
  /** host:port of the Prometheus /metrics endpoint; none when absent. */
  metricsAddr?: string;
  /** How often the cluster's capabilities are read again, e.g. "60s". */
  capabilitiesInterval?: string;
  help?: boolean;
}

/** Usage text of flotilla-agent. */
export const USAGE = `Usage: flotilla-agent --cluster NAME --hub HOST:PORT --nats URL [options]

  --cluster NAME        this cluster's name (env FLOTILLA_CLUSTER)
  --hub HOST:PORT[,HOST:PORT…]
                        the hub's gRPC address, or its replicas' (tried in turn) (env FLOTILLA_HUB)
  --nats URL            NATS server URL(s), comma separated (env FLOTILLA_NATS_URL); tls://HOST:PORT
                        for TLS. Plaintext (nats://) is refused unless the server is loopback
  --nats-ca-file FILE   CA bundle to verify the NATS server's certificate; implies TLS
                        (env FLOTILLA_NATS_CA_FILE; default: system roots)
  --nats-allow-plaintext
                        accept plaintext nats:// to a non-loopback address (not recommended)
  --event-buffer-dir DIR
                        keep events NATS has not accepted yet in DIR/events.log, so they survive
                        a restart (env FLOTILLA_EVENT_BUFFER_DIR; default: memory only)
  --kubeconfig PATH     kubeconfig (env KUBECONFIG; default: ~/.kube/config or in-cluster)
  --token-file FILE     file holding the hub bearer token, --insecure hubs only (env FLOTILLA_TOKEN_FILE; or FLOTILLA_TOKEN)
  --bootstrap-token-file FILE
                        one-time token from "flotilla cluster add" (env FLOTILLA_BOOTSTRAP_TOKEN_FILE;
                        default: Secret flotilla-bootstrap in --namespace); traded for a certificate
  --namespace NS        namespace for inventories and stored state (default flotilla-system)
  --managed-namespaces A,B
                        namespaced mode: apply only into these namespaces; cluster-scoped objects
                        and other namespaces are refused (env FLOTILLA_MANAGED_NAMESPACES; default
                        cluster-wide). "flotilla cluster add --namespaces" sets it with matching RBAC
  --ca-file FILE        CA bundle to verify the hub's TLS certificate (default: system roots)
  --insecure            plaintext gRPC to the hub, no cluster certificate (development only)
  --log-level LEVEL     trace|debug|info|warn|error (default info; env FLOTILLA_LOG_LEVEL)
  --metrics-addr H:P    serve Prometheus metrics on http://H:P/metrics (env FLOTILLA_METRICS_ADDR; default off)
  --capabilities-interval DUR
                        how often the Kubernetes version and served API versions are read
                        again for the hub's Helm rendering (env FLOTILLA_CAPABILITIES_INTERVAL;
                        default 60s, at least 1s; also read after every apply that changed something)
  -h, --help            show this help
`;

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

/** Parses argv (without node and script) with env fallbacks; throws ConfigError on unknown flags. */
export function parseAgentArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): AgentOptions {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        cluster: { type: 'string' },
        hub: { type: 'string' },
        kubeconfig: { type: 'string' },
        nats: { type: 'string' },
        'nats-ca-file': { type: 'string' },
        'nats-allow-plaintext': { type: 'boolean' },
        'event-buffer-dir': { type: 'string' },
        'token-file': { type: 'string' },
        'bootstrap-token-file': { type: 'string' },
        namespace: { type: 'string' },
        'managed-namespaces': { type: 'string' },
        'ca-file': { type: 'string' },
        insecure: { type: 'boolean' },
        'log-level': { type: 'string' },
        'metrics-addr': { type: 'string' },
        'capabilities-interval': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new ConfigError('arguments', err instanceof Error ? err.message : String(err));
  }
  const str = (k: string): string | undefined => nonEmpty(values[k] as string | undefined);
  return {
    cluster: str('cluster') ?? nonEmpty(env.FLOTILLA_CLUSTER),
    hub: str('hub') ?? nonEmpty(env.FLOTILLA_HUB),
    kubeconfig: str('kubeconfig') ?? nonEmpty(env.KUBECONFIG),
    nats: str('nats') ?? nonEmpty(env.FLOTILLA_NATS_URL),
    natsCaFile: str('nats-ca-file') ?? nonEmpty(env.FLOTILLA_NATS_CA_FILE),
    natsAllowPlaintext: values['nats-allow-plaintext'] === true,
    eventBufferDir: str('event-buffer-dir') ?? nonEmpty(env.FLOTILLA_EVENT_BUFFER_DIR),
    tokenFile: str('token-file') ?? nonEmpty(env.FLOTILLA_TOKEN_FILE),
    bootstrapTokenFile: str('bootstrap-token-file') ?? nonEmpty(env.FLOTILLA_BOOTSTRAP_TOKEN_FILE),
    token: nonEmpty(env.FLOTILLA_TOKEN),
    namespace: str('namespace'),
    managedNamespaces: str('managed-namespaces') ?? nonEmpty(env.FLOTILLA_MANAGED_NAMESPACES),
    caFile: str('ca-file'),
    insecure: values.insecure === true,
    logLevel: str('log-level') ?? nonEmpty(env.FLOTILLA_LOG_LEVEL),
    metricsAddr: str('metrics-addr') ?? nonEmpty(env.FLOTILLA_METRICS_ADDR),
    capabilitiesInterval:
      str('capabilities-interval') ?? nonEmpty(env.FLOTILLA_CAPABILITIES_INTERVAL),
    help: values.help === true,
  };
}
