// Label selectors with Kubernetes semantics, both the structured form used in fleet
// repo files and the string form kubectl users type after -l.
import { ValidationError } from './errors.js';

/** One requirement of a structured selector. */
export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** A Kubernetes LabelSelector. An empty selector matches everything. */
export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

type Op = LabelSelectorRequirement['operator'] | 'Equals' | 'NotEquals';
interface Requirement {
  key: string;
  op: Op;
  values: string[];
}

/** A compiled selector: call matches(labels). */
export interface Selector {
  matches(labels: Readonly<Record<string, string>>): boolean;
  readonly empty: boolean;
}

const KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function compile(reqs: Requirement[]): Selector {
  return {
    empty: reqs.length === 0,
    matches(labels) {
      return reqs.every((r) => {
        const has = Object.prototype.hasOwnProperty.call(labels, r.key);
        const v = has ? labels[r.key] : undefined;
        switch (r.op) {
          case 'Exists':
            return has;
          case 'DoesNotExist':
            return !has;
          case 'Equals':
          case 'In':
            return has && r.values.includes(v as string);
          case 'NotEquals':
          case 'NotIn':
            return !has || !r.values.includes(v as string);
        }
      });
    },
  };
}

function checkKey(key: string, where: string): void {
  if (!KEY.test(key) || key.length > 316)
    throw new ValidationError(`${where}: invalid label key "${key}"`);
}
function checkValue(value: string, where: string): void {
  if (!VALUE.test(value) || value.length > 63) {
    throw new ValidationError(`${where}: invalid label value "${value}"`);
  }
}

/** Compiles a structured LabelSelector; throws ValidationError naming the bad part. */
export function compileLabelSelector(sel: LabelSelector | undefined, where = 'selector'): Selector {
  const reqs: Requirement[] = [];
  for (const [key, value] of Object.entries(sel?.matchLabels ?? {})) {
    checkKey(key, where);
    if (typeof value !== 'string')
      throw new ValidationError(`${where}: matchLabels.${key} must be a string`);
    checkValue(value, where);
    reqs.push({ key, op: 'Equals', values: [value] });
  }
  for (const [i, expr] of (sel?.matchExpressions ?? []).entries()) {
    const at = `${where}.matchExpressions[${i}]`;
    checkKey(expr.key, at);
    const values = expr.values ?? [];
    switch (expr.operator) {
      case 'In':
      case 'NotIn':
        if (values.length === 0)
          throw new ValidationError(`${at}: operator ${expr.operator} needs values`);
        values.forEach((v) => checkValue(v, at));
        break;
      case 'Exists':
      case 'DoesNotExist':
        if (values.length > 0)
          throw new ValidationError(`${at}: operator ${expr.operator} takes no values`);
        break;
      default:
        throw new ValidationError(
          `${at}: unknown operator "${String(expr.operator)}" (use In, NotIn, Exists, DoesNotExist)`,
        );
    }
    reqs.push({ key: expr.key, op: expr.operator, values });
  }
  return compile(reqs);
}

/**
 * Parses kubectl's selector syntax: "env=prod", "env!=dev", "tier in (a,b)",
 * "tier notin (a)", "gpu", "!gpu", comma-separated (all must hold).
 */
export function parseSelector(text: string): Selector {
  const reqs: Requirement[] = [];
  const src = text.trim();
  let i = 0;
  const fail = (msg: string): never => {
    throw new ValidationError(`invalid selector "${text}": ${msg}`);
  };
  const skipWs = (): void => {
    while (src[i] === ' ') i++;
  };
  const word = (): string => {
    skipWs();
    const start = i;
    while (i < src.length && /[A-Za-z0-9_.\-/]/.test(src[i] as string)) i++;
    return src.slice(start, i);
  };
  while (i < src.length) {
    skipWs();
    let negate = false;
    if (src[i] === '!') {
      negate = true;
      i++;
    }
    const key = word();
    if (!key) fail(`expected a label key at position ${i}`);
    checkKey(key, `selector "${text}"`);
    skipWs();
    if (negate) {
      reqs.push({ key, op: 'DoesNotExist', values: [] });
    } else if (src.startsWith('!=', i)) {
      i += 2;
      const v = word();
      checkValue(v, `selector "${text}"`);
      reqs.push({ key, op: 'NotEquals', values: [v] });
    } else if (src.startsWith('==', i) || src[i] === '=') {
      i += src.startsWith('==', i) ? 2 : 1;
      const v = word();
      checkValue(v, `selector "${text}"`);
      reqs.push({ key, op: 'Equals', values: [v] });
    } else if (/^(in|notin)\s*\(/.test(src.slice(i))) {
      const op = src.startsWith('notin', i) ? 'NotIn' : 'In';
      i = src.indexOf('(', i) + 1;
      const close = src.indexOf(')', i);
      if (close < 0) fail('missing ")"');
      const values = src
        .slice(i, close)
        .split(',')
        .map((v) => v.trim());
      if (values.length === 0 || values.some((v) => v === '')) fail(`empty value in ${op} list`);
      values.forEach((v) => checkValue(v, `selector "${text}"`));
      reqs.push({ key, op, values });
      i = close + 1;
    } else {
      reqs.push({ key, op: 'Exists', values: [] });
    }
    skipWs();
    if (i < src.length) {
      if (src[i] !== ',') fail(`unexpected "${src[i]}" at position ${i}`);
      i++;
    }
  }
  return compile(reqs);
}
