// What differs between what our apply would produce (a dry-run of the applied config)
// and the live object, as JSON pointers with both values. Because the dry-run already
// carries every field other managers own and every server default, whatever differs
// here is a field WE manage that someone changed.
import type { DriftChange, DriftIgnoreRule, KubeObject } from '@flotilla/common';
import { comparable } from '../apply/diff.js';

/** Value shown instead of a Secret's content. */
export const REDACTED = '<redacted>';

/** Escapes one JSON pointer segment (RFC 6901). */
export function pointerSegment(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) =>
    same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

function walk(path: string, desired: unknown, live: unknown, out: DriftChange[]): void {
  if (same(desired, live)) return;
  if (isObject(desired) && isObject(live)) {
    for (const k of new Set([...Object.keys(desired), ...Object.keys(live)]))
      walk(`${path}/${pointerSegment(k)}`, desired[k], live[k], out);
    return;
  }
  // Lists of equal length are compared item by item (a container's image, not the whole pod spec).
  if (Array.isArray(desired) && Array.isArray(live) && desired.length === live.length) {
    desired.forEach((d, i) => walk(`${path}/${i}`, d, live[i], out));
    return;
  }
  const change: DriftChange = { path: path || '/' };
  if (desired !== undefined) change.old = desired;
  if (live !== undefined) change.new = live;
  out.push(change);
}

/** Leaf-level differences between a dry-run result and the live object, ignoring status and server metadata. */
export function driftChanges(dryRun: KubeObject, live: KubeObject): DriftChange[] {
  const out: DriftChange[] = [];
  walk('', comparable(dryRun), comparable(live), out);
  return out;
}

/** True when `path` is `prefix` or lies below it. */
export function underPointer(path: string, prefix: string): boolean {
  const p = prefix.replace(/\/$/, '');
  return p === '' || path === p || path.startsWith(`${p}/`);
}

/** The ignore paths of the rules that match this object. */
export function ignoredPaths(
  rules: readonly DriftIgnoreRule[],
  obj: Pick<KubeObject, 'kind' | 'metadata'>,
): string[] {
  return rules
    .filter(
      (r) =>
        (!r.kind || r.kind === obj.kind) &&
        (!r.name || r.name === obj.metadata.name) &&
        (!r.namespace || r.namespace === obj.metadata.namespace),
    )
    .flatMap((r) => r.paths);
}

/** Changes not covered by an ignored path. */
export function withoutIgnored(
  changes: readonly DriftChange[],
  paths: readonly string[],
): DriftChange[] {
  if (paths.length === 0) return [...changes];
  return changes.filter((c) => !paths.some((p) => underPointer(c.path, p)));
}

/**
 * Changes safe to publish: for a Secret every value except labels is redacted (data,
 * stringData, and annotations such as last-applied-configuration may all hold secrets);
 * long values are cut.
 */
export function publishable(
  kind: string,
  changes: readonly DriftChange[],
  maxValueChars = 256,
): DriftChange[] {
  const secret = kind === 'Secret';
  const show = (path: string, v: unknown): unknown => {
    if (v === undefined) return undefined;
    if (secret && !underPointer(path, '/metadata/labels')) return REDACTED;
    const text = JSON.stringify(v);
    return text.length > maxValueChars ? `${text.slice(0, maxValueChars)}…` : v;
  };
  return changes.map((c) => {
    const out: DriftChange = { path: c.path };
    if (c.old !== undefined) out.old = show(c.path, c.old);
    if (c.new !== undefined) out.new = show(c.path, c.new);
    return out;
  });
}
