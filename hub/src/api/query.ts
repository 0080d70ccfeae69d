// Query parameters shared by the HTTP and gRPC APIs, parsed once with errors that name
// the parameter (ValidationError → HTTP 400 / gRPC INVALID_ARGUMENT).
import type { Selector } from '@flotilla/common';
import type { HistoryKind } from '../history/history-log.js';
import {
  EVENT_TYPES,
  ValidationError,
  errorMessage,
  parseDuration,
  parseSelector,
} from '@flotilla/common';
import { DEPLOYMENT_STATES } from '../status/deployments.js';
import type { DeploymentState } from '../status/deployments.js';

/** A label selector, or undefined for an empty text. */
export function selectorParam(
  text: string | null | undefined,
  name = 'selector',
): Selector | undefined {
  if (!text || text.trim() === '') return undefined;
  try {
    return parseSelector(text);
  } catch (err) {
    throw new ValidationError(`${name}: ${errorMessage(err)}`);
  }
}

/** A revision filter: at least 7 hex characters, as Git abbreviates. */
export function revisionParam(
  text: string | null | undefined,
  name = 'revision',
): string | undefined {
  if (!text) return undefined;
  if (!/^[0-9a-f]{7,64}$/.test(text))
    throw new ValidationError(
      `${name}: "${text}" is not a commit SHA (7 to 64 lower-case hex characters)`,
    );
  return text;
}

/** A point in time: an ISO date, or a duration ago ("24h"); undefined for none. */
export function timeParam(
  text: string | null | undefined,
  name: string,
  nowMs: number,
): number | undefined {
  if (!text) return undefined;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isNaN(t)) throw new ValidationError(`${name}: "${text}" is not a valid time`);
    return t;
  }
  try {
    return nowMs - parseDuration(text);
  } catch {
    throw new ValidationError(
      `${name}: "${text}" is neither a duration such as 24h nor an ISO time`,
    );
  }
}

/** History kinds (event kinds, "rollout" for rollout transitions, "audit" for writes), each checked. */
export function kindsParam(values: readonly string[], name = 'kind'): HistoryKind[] {
  const kinds = values.flatMap((v) => v.split(',')).filter((v) => v !== '');
  for (const k of kinds) {
    if (!(k in EVENT_TYPES) && k !== 'rollout' && k !== 'audit')
      throw new ValidationError(
        `${name}: unknown event kind "${k}" (use ${Object.keys(EVENT_TYPES).join(', ')}, rollout, audit)`,
      );
  }
  return kinds as HistoryKind[];
}

/** A deployment state, checked. */
export function stateParam(text: string | null | undefined): DeploymentState | undefined {
  if (!text) return undefined;
  if (!DEPLOYMENT_STATES.includes(text as DeploymentState))
    throw new ValidationError(
      `state: unknown state "${text}" (use ${DEPLOYMENT_STATES.join(', ')})`,
    );
  return text as DeploymentState;
}

/** A positive limit, at most max. */
export function limitParam(
  text: string | number | null | undefined,
  max = 10_000,
): number | undefined {
  if (text === null || text === undefined || text === '' || text === 0) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > max)
    throw new ValidationError(`limit: must be an integer from 1 to ${max}, got "${text}"`);
  return n;
}
