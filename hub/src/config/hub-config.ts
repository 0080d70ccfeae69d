// The hub's configuration in three stages: what the user wrote (HubConfigFile, every
// field optional), the defaults, and the compiled HubConfig (every field present,
// durations in ms) that the rest of the hub reads. Validation happens once, here, and
// every error names the file and the field.
import {
  ConfigError,
  DEFAULT_MAX_PRUNE_SHARE,
  durations,
  isDnsLabel,
  natsTransport,
  parseDuration,
} from '@flotilla/common';
import { compileStatusConfig } from '../status/status-config.js';
import { DEFAULT_ENCODE_BUDGET_MS } from '../stream/chunks.js';
import { validateSourceRef } from '../source/refs.js';
import { validateFleetPath } from '../source/fleet-path.js';
import type { SourceRef } from '../source/refs.js';
import type { StatusConfig } from '../status/status-config.js';
import { compileRenderConfig } from '../render/render-config.js';
import type { RenderConfig } from '../render/render-config.js';
import { compileChartSettings } from '../render/charts/settings.js';
import type { ChartSettings } from '../render/charts/settings.js';

/** Credentials for a Git source: files or environment variable names, never inline secrets. */
export interface SourceAuthConfig {
  usernameFile?: string;
  passwordFile?: string;
  tokenFile?: string;
  usernameEnv?: string;
  passwordEnv?: string;
  tokenEnv?: string;
}

/** One fleet repo the hub tracks. */
export interface SourceConfig {
  name: string;
  url: string;
  /** Branch to track (default "main"). */
  branch: string;
  /** How often to poll (default 30 s). */
  pollIntervalMs: number;
  /** Fraction of pollInterval added at random to each wait, 0..1 (default 0.1). */
  pollJitter: number;
  /** The fleet's root directory in the repository, normalised (default "": the root). */
  path: string;
  auth: SourceAuthConfig | undefined;
  /** What to follow: `branch` (default), or exactly one of `tag`, `commit`, `semver`. */
  ref: SourceRef;
  /** Push webhook secret (file or env var); without one the source has no webhook. */
  webhook: { secretFile?: string; secretEnv?: string } | undefined;
  /** Armored OpenPGP public key files and OpenSSH allowed_signers files (either may be empty, not both); when set, only commits signed by one of their keys are rendered. */
  verify: { openpgpKeyFiles: string[]; sshAllowedSignersFiles: string[] } | undefined;
}

/** A listen address split into host and port. */
export interface ListenAddress {
  /** As written, e.g. "127.0.0.1:7443". */
  address: string;
  host: string;
  port: number;
}

/** The compiled hub configuration: every field present, durations in ms. */
export interface HubConfig {
  /** The file it was read from (for messages). */
  file: string;
  sources: SourceConfig[];
  /** gRPC listen address for agents and FleetService (default 127.0.0.1:7443). */
  /** gRPC listen address; sendBudgetMs: longest stretch of desired-state sends per turn of the event loop (default DEFAULT_ENCODE_BUDGET_MS). */
  grpc: { listen: ListenAddress; sendBudgetMs: number };
  /** HTTP listen address of the JSON API (default 127.0.0.1:7080). */
  http: { listen: ListenAddress };
  /** NATS server URL (default nats://127.0.0.1:4222); with decentralized auth, the hub's creds and the account seed it signs agents' JWTs with. */
  nats: {
    /** One server or several, comma separated (the nodes of a NATS cluster). */
    url: string;
    /** Replicas of every stream and KV bucket the hub creates (default 1; 3 on a three-node NATS cluster). */
    replicas: number;
    /** TLS required (a tls:// URL or caFile); the server's certificate is verified. */
    tls: boolean;
    /** CA bundle for the NATS server's certificate (default: the system roots). */
    caFile?: string | undefined;
    credsFile?: string | undefined;
    accountSeedFile?: string | undefined;
    systemCredsFile?: string | undefined;
    operatorSigningKeyFile?: string | undefined;
  };
  /** Shared agent token file; undefined means agents are not authenticated. */
  auth: { tokenFile: string | undefined };
  /** Where Git clones are cached. */
  cacheDir: string;
  /** Heartbeat interval on agent streams (default 10 s). */
  heartbeatIntervalMs: number;
  /** A disconnected cluster is shown Offline after this long (default 45 s). */
  offlineAfterMs: number;
  /** Status, history and alerting: hubId, history.retention, notify.webhooks (status/status-config.ts). */
  status: StatusConfig;
  /** kustomize/helm programs, their timeout, the per-cluster size limit (render/render-config.ts). */
  render: RenderConfig;
  /** Helm chart repositories and registries: credentials per URL prefix, CA, cache, limits (render/charts/settings.ts). */
  charts: ChartSettings;
  /** Mass-prune safety: the largest share of a cluster's managed objects one commit may delete (default 0.5); carried in every desired state. */
  prune: { maxShare: number };
  /** Plaintext gRPC and HTTP, no per-cluster identities (development and demo only; default false). */
  insecure: boolean;
  /** Per-cluster identities (used unless insecure). */
  identity: IdentityConfig;
}

/** The hub's CA, certificates and registration records. */
export interface IdentityConfig {
  /** Directory of ca.crt/ca.key, admin.crt/admin.key and identity-state.json (default <cacheDir>/../identity). */
  stateDir: string;
  /** Names and IPs in the hub's serving certificate (default: the listen hosts, localhost, 127.0.0.1). */
  hosts: string[];
  /** Bootstrap token lifetime (default 1 h). */
  tokenTtlMs: number;
  /** Cluster certificate lifetime (default 24 h). */
  certValidityMs: number;
}

/** Values used where the file says nothing. */
export const HUB_CONFIG_DEFAULTS = {
  branch: 'main',
  pollInterval: durations.sourcePollInterval,
  pollJitter: durations.sourcePollJitter,
  grpcListen: '127.0.0.1:7443',
  sendBudget: DEFAULT_ENCODE_BUDGET_MS,
  httpListen: '127.0.0.1:7080',
  natsUrl: 'nats://127.0.0.1:4222',
  heartbeatInterval: durations.streamHeartbeat,
  offlineAfter: durations.clusterOfflineAfter,
  tokenTtl: 3_600_000,
  certValidity: 86_400_000,
} as const;

type Obj = Record<string, unknown>;

/** Field-path-aware checks; each throws ConfigError naming file and field. */
class Checker {
  constructor(readonly file: string) {}

  fail(field: string, problem: string): never {
    throw new ConfigError(field, problem, { file: this.file });
  }

  object(value: unknown, field: string, allowed: readonly string[]): Obj {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) this.fail(field, 'must be a mapping');
    const obj = value as Obj;
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        this.fail(
          field ? `${field}.${key}` : key,
          `unknown field (allowed: ${allowed.join(', ')})`,
        );
      }
    }
    return obj;
  }

  string(value: unknown, field: string): string | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'string' || value.trim() === '')
      this.fail(field, 'must be a non-empty string');
    return value;
  }

  duration(value: unknown, field: string, fallback: number): number {
    if (value === undefined || value === null) return fallback;
    if (typeof value !== 'string' && typeof value !== 'number')
      this.fail(field, 'must be a duration such as "30s"');
    let ms: number;
    try {
      ms = parseDuration(value);
    } catch (err) {
      return this.fail(field, (err as Error).message);
    }
    if (ms <= 0) this.fail(field, 'must be greater than zero');
    return ms;
  }

  listen(value: unknown, field: string, fallback: string): ListenAddress {
    const address = this.string(value, field) ?? fallback;
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):(\d{1,5})$/.exec(address);
    const port = m ? Number(m[2]) : NaN;
    if (!m || port > 65535) this.fail(field, `must be "host:port", got "${address}"`);
    const host = (m[1] as string).replace(/^\[(.*)\]$/, '$1');
    return { address, host, port };
  }
}

const TOP_FIELDS = [
  'sources',
  'grpc',
  'http',
  'nats',
  'auth',
  'cacheDir',
  'heartbeatInterval',
  'offlineAfter',
  'insecure',
  'identity',
  'hubId',
  'replicaId',
  'peers',
  'history',
  'notify',
  'render',
  'charts',
  'prune',
] as const;
const SOURCE_FIELDS = [
  'name',
  'url',
  'branch',
  'tag',
  'commit',
  'semver',
  'pollInterval',
  'pollJitter',
  'path',
  'auth',
  'webhook',
  'verify',
] as const;

/** Reads branch/tag/commit/semver (at most one) into a SourceRef. */
function compileSourceRef(c: Checker, s: Obj, field: string): SourceRef {
  const given = (['branch', 'tag', 'commit', 'semver'] as const).filter(
    (k) => s[k] !== undefined && s[k] !== null,
  );
  if (given.length > 1)
    c.fail(
      `${field}.${given[1] as string}`,
      `give only one of branch, tag, commit, semver (found ${given.join(', ')})`,
    );
  const kind = given[0] ?? 'branch';
  const value = c.string(s[kind], `${field}.${kind}`) ?? HUB_CONFIG_DEFAULTS.branch;
  const ref: SourceRef =
    kind === 'commit'
      ? { kind, sha: value }
      : kind === 'semver'
        ? { kind, range: value }
        : { kind, name: value };
  try {
    return validateSourceRef(ref, field);
  } catch (err) {
    return c.fail(`${field}.${kind}`, (err as Error).message.replace(/^[^:]*: /, ''));
  }
}

/** Reads the webhook and verify sections of a source. */
function compileSourceExtras(
  c: Checker,
  s: Obj,
  field: string,
): Pick<SourceConfig, 'webhook' | 'verify'> {
  let webhook: SourceConfig['webhook'];
  if (s.webhook !== undefined && s.webhook !== null) {
    const w = c.object(s.webhook, `${field}.webhook`, ['secretFile', 'secretEnv']);
    const secretFile = c.string(w.secretFile, `${field}.webhook.secretFile`);
    const secretEnv = c.string(w.secretEnv, `${field}.webhook.secretEnv`);
    if (!secretFile === !secretEnv)
      c.fail(`${field}.webhook`, 'give exactly one of secretFile, secretEnv');
    webhook = secretFile ? { secretFile } : { secretEnv: secretEnv as string };
  }
  let verify: SourceConfig['verify'];
  if (s.verify !== undefined && s.verify !== null) {
    const v = c.object(s.verify, `${field}.verify`, ['openpgpKeys', 'sshAllowedSigners']);
    const files = (key: 'openpgpKeys' | 'sshAllowedSigners', what: string): string[] => {
      const list = v[key] ?? [];
      if (!Array.isArray(list))
        return c.fail(`${field}.verify.${key}`, `must be a list of ${what}`);
      return list.map(
        (f: unknown, i) =>
          c.string(f, `${field}.verify.${key}[${i}]`) ??
          c.fail(`${field}.verify.${key}[${i}]`, 'is required'),
      );
    };
    verify = {
      openpgpKeyFiles: files('openpgpKeys', 'key files'),
      sshAllowedSignersFiles: files('sshAllowedSigners', 'allowed_signers files'),
    };
    if (verify.openpgpKeyFiles.length + verify.sshAllowedSignersFiles.length === 0) {
      const only = (['openpgpKeys', 'sshAllowedSigners'] as const).filter((k) => k in v);
      c.fail(
        only.length === 1 ? `${field}.verify.${only[0]}` : `${field}.verify`,
        only.length === 1
          ? `must be a non-empty list of ${only[0] === 'openpgpKeys' ? 'key' : 'allowed_signers'} files`
          : 'give a non-empty list in openpgpKeys, sshAllowedSigners or both',
      );
    }
  }
  return { webhook, verify };
}

const AUTH_FIELDS = [
  'usernameFile',
  'passwordFile',
  'tokenFile',
  'usernameEnv',
  'passwordEnv',
  'tokenEnv',
] as const;

function compileSource(c: Checker, value: unknown, field: string, seen: Set<string>): SourceConfig {
  const s = c.object(value, field, SOURCE_FIELDS);
  const name = c.string(s.name, `${field}.name`) ?? c.fail(`${field}.name`, 'is required');
  if (!isDnsLabel(name))
    c.fail(`${field}.name`, `"${name}" must be a DNS label (lower-case letters, digits, '-')`);
  if (seen.has(name)) c.fail(`${field}.name`, `duplicate source name "${name}"`);
  seen.add(name);
  const url = c.string(s.url, `${field}.url`) ?? c.fail(`${field}.url`, 'is required');
  let auth: SourceAuthConfig | undefined;
  if (s.auth !== undefined && s.auth !== null) {
    const a = c.object(s.auth, `${field}.auth`, AUTH_FIELDS);
    auth = {};
    for (const key of AUTH_FIELDS) {
      const v = c.string(a[key], `${field}.auth.${key}`);
      if (v !== undefined) auth[key] = v;
    }
  }
  return {
    name,
    url,
    branch: c.string(s.branch, `${field}.branch`) ?? HUB_CONFIG_DEFAULTS.branch,
    ref: compileSourceRef(c, s, field),
    ...compileSourceExtras(c, s, field),
    pollIntervalMs: c.duration(
      s.pollInterval,
      `${field}.pollInterval`,
      HUB_CONFIG_DEFAULTS.pollInterval,
    ),
    pollJitter: compileJitter(c, s.pollJitter, `${field}.pollJitter`),
    path: compileFleetPath(c, s.path, `${field}.path`),
    auth,
  };
}

function compileJitter(c: Checker, value: unknown, field: string): number {
  if (value === undefined || value === null) return HUB_CONFIG_DEFAULTS.pollJitter;
  if (typeof value !== 'number' || !(value >= 0 && value <= 1))
    c.fail(
      field,
      `must be a number from 0 to 1 (a fraction of pollInterval), got ${JSON.stringify(value)}`,
    );
  return value;
}

function compileFleetPath(c: Checker, value: unknown, field: string): string {
  try {
    return validateFleetPath(value, field);
  } catch (err) {
    return c.fail(field, (err as Error).message.replace(/^[^:]*: /, ''));
  }
}

/** Options for compileHubConfig that come from the environment, for tests. */
export interface CompileOptions {
  /** cacheDir when the file has none. */
  defaultCacheDir: string;
}

// NATS revocation needs both files, and the account seed they re-sign the account for.
function compileNatsRevocation(
  c: Checker,
  nats: Record<string, unknown>,
): { systemCredsFile?: string; operatorSigningKeyFile?: string } {
  const systemCredsFile = c.string(nats.systemCredsFile, 'nats.systemCredsFile');
  const operatorSigningKeyFile = c.string(
    nats.operatorSigningKeyFile,
    'nats.operatorSigningKeyFile',
  );
  if ((systemCredsFile === undefined) !== (operatorSigningKeyFile === undefined)) {
    const [missing, given] = systemCredsFile
      ? ['nats.operatorSigningKeyFile', 'nats.systemCredsFile']
      : ['nats.systemCredsFile', 'nats.operatorSigningKeyFile'];
    c.fail(missing, `is required with ${given} (both are written by \`flotilla nats init\`)`);
  }
  if (systemCredsFile && nats.accountSeedFile === undefined)
    c.fail('nats.accountSeedFile', 'is required with nats.systemCredsFile');
  return {
    ...(systemCredsFile ? { systemCredsFile } : {}),
    ...(operatorSigningKeyFile ? { operatorSigningKeyFile } : {}),
  };
}

// nats: where NATS is, how it is reached (TLS unless loopback or allowPlaintext), and the
// hub's credentials.
function compileNats(c: Checker, value: unknown): HubConfig['nats'] {
  const nats = c.object(value, 'nats', [
    'url',
    'caFile',
    'allowPlaintext',
    'credsFile',
    'accountSeedFile',
    'systemCredsFile',
    'operatorSigningKeyFile',
    'replicas',
  ]);
  const url = c.string(nats.url, 'nats.url') ?? HUB_CONFIG_DEFAULTS.natsUrl;
  for (const server of url.split(','))
    if (!/^(nats|tls|ws|wss):\/\/|^[^:/]+:\d+$/.test(server.trim()))
      c.fail(
        'nats.url',
        `must be NATS URLs such as tls://host:4222 (comma separated), got "${url}"`,
      );
  const replicas = nats.replicas ?? 1;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 1 || replicas > 5)
    c.fail('nats.replicas', `must be an integer from 1 to 5, got ${JSON.stringify(nats.replicas)}`);
  if (nats.allowPlaintext !== undefined && typeof nats.allowPlaintext !== 'boolean')
    c.fail('nats.allowPlaintext', 'must be true or false');
  const caFile = c.string(nats.caFile, 'nats.caFile');
  const { tls } = natsTransport(
    url,
    { caFile, allowPlaintext: nats.allowPlaintext === true },
    {
      url: 'nats.url',
      caFile: 'nats.caFile',
      allowPlaintext: 'nats.allowPlaintext: true',
      file: c.file,
    },
  );
  return {
    url,
    replicas: replicas as number,
    tls,
    ...(caFile ? { caFile } : {}),
    credsFile: c.string(nats.credsFile, 'nats.credsFile'),
    accountSeedFile: c.string(nats.accountSeedFile, 'nats.accountSeedFile'),
    ...compileNatsRevocation(c, nats),
  };
}

// prune.maxShare: a fraction (0.5) or a percentage ("50%"), above 0 and at most 1 (100 %).
function compilePrune(c: Checker, value: unknown): HubConfig['prune'] {
  const p = c.object(value, 'prune', ['maxShare']);
  const raw = p.maxShare;
  if (raw === undefined || raw === null) return { maxShare: DEFAULT_MAX_PRUNE_SHARE };
  const share =
    typeof raw === 'number'
      ? raw
      : typeof raw === 'string' && /^\d+(\.\d+)?%$/.test(raw.trim())
        ? Number(raw.trim().slice(0, -1)) / 100
        : NaN;
  if (!(share > 0 && share <= 1))
    c.fail(
      'prune.maxShare',
      `must be a share above 0 and at most 1, as a number (0.5) or a percentage ("50%"), got ${JSON.stringify(raw)}`,
    );
  return { maxShare: share };
}

/** Validates the user's file content and fills defaults; throws ConfigError naming the field. */
export function compileHubConfig(raw: unknown, file: string, opts: CompileOptions): HubConfig {
  const c = new Checker(file);
  const top = c.object(raw, '', TOP_FIELDS);
  if (top.sources !== undefined && !Array.isArray(top.sources)) c.fail('sources', 'must be a list');
  const sourcesRaw = (top.sources as unknown[] | undefined) ?? [];
  if (sourcesRaw.length === 0) c.fail('sources', 'at least one source is required');
  const seen = new Set<string>();
  const sources = sourcesRaw.map((s, i) => compileSource(c, s, `sources[${i}]`, seen));
  const grpc = c.object(top.grpc, 'grpc', ['listen', 'sendBudget']);
  const http = c.object(top.http, 'http', ['listen']);
  const auth = c.object(top.auth, 'auth', ['tokenFile']);
  const heartbeatIntervalMs = c.duration(
    top.heartbeatInterval,
    'heartbeatInterval',
    HUB_CONFIG_DEFAULTS.heartbeatInterval,
  );
  const offlineAfterMs = c.duration(
    top.offlineAfter,
    'offlineAfter',
    HUB_CONFIG_DEFAULTS.offlineAfter,
  );
  if (offlineAfterMs < heartbeatIntervalMs)
    c.fail('offlineAfter', 'must not be shorter than heartbeatInterval');
  const cacheDir = c.string(top.cacheDir, 'cacheDir') ?? opts.defaultCacheDir;
  const cfg: HubConfig = {
    file,
    sources,
    grpc: {
      listen: c.listen(grpc.listen, 'grpc.listen', HUB_CONFIG_DEFAULTS.grpcListen),
      sendBudgetMs: c.duration(grpc.sendBudget, 'grpc.sendBudget', HUB_CONFIG_DEFAULTS.sendBudget),
    },
    http: { listen: c.listen(http.listen, 'http.listen', HUB_CONFIG_DEFAULTS.httpListen) },
    nats: compileNats(c, top.nats),
    auth: { tokenFile: c.string(auth.tokenFile, 'auth.tokenFile') },
    cacheDir,
    heartbeatIntervalMs,
    offlineAfterMs,
    status: compileStatusConfig(top, file),
    render: compileRenderConfig(top, file),
    charts: compileChartSettings(top, file, cacheDir),
    prune: compilePrune(c, top.prune),
    insecure: false,
    identity: { stateDir: '', hosts: [], tokenTtlMs: 0, certValidityMs: 0 },
  };
  if (top.insecure !== undefined && typeof top.insecure !== 'boolean')
    c.fail('insecure', 'must be true or false');
  const idRaw = c.object(top.identity, 'identity', [
    'stateDir',
    'hosts',
    'tokenTtl',
    'certValidity',
  ]);
  if (
    idRaw.hosts !== undefined &&
    (!Array.isArray(idRaw.hosts) || idRaw.hosts.some((h) => typeof h !== 'string' || h === ''))
  )
    c.fail('identity.hosts', 'must be a list of host names or IPs');
  const hosts = new Set(
    (idRaw.hosts as string[] | undefined) ?? [
      cfg.grpc.listen.host,
      cfg.http.listen.host,
      'localhost',
      '127.0.0.1',
    ],
  );
  hosts.delete('0.0.0.0');
  hosts.delete('::');
  cfg.insecure = top.insecure === true;
  cfg.identity = {
    stateDir:
      c.string(idRaw.stateDir, 'identity.stateDir') ??
      `${cfg.cacheDir.replace(/\/+$/, '')}-identity`,
    hosts: [...hosts],
    tokenTtlMs: c.duration(idRaw.tokenTtl, 'identity.tokenTtl', HUB_CONFIG_DEFAULTS.tokenTtl),
    certValidityMs: c.duration(
      idRaw.certValidity,
      'identity.certValidity',
      HUB_CONFIG_DEFAULTS.certValidity,
    ),
  };
  if (cfg.grpc.listen.address === cfg.http.listen.address && cfg.grpc.listen.port !== 0)
    c.fail('http.listen', 'must differ from grpc.listen');
  return cfg;
}
