// The status, history and alerting part of the hub's configuration (stage 2 → 3 for
// the fields hubId, history and notify of hub.yaml); errors name file and field.
import { ConfigError, isDnsLabel, parseDuration } from '@flotilla/common';
import type { AlertKind } from '../notify/notifier.js';
import { NOTIFY_DEFAULTS } from '../notify/notifier.js';

/** A webhook as configured; the URL comes from the file or, for secrets, an environment variable. */
export interface WebhookConfig {
  name: string;
  /** The URL, or undefined when urlEnv names where it is. */
  url: string | undefined;
  urlEnv: string | undefined;
  format: 'slack' | 'json';
  events: AlertKind[];
}

/** Compiled status settings. */
export interface StatusConfig {
  /** Names this hub's durable consumer (flotilla-hub-status-<hubId>); unique per hub (default "main"). */
  hubId: string;
  /**
   * This replica's name when several hubs run with the same hubId (hub.yaml replicaId, or
   * FLOTILLA_HUB_REPLICA, e.g. the pod's name): each replica then has its own durable
   * consumer (flotilla-hub-status-<hubId>-<replicaId>). Unset: one hub, one durable.
   */
  replicaId?: string;
  /**
   * The other replicas' HTTP addresses ("host:port"; a name resolving to several addresses,
   * such as a headless Service, stands for each of them), asked over HTTP before this
   * replica, cut from NATS, sends its agents away (lease/peer-probe.ts). Empty: it sends
   * them away without asking.
   */
  peers: string[];
  /** How long the event history is kept and replayed at start (default 7 d, the events stream's max age). */
  history: { retentionMs: number };
  notify: { webhooks: WebhookConfig[]; dedupeWindowMs: number };
}

/** Defaults of the status settings. */
export const STATUS_CONFIG_DEFAULTS = {
  hubId: 'main',
  historyRetention: 7 * 86_400_000,
} as const;

const ALERT_KINDS: readonly AlertKind[] = ['drift', 'failed', 'offline', 'render', 'rollout'];
type Obj = Record<string, unknown>;

function obj(v: unknown, field: string, allowed: readonly string[], file: string): Obj {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v))
    throw new ConfigError(field, 'must be a mapping', { file });
  for (const k of Object.keys(v))
    if (!allowed.includes(k))
      throw new ConfigError(`${field}.${k}`, `unknown field (allowed: ${allowed.join(', ')})`, {
        file,
      });
  return v as Obj;
}

function duration(v: unknown, field: string, fallback: number, file: string): number {
  if (v === undefined || v === null) return fallback;
  try {
    const ms = parseDuration(v as string);
    if (ms <= 0) throw new RangeError('must be greater than zero');
    return ms;
  } catch (err) {
    throw new ConfigError(field, (err as Error).message, { file });
  }
}

function webhook(v: unknown, field: string, file: string, seen: Set<string>): WebhookConfig {
  const w = obj(v, field, ['name', 'url', 'urlEnv', 'format', 'events'], file);
  const fail = (f: string, problem: string): never => {
    throw new ConfigError(`${field}.${f}`, problem, { file });
  };
  if (typeof w.name !== 'string' || !isDnsLabel(w.name))
    fail('name', 'is required and must be a DNS label');
  const name = w.name as string;
  if (seen.has(name)) fail('name', `duplicate webhook name "${name}"`);
  seen.add(name);
  const url = typeof w.url === 'string' ? w.url : undefined;
  const urlEnv = typeof w.urlEnv === 'string' ? w.urlEnv : undefined;
  if ((url === undefined) === (urlEnv === undefined))
    fail('url', 'give exactly one of url or urlEnv (an environment variable holding the URL)');
  // The URL itself is never quoted in an error: Slack's carry a secret.
  if (url !== undefined && !/^https?:\/\/[^\s]+$/.test(url)) fail('url', 'must be an http(s) URL');
  const format = w.format ?? 'json';
  if (format !== 'slack' && format !== 'json')
    fail('format', `must be slack or json, got ${JSON.stringify(format)}`);
  let events = [...ALERT_KINDS];
  if (w.events !== undefined) {
    if (!Array.isArray(w.events) || w.events.some((e) => !ALERT_KINDS.includes(e as AlertKind)))
      fail('events', `must be a list of ${ALERT_KINDS.join(', ')}`);
    events = w.events as AlertKind[];
  }
  return { name, url, urlEnv, format: format as 'slack' | 'json', events };
}

/** Compiles hubId, history and notify from the top level of hub.yaml. */
export function compileStatusConfig(top: Obj, file: string): StatusConfig {
  const hubId = top.hubId ?? STATUS_CONFIG_DEFAULTS.hubId;
  if (typeof hubId !== 'string' || !isDnsLabel(hubId))
    throw new ConfigError('hubId', 'must be a DNS label (lower-case letters, digits, "-")', {
      file,
    });
  const replicaId = top.replicaId;
  if (replicaId !== undefined && (typeof replicaId !== 'string' || !isDnsLabel(replicaId)))
    throw new ConfigError('replicaId', 'must be a DNS label (lower-case letters, digits, "-")', {
      file,
    });
  const peers = top.peers ?? [];
  if (
    !Array.isArray(peers) ||
    peers.length > 64 ||
    peers.some(
      (p) => typeof p !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[^:[\]\s/]+):\d{1,5}$/.test(p),
    )
  )
    throw new ConfigError(
      'peers',
      'must be a list of at most 64 "host:port" HTTP addresses of the other replicas',
      { file },
    );
  const history = obj(top.history, 'history', ['retention'], file);
  const notify = obj(top.notify, 'notify', ['webhooks', 'dedupeWindow'], file);
  if (notify.webhooks !== undefined && !Array.isArray(notify.webhooks))
    throw new ConfigError('notify.webhooks', 'must be a list', { file });
  const seen = new Set<string>();
  return {
    hubId,
    ...(replicaId !== undefined ? { replicaId } : {}),
    peers: peers as string[],
    history: {
      retentionMs: duration(
        history.retention,
        'history.retention',
        STATUS_CONFIG_DEFAULTS.historyRetention,
        file,
      ),
    },
    notify: {
      webhooks: ((notify.webhooks as unknown[] | undefined) ?? []).map((w, i) =>
        webhook(w, `notify.webhooks[${i}]`, file, seen),
      ),
      dedupeWindowMs: duration(
        notify.dedupeWindow,
        'notify.dedupeWindow',
        NOTIFY_DEFAULTS.dedupeWindowMs,
        file,
      ),
    },
  };
}
