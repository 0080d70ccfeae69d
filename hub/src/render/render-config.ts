// The `render:` section of the hub config: where kustomize and helm are, how long they
// may run, and the per-cluster size limit. Compiled once at start; errors name the field.
import { ConfigError, durations, parseDuration } from '@flotilla/common';
import { DEFAULT_MAX_CLUSTER_BYTES } from './types.js';
import type { RenderOptions } from './types.js';

/** The compiled render settings (every field present; undefined program paths mean PATH lookup). */
export interface RenderConfig {
  /** The kustomize program (default: "kustomize" on PATH). */
  kustomizePath: string | undefined;
  /** The helm program (default: "helm" on PATH). */
  helmPath: string | undefined;
  /** Longest run of kustomize or helm for one bundle (default 60 s). */
  toolTimeoutMs: number;
  /** Largest desired state of one cluster in bytes of JSON (default 16 MiB). */
  maxClusterBytes: number;
}

const FIELDS = ['kustomizePath', 'helmPath', 'toolTimeout', 'maxClusterBytes'];

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
  let toolTimeoutMs: number = durations.renderToolTimeout;
  if (r.toolTimeout !== undefined && r.toolTimeout !== null) {
    try {
      toolTimeoutMs = parseDuration(r.toolTimeout as string);
    } catch (err) {
      fail('toolTimeout', (err as Error).message);
    }
    if (toolTimeoutMs <= 0) fail('toolTimeout', 'must be greater than zero');
  }
  const max = r.maxClusterBytes ?? DEFAULT_MAX_CLUSTER_BYTES;
  if (typeof max !== 'number' || !Number.isInteger(max) || max <= 0)
    fail('maxClusterBytes', 'must be a positive number of bytes');
  return {
    kustomizePath: path('kustomizePath'),
    helmPath: path('helmPath'),
    toolTimeoutMs,
    maxClusterBytes: max as number,
  };
}

/** The renderer options a RenderConfig stands for. */
export function renderOptionsOf(cfg: RenderConfig): RenderOptions {
  return {
    maxClusterBytes: cfg.maxClusterBytes,
    toolTimeoutMs: cfg.toolTimeoutMs,
    ...(cfg.kustomizePath !== undefined ? { kustomizePath: cfg.kustomizePath } : {}),
    ...(cfg.helmPath !== undefined ? { helmPath: cfg.helmPath } : {}),
  };
}
