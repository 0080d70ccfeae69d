// The `render:` section of the hub config: where kustomize and helm are and what they
// may use, the limits on what one commit can make the hub render, and the Helm
// capabilities of clusters that have not reported theirs. Compiled once at start; errors
// name the field. Documented in docs/install.md (hub config).
import { accessSync, constants } from 'node:fs';
import {
  ConfigError,
  checkCapabilities,
  durations,
  errorMessage,
  isApiVersionEntry,
  isKubeVersion,
  parseDuration,
} from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';
import { BUILTIN_CAPABILITIES } from './capabilities.js';
import { DEFAULT_RENDER_LIMITS } from './limits.js';
import { DEFAULT_TOOL_MAX_MEMORY } from './tools.js';
import { DEFAULT_SANDBOX_USER, parseSandboxUser } from './sandbox.js';
import type { SandboxMode, SandboxSetting } from './sandbox.js';
import { DEFAULT_MAX_CLUSTER_BYTES } from './types.js';
import type { RenderOptions } from './types.js';
import { DEFAULT_RENDER_WORKER_HEAP } from './worker-renderer.js';
import type { RemoteRendererSettings } from './remote/client.js';
import { DEFAULT_MAX_JOB_BYTES } from './remote/protocol.js';

/** The compiled render settings (every field present; undefined program paths mean PATH lookup). */
export interface RenderConfig {
  /** The kustomize program (default: "kustomize" on PATH). */
  kustomizePath: string | undefined;
  /** The helm program (default: "helm" on PATH). */
  helmPath: string | undefined;
  /** The sops program (default: "sops" on PATH). */
  sopsPath: string | undefined;
  /** File of age identities for SOPS-encrypted files (default none: such files fail their bundle). */
  sopsAgeKeyFile: string | undefined;
  /** Longest run of kustomize or helm for one bundle (default 60 s). */
  toolTimeoutMs: number;
  /** CPU time of one kustomize or helm run (default 30 s). */
  toolMaxCpuMs: number;
  /** Data segment limit of one kustomize or helm run, bytes (default 512 MiB). */
  toolMaxMemoryBytes: number;
  /** Largest desired state of one cluster in bytes of JSON (default 16 MiB). */
  maxClusterBytes: number;
  /** Objects in one cluster's desired state (default 20,000). */
  maxClusterObjects: number;
  /** YAML documents in one bundle, empty ones included (default 10,000). */
  maxBundleDocuments: number;
  /** Objects in one bundle (default 5,000). */
  maxBundleObjects: number;
  /** V8 heap (old generation) of the render worker process, bytes (default 1 GiB). */
  workerMaxHeapBytes: number;
  /**
   * Helm capabilities of a cluster that has not reported its own and declares none
   * (defaultKubeVersion, default v1.35.0; defaultApiVersions, default none).
   */
  defaultCapabilities: ClusterCapabilities;
  /** Where kustomize, helm and sops run (render.sandbox, default auto; render.sandboxUser, default 65534:65534). */
  sandbox: SandboxSetting;
  /** render.remote: kustomize and helm run on this renderer (`flotilla renderer`); default undefined, locally. */
  remote: RemoteRendererSettings | undefined;
}

const FIELDS = [
  'kustomizePath',
  'helmPath',
  'sopsPath',
  'sopsAgeKeyFile',
  'toolTimeout',
  'toolMaxCpuTime',
  'toolMaxMemoryBytes',
  'maxClusterBytes',
  'maxClusterObjects',
  'maxBundleDocuments',
  'maxBundleObjects',
  'workerMaxHeapBytes',
  'defaultKubeVersion',
  'defaultApiVersions',
  'sandbox',
  'sandboxUser',
  'remote',
];

const MiB = 1024 * 1024;

/** Compiles `render:` of the hub config (top = the file's top-level mapping); throws ConfigError. */
export function compileRenderConfig(top: Record<string, unknown>, file: string): RenderConfig {
  const fail = (field: string, problem: string): never => {
    throw new ConfigError(`render.${field}`, problem, { file });
  };
  const raw = top.render ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError('render', 'must be a mapping', { file });
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r))
    if (!FIELDS.includes(key)) fail(key, `unknown field (allowed: ${FIELDS.join(', ')})`);
  const path = (key: string): string | undefined => {
    const v = r[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.trim() === '')
      return fail(key, 'must be a program path or name');
    return v;
  };
  // Checked at start, so a missing key file (an unmounted Secret) stops the hub with
  // the field's name instead of failing every bundle that holds an encrypted file.
  const readableFile = (key: string): string | undefined => {
    const v = r[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.trim() === '') return fail(key, 'must be a file path');
    try {
      accessSync(v, constants.R_OK);
    } catch (err) {
      fail(key, `cannot read "${v}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    return v;
  };
  const duration = (key: string, dflt: number, min: number, minText: string): number => {
    const v = r[key];
    if (v === undefined || v === null) return dflt;
    let ms = 0;
    try {
      ms = parseDuration(v as string);
    } catch (err) {
      fail(key, (err as Error).message);
    }
    if (ms < min) fail(key, `must be at least ${minText}`);
    return ms;
  };
  const count = (key: string, dflt: number, min = 1, why = ''): number => {
    const v = r[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min)
      fail(key, min === 1 ? 'must be a positive whole number' : `must be at least ${min}${why}`);
    return v as number;
  };
  return {
    kustomizePath: path('kustomizePath'),
    helmPath: path('helmPath'),
    sopsPath: path('sopsPath'),
    sopsAgeKeyFile: readableFile('sopsAgeKeyFile'),
    toolTimeoutMs: duration('toolTimeout', durations.renderToolTimeout, 1, 'one millisecond'),
    toolMaxCpuMs: duration('toolMaxCpuTime', durations.renderToolCpuTime, 1000, '1s'),
    toolMaxMemoryBytes: count(
      'toolMaxMemoryBytes',
      DEFAULT_TOOL_MAX_MEMORY,
      128 * MiB,
      ' (128 MiB): kustomize and helm need about that much to start',
    ),
    maxClusterBytes: count('maxClusterBytes', DEFAULT_MAX_CLUSTER_BYTES),
    maxClusterObjects: count('maxClusterObjects', DEFAULT_RENDER_LIMITS.maxClusterObjects),
    maxBundleDocuments: count('maxBundleDocuments', DEFAULT_RENDER_LIMITS.maxBundleDocuments),
    maxBundleObjects: count('maxBundleObjects', DEFAULT_RENDER_LIMITS.maxBundleObjects),
    workerMaxHeapBytes: count(
      'workerMaxHeapBytes',
      DEFAULT_RENDER_WORKER_HEAP,
      64 * MiB,
      ' (64 MiB)',
    ),
    defaultCapabilities: defaultCapabilities(r, fail),
    sandbox: sandboxSetting(r, fail),
    remote: remoteSetting(r.remote, fail),
  };
}

/**
 * Throws a ConfigError naming the field when a render.remote file cannot be read: called
 * at hub start, so a missing Secret mount stops the hub instead of failing every
 * Kustomize and Helm bundle. (Not at compile time: the chart's config is compiled in CI
 * where the mounts do not exist.)
 */
export function checkRemoteFiles(remote: RemoteRendererSettings, file = 'hub config'): void {
  for (const key of ['caFile', 'certFile', 'keyFile'] as const) {
    try {
      accessSync(remote[key], constants.R_OK);
    } catch (err) {
      throw new ConfigError(
        `render.remote.${key}`,
        `cannot read "${remote[key]}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        { file },
      );
    }
  }
}

const REMOTE_FIELDS = ['address', 'caFile', 'certFile', 'keyFile', 'serverName', 'maxJobBytes'];

function remoteSetting(
  v: unknown,
  fail: (field: string, problem: string) => never,
): RemoteRendererSettings | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    return fail('remote', 'must be a mapping (address, caFile, certFile, keyFile)');
  const r = v as Record<string, unknown>;
  for (const key of Object.keys(r))
    if (!REMOTE_FIELDS.includes(key))
      fail(`remote.${key}`, `unknown field (allowed: ${REMOTE_FIELDS.join(', ')})`);
  const address = r.address;
  if (
    typeof address !== 'string' ||
    !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(address) ||
    Number(address.slice(address.lastIndexOf(':') + 1)) > 65535
  )
    fail('remote.address', 'must be host:port of the renderer (e.g. flotilla-renderer:7444)');
  // Readable or not is checked when the hub starts (checkRemoteFiles).
  const file = (key: string): string => {
    const f = r[key];
    if (typeof f !== 'string' || f.trim() === '')
      return fail(`remote.${key}`, 'is required: a file path (PEM)');
    return f;
  };
  const serverName = r.serverName;
  if (serverName !== undefined && (typeof serverName !== 'string' || serverName === ''))
    fail('remote.serverName', 'must be a host name');
  const max = r.maxJobBytes ?? DEFAULT_MAX_JOB_BYTES;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < MiB)
    fail('remote.maxJobBytes', 'must be a whole number of bytes, at least 1 MiB');
  return {
    address: address as string,
    caFile: file('caFile'),
    certFile: file('certFile'),
    keyFile: file('keyFile'),
    ...(serverName !== undefined ? { serverName: serverName as string } : {}),
    maxJobBytes: max as number,
  };
}

const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'user', 'network', 'none'];

function sandboxSetting(
  r: Record<string, unknown>,
  fail: (field: string, problem: string) => never,
): SandboxSetting {
  const mode = r.sandbox ?? 'auto';
  if (typeof mode !== 'string' || !SANDBOX_MODES.includes(mode as SandboxMode))
    fail('sandbox', `must be one of ${SANDBOX_MODES.join(', ')}`);
  const user = r.sandboxUser ?? undefined;
  if (user === undefined) return { mode: mode as SandboxMode, ...DEFAULT_SANDBOX_USER };
  const ids =
    typeof user === 'number' || typeof user === 'string'
      ? parseSandboxUser(String(user))
      : 'format';
  if (ids === 'format')
    return fail('sandboxUser', 'must be a numeric user id, or uid:gid ("65534:65534")');
  if (ids === 'root') return fail('sandboxUser', 'must not be root (0) and at most 4294967294');
  return { mode: mode as SandboxMode, ...ids };
}

/** The kustomize, helm and sops programs a RenderConfig runs in the hub (names are looked up on PATH). */
export function renderProgramsOf(cfg: RenderConfig): string[] {
  // With a renderer, only sops runs here.
  if (cfg.remote) return [cfg.sopsPath ?? 'sops'];
  return [cfg.kustomizePath ?? 'kustomize', cfg.helmPath ?? 'helm', cfg.sopsPath ?? 'sops'];
}

function defaultCapabilities(
  r: Record<string, unknown>,
  fail: (field: string, problem: string) => never,
): ClusterCapabilities {
  const version = r.defaultKubeVersion ?? undefined;
  const list = r.defaultApiVersions ?? undefined;
  if (version === undefined && list === undefined) return BUILTIN_CAPABILITIES;
  const kubeVersion = version ?? BUILTIN_CAPABILITIES.kubeVersion;
  if (typeof kubeVersion !== 'string' || !isKubeVersion(kubeVersion))
    fail('defaultKubeVersion', `"${String(kubeVersion)}" is not a Kubernetes version like v1.35.4`);
  const apiVersions = list ?? [];
  if (!Array.isArray(apiVersions) || !apiVersions.every((v) => typeof v === 'string'))
    fail(
      'defaultApiVersions',
      'must be a list of API versions ("apps/v1", "monitoring.coreos.com/v1")',
    );
  const bad = (apiVersions as string[]).findIndex((v) => !isApiVersionEntry(v));
  if (bad >= 0) fail(`defaultApiVersions[${bad}]`, 'must be group/version or group/version/Kind');
  try {
    return checkCapabilities(
      { kubeVersion: kubeVersion as string, apiVersions: apiVersions as string[] },
      'the list',
    );
  } catch (err) {
    return fail('defaultApiVersions', errorMessage(err));
  }
}

/** The renderer options a RenderConfig stands for. */
export function renderOptionsOf(cfg: RenderConfig): RenderOptions {
  return {
    maxClusterBytes: cfg.maxClusterBytes,
    maxClusterObjects: cfg.maxClusterObjects,
    maxBundleDocuments: cfg.maxBundleDocuments,
    maxBundleObjects: cfg.maxBundleObjects,
    toolTimeoutMs: cfg.toolTimeoutMs,
    toolMaxCpuMs: cfg.toolMaxCpuMs,
    toolMaxMemoryBytes: cfg.toolMaxMemoryBytes,
    defaultCapabilities: cfg.defaultCapabilities,
    ...(cfg.kustomizePath !== undefined ? { kustomizePath: cfg.kustomizePath } : {}),
    ...(cfg.helmPath !== undefined ? { helmPath: cfg.helmPath } : {}),
    ...(cfg.sopsPath !== undefined ? { sopsPath: cfg.sopsPath } : {}),
    ...(cfg.sopsAgeKeyFile !== undefined ? { sopsAgeKeyFile: cfg.sopsAgeKeyFile } : {}),
    ...(cfg.remote !== undefined ? { remoteRenderer: cfg.remote } : {}),
  };
}
