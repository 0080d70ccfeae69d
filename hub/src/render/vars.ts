// Variable substitution in manifests: ${cluster.name}, ${cluster.labels.<key>},
// ${vars.<name>}; "$${" writes a literal "${". An unknown variable is an error, never an
// empty string: a silently empty image tag or namespace is worse than a failed render.
//
// A manifest file is parsed once per version, not once per cluster (parsing dominated
// the render time): each reference is first replaced by a placeholder token, which is
// a valid plain scalar anywhere (block or flow context, key or value, inside quotes),
// and placeholders are filled in the parsed values for each cluster. A plain
// (unquoted) scalar is then typed the way YAML types it, so `replicas: ${vars.n}` is a
// number, as if the text had been substituted; a quoted one stays a string. Unlike
// textual substitution, a value can never inject YAML structure.
import { ValidationError } from '@flotilla/common';

/** Everything a cluster contributes to substitution. */
export interface VarScope {
  clusterName: string;
  labels: Readonly<Record<string, string>>;
  /** Cluster vars overlaid with the matching target's vars. */
  vars: Readonly<Record<string, string>>;
}

/** One ${...} in a file: what it names and where. */
export interface Occurrence {
  ref: string;
  line: number;
}

/** A manifest text with references replaced by placeholders. */
export interface Template {
  text: string;
  occurrences: Occurrence[];
}

/** Marks a plain scalar that holds placeholders, so it is re-typed after filling. */
export const PLAIN_MARK = '\u0001';
const PLACEHOLDER_PREFIX = '__flotilla_var_';
const PLACEHOLDER = /__flotilla_var_(\d+)__/g;
const REF = /\$\$\{|\$\{([^}\n]*)(\}?)/g;
const FORMS =
  'use ${cluster.name}, ${cluster.labels.<key>} or ${vars.<name>}; write $${ for a literal ${';

/** True when a string holds at least one placeholder. */
export function hasPlaceholder(s: string): boolean {
  return s.includes(PLACEHOLDER_PREFIX);
}

/** Replaces references by placeholders; throws ValidationError (file:line) on a malformed one. */
export function compileTemplate(text: string, file: string): Template {
  const occurrences: Occurrence[] = [];
  if (!text.includes('${')) return { text, occurrences };
  if (hasPlaceholder(text))
    throw new ValidationError(`"${PLACEHOLDER_PREFIX}" is reserved`, { file });
  const lines = lineCounter(text);
  const out = text.replace(
    REF,
    (match: string, inner: string | undefined, close: string, offset: number) => {
      if (match === '$${') return '${';
      const line = lines(offset);
      if (close !== '}')
        throw new ValidationError(`unterminated variable reference "${match}"`, { file, line });
      const ref = (inner ?? '').trim();
      if (!(
        ref === 'cluster.name' ||
        /^cluster\.labels\.[^\s]+$/.test(ref) ||
        /^vars\.[A-Za-z_][A-Za-z0-9_-]*$/.test(ref)
      )) {
        throw new ValidationError(`\${${ref}}: unknown variable (${FORMS})`, { file, line });
      }
      occurrences.push({ ref, line });
      return `${PLACEHOLDER_PREFIX}${occurrences.length - 1}__`;
    },
  );
  return { text: out, occurrences };
}

/** The value of one reference in a scope, or an explanation of why there is none. */
export function resolveVariable(
  ref: string,
  scope: VarScope,
): { value: string } | { problem: string } {
  if (ref === 'cluster.name') return { value: scope.clusterName };
  if (ref.startsWith('cluster.labels.')) {
    const key = ref.slice('cluster.labels.'.length);
    const v = Object.prototype.hasOwnProperty.call(scope.labels, key)
      ? scope.labels[key]
      : undefined;
    return v === undefined
      ? { problem: `cluster "${scope.clusterName}" has no label "${key}"` }
      : { value: v };
  }
  if (ref.startsWith('vars.')) {
    const name = ref.slice('vars.'.length);
    const v = Object.prototype.hasOwnProperty.call(scope.vars, name) ? scope.vars[name] : undefined;
    return v === undefined
      ? {
          problem: `variable "${name}" is not defined for cluster "${scope.clusterName}" (set it in the cluster's spec.vars or the target's vars)`,
        }
      : { value: v };
  }
  return { problem: `unknown variable (${FORMS})` };
}

/** Indexes of the occurrences a string refers to. */
export function placeholderIndexes(s: string): number[] {
  return [...s.matchAll(PLACEHOLDER)].map((m) => Number(m[1]));
}

/** Fills placeholders in a parsed value (copying what changes); throws ValidationError at the reference's line. */
export function fillValue(value: unknown, t: Template, file: string, scope: VarScope): unknown {
  // Nothing was replaced (substitution off, or no reference): text that merely looks like
  // a placeholder is content, kept as it is.
  if (t.occurrences.length === 0) return value;
  if (typeof value === 'string')
    return hasPlaceholder(value) ? fillString(value, t, file, scope) : value;
  if (Array.isArray(value)) return value.map((v) => fillValue(v, t, file, scope));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[hasPlaceholder(k) ? String(fillString(k, t, file, scope)) : k] = fillValue(
        v,
        t,
        file,
        scope,
      );
    }
    return out;
  }
  return value;
}

function fillString(s: string, t: Template, file: string, scope: VarScope): unknown {
  const plain = s.startsWith(PLAIN_MARK);
  const text = (plain ? s.slice(1) : s).replace(PLACEHOLDER, (_m, n: string) => {
    const occ = t.occurrences[Number(n)] as Occurrence;
    const r = resolveVariable(occ.ref, scope);
    if ('problem' in r)
      throw new ValidationError(`\${${occ.ref}}: ${r.problem}`, { file, line: occ.line });
    return r.value;
  });
  return plain ? typePlainScalar(text) : text;
}

/**
 * Types a plain scalar of a manifest as the whole document is read (yaml-spec.ts, the
 * 'kubernetes' dialect: Go's YAML 1.1 rules): null, bool (yes/no/on/off/y/n too), int
 * (`0755` octal, `0x1f`, `0b101`, `1_000`), float, else string.
 */
export function typePlainScalar(s: string): unknown {
  if (/^(?:~|[Nn]ull|NULL)?$/.test(s)) return null;
  if (/^(?:[Tt]rue|TRUE|[Yy]es|YES|[Oo]n|ON|[Yy])$/.test(s)) return true;
  if (/^(?:[Ff]alse|FALSE|[Nn]o|NO|[Oo]ff|OFF|[Nn])$/.test(s)) return false;
  const sign = s.startsWith('-') ? -1 : 1;
  const digits = s.replace(/^[-+]/, '').replaceAll('_', '');
  if (/^[-+]?0[0-7_]+$/.test(s)) return sign * Number.parseInt(digits, 8);
  if (/^[-+]?[0-9][0-9_]*$/.test(s)) return sign * Number(digits);
  if (/^[-+]?0o[0-7]+$/.test(s)) return sign * Number.parseInt(digits.slice(2), 8);
  if (/^[-+]?0x[0-9a-fA-F_]+$/.test(s)) return sign * Number.parseInt(digits.slice(2), 16);
  if (/^[-+]?0b[01_]+$/.test(s)) return sign * Number.parseInt(digits.slice(2), 2);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^\.(?:nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

// Line of an offset, for offsets asked in increasing order: the text is scanned once in
// all, not once per reference (a file of 100,000 references stays linear).
function lineCounter(text: string): (offset: number) => number {
  let line = 1;
  let next = text.indexOf('\n');
  return (offset) => {
    for (; next >= 0 && next < offset; next = text.indexOf('\n', next + 1)) line++;
    return line;
  };
}

/**
 * Variables inside the string values of a bundle.yaml field (patches, Helm values): the
 * references they hold, checked for form. Throws ValidationError at `line`.
 */
export function refsInValue(value: unknown, file: string, line: number): string[] {
  const refs = new Set<string>();
  walkStrings(
    value,
    (s) => {
      if (s.includes('${')) for (const o of compileTemplate(s, file).occurrences) refs.add(o.ref);
    },
    file,
    line,
  );
  return [...refs].sort();
}

/**
 * A copy of value with variables substituted inside its strings (results stay strings:
 * no YAML typing here). Throws ValidationError at `line` for an undefined variable.
 */
export function substituteInValue(
  value: unknown,
  file: string,
  line: number,
  scope: VarScope,
): unknown {
  if (typeof value === 'string') {
    if (!value.includes('${')) return value;
    // Forms were checked when the bundle was parsed (refsInValue).
    const t = compileTemplate(value, file);
    return t.text.replace(PLACEHOLDER, (_m, n: string) => {
      const occ = t.occurrences[Number(n)] as Occurrence;
      const r = resolveVariable(occ.ref, scope);
      if ('problem' in r) throw new ValidationError(`\${${occ.ref}}: ${r.problem}`, { file, line });
      return r.value;
    });
  }
  if (Array.isArray(value)) return value.map((v) => substituteInValue(v, file, line, scope));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, substituteInValue(v, file, line, scope)]),
    );
  }
  return value;
}

function walkStrings(value: unknown, fn: (s: string) => void, file: string, line: number): void {
  try {
    if (typeof value === 'string') fn(value);
    else if (Array.isArray(value)) for (const v of value) walkStrings(v, fn, file, line);
    else if (value !== null && typeof value === 'object')
      for (const v of Object.values(value)) walkStrings(v, fn, file, line);
  } catch (err) {
    // compileTemplate knows no line inside a single value: report the field's line.
    if (err instanceof ValidationError && err.line !== line) {
      const bare = err.message.replace(/^[^:]*(?::\d+)?: /, '');
      throw new ValidationError(bare, { file, line, cause: err });
    }
    throw err;
  }
}
