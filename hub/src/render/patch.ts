// Per-target patches: JSON merge patch (RFC 7386) and JSON patch (RFC 6902) on the
// objects a selector picks. Applied after variables and the default namespace, so a
// selector's namespace matches where the object really goes. A patch that matches no
// object is an error: it is almost always a typo that would silently deploy the
// unpatched object.
import { ValidationError } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import { isRecord } from './yaml-spec.js';

/** Which objects a patch applies to; every field given must match. */
export interface PatchSelector {
  kind: string;
  name: string;
  namespace?: string;
  /** API group ("" = core, "apps", …); any group when absent. */
  group?: string;
}

/** One RFC 6902 operation. */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

/** One entry of a target's `patches`, with where it was written. */
export interface PatchDef {
  selector: PatchSelector;
  /** RFC 7386 merge patch, or undefined for a JSON patch. */
  merge: unknown;
  /** RFC 6902 operations, or undefined for a merge patch. */
  jsonPatch: JsonPatchOp[] | undefined;
  file: string;
  line: number;
  /** "spec.targets[1].patches[0]", for messages. */
  at: string;
}

/** The API group of an apiVersion ("apps/v1" → "apps", "v1" → ""). */
export function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

/** True when the selector picks the object. */
export function selects(sel: PatchSelector, obj: KubeObject): boolean {
  return (
    obj.kind === sel.kind &&
    obj.metadata.name === sel.name &&
    (sel.namespace === undefined || obj.metadata.namespace === sel.namespace) &&
    (sel.group === undefined || groupOf(obj.apiVersion) === sel.group)
  );
}

/** RFC 7386: null deletes, objects merge recursively, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const out: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** Applies RFC 6902 operations to a copy of doc; throws Error saying which operation failed. */
export function applyJsonPatch(doc: unknown, ops: readonly JsonPatchOp[]): unknown {
  let root = structuredClone(doc);
  ops.forEach((op, i) => {
    try {
      root = applyOp(root, op);
    } catch (err) {
      throw new Error(`operation ${i} (${op.op} ${op.path}): ${(err as Error).message}`, {
        cause: err,
      });
    }
  });
  return root;
}

function applyOp(root: unknown, op: JsonPatchOp): unknown {
  switch (op.op) {
    case 'add':
      return put(root, op.path, structuredClone(op.value), 'add');
    case 'replace':
      get(root, op.path);
      return put(root, op.path, structuredClone(op.value), 'replace');
    case 'remove':
      return remove(root, op.path);
    case 'move': {
      const v = get(root, op.from as string);
      return put(remove(root, op.from as string), op.path, v, 'add');
    }
    case 'copy':
      return put(root, op.path, structuredClone(get(root, op.from as string)), 'add');
    case 'test':
      if (JSON.stringify(get(root, op.path)) !== JSON.stringify(op.value))
        throw new Error('test failed: value differs');
      return root;
  }
}

/** Splits a JSON pointer into unescaped tokens; "" is the whole document. */
export function pointerTokens(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new Error(`"${pointer}" is not a JSON pointer (must start with "/")`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function child(container: unknown, token: string): unknown {
  if (Array.isArray(container)) {
    const i = arrayIndex(container, token, false);
    if (i >= container.length) throw new Error(`index ${token} is out of range`);
    return container[i];
  }
  if (isRecord(container) && Object.prototype.hasOwnProperty.call(container, token))
    return container[token];
  throw new Error(`path does not exist ("${token}" not found)`);
}

function get(root: unknown, pointer: string): unknown {
  return pointerTokens(pointer).reduce(child, root);
}

function arrayIndex(arr: unknown[], token: string, allowEnd: boolean): number {
  if (allowEnd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new Error(`"${token}" is not an array index`);
  return Number(token);
}

function put(root: unknown, pointer: string, value: unknown, mode: 'add' | 'replace'): unknown {
  const tokens = pointerTokens(pointer);
  if (tokens.length === 0) return value;
  const last = tokens.pop() as string;
  const parent = tokens.reduce(child, root);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, mode === 'add');
    if (i > parent.length || (mode === 'replace' && i >= parent.length))
      throw new Error(`index ${last} is out of range`);
    if (mode === 'add') parent.splice(i, 0, value);
    else parent[i] = value;
  } else if (isRecord(parent)) {
    parent[last] = value;
  } else {
    throw new Error('parent is not an object or array');
  }
  return root;
}

function remove(root: unknown, pointer: string): unknown {
  const tokens = pointerTokens(pointer);
  if (tokens.length === 0) throw new Error('cannot remove the whole document');
  const last = tokens.pop() as string;
  const parent = tokens.reduce(child, root);
  child(parent, last);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, false), 1);
  else delete (parent as Record<string, unknown>)[last];
  return root;
}

/**
 * Applies a target's patches to a bundle's objects (returns new objects for the patched
 * ones). Throws ValidationError at the patch's line when one matches nothing or fails.
 */
export function applyPatches(
  objects: readonly KubeObject[],
  patches: readonly PatchDef[],
): KubeObject[] {
  const out = [...objects];
  for (const p of patches) {
    let matched = 0;
    for (let i = 0; i < out.length; i++) {
      const obj = out[i] as KubeObject;
      if (!selects(p.selector, obj)) continue;
      matched++;
      let next: unknown;
      try {
        next = p.jsonPatch ? applyJsonPatch(obj, p.jsonPatch) : mergePatch(obj, p.merge);
      } catch (err) {
        throw new ValidationError(
          `${p.at}: JSON patch on ${describe(p.selector)} failed: ${(err as Error).message}`,
          { file: p.file, line: p.line },
        );
      }
      out[i] = next as KubeObject;
    }
    if (matched === 0) {
      throw new ValidationError(
        `${p.at}: patch matches no object (${describe(p.selector)}) of the bundle`,
        { file: p.file, line: p.line },
      );
    }
  }
  return out;
}

function describe(s: PatchSelector): string {
  const ns = s.namespace !== undefined ? ` in namespace ${s.namespace}` : '';
  const g = s.group !== undefined ? ` (group "${s.group}")` : '';
  return `${s.kind} ${s.name}${ns}${g}`;
}
