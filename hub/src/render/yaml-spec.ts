// Parsing of the fleet repo's own files (Cluster, Bundle) with the line of every field,
// so a validation error points at the line to fix, not just the file.
import { Composer, LineCounter, Parser, isMap, isNode, isScalar, isSeq } from 'yaml';
import type { Document, ScalarTag, Tags } from 'yaml';
import { ValidationError, errorMessage } from '@flotilla/common';

/** Documents (empty ones included) a Cluster, ClusterGroup or Bundle file may hold: it needs one. */
const MAX_SPEC_DOCUMENTS = 100;

/**
 * How a YAML stream is read. 'kubernetes' reads Kubernetes manifests as kubectl, helm and
 * the controllers do (Go's YAML 1.1 libraries, sigs.k8s.io/yaml): `0755` is octal (493),
 * `yes`/`no`/`on`/`off`/`y`/`n` are booleans and `<<` merges a mapping. Timestamps,
 * sexagesimal numbers (`10:30`) and the other YAML 1.1 types stay strings, as they do
 * there. 'spec' is YAML 1.2 (the core schema), for Flotilla's own files.
 */
export type YamlDialect = 'kubernetes' | 'spec';

// YAML 1.1 types Go's libraries do not resolve when decoding into plain values.
const NOT_KUBERNETES = new Set([
  'tag:yaml.org,2002:timestamp',
  'tag:yaml.org,2002:binary',
  'tag:yaml.org,2002:omap',
  'tag:yaml.org,2002:pairs',
  'tag:yaml.org,2002:set',
]);

// Go reads `0o755` as octal too (YAML 1.1 alone would leave it a string).
const INT_OCT_O: ScalarTag = {
  identify: (value) => typeof value === 'number' && Number.isInteger(value),
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^[-+]?0o[0-7_]+$/,
  resolve: (str) => {
    const n = Number.parseInt(str.replace(/^[-+]?0o/, '').replaceAll('_', ''), 8);
    return str.startsWith('-') ? -n : n;
  },
};

const DIALECTS = {
  spec: {},
  kubernetes: {
    version: '1.1',
    customTags: (tags: Tags): Tags => [
      INT_OCT_O,
      ...tags.filter((t) => {
        if (typeof t !== 'object') return true;
        return !NOT_KUBERNETES.has(t.tag) && t.format !== 'TIME';
      }),
    ],
  },
} as const;

/**
 * The documents of a YAML stream, composed one at a time, so a caller can stop reading
 * a stream of a million empty documents after the few it allows.
 */
export function composeDocuments(
  text: string,
  lineCounter: LineCounter,
  dialect: YamlDialect = 'spec',
): Generator<Document.Parsed> {
  const parser = new Parser(lineCounter.addNewLine);
  return new Composer({ prettyErrors: false, uniqueKeys: true, ...DIALECTS[dialect] }).compose(
    parser.parse(text),
  );
}

/**
 * Any failure while reading YAML (an alias bomb, a library bug) as the file's
 * ValidationError: a hostile file is its bundle's problem, never the whole commit's.
 */
export function yamlFailure(err: unknown, file: string, line?: number): ValidationError {
  if (err instanceof ValidationError) return err;
  return new ValidationError(`invalid YAML: ${errorMessage(err).split('\n')[0]}`, {
    file,
    ...(line !== undefined ? { line } : {}),
    cause: err,
  });
}

/** A parsed single-document YAML file that can say where a field is. */
export interface SpecDocument {
  file: string;
  value: Record<string, unknown>;
  /** 1-based line of the node at path, or of the nearest existing parent. */
  lineOf(path: readonly (string | number)[]): number;
}

/** Parses a file that must hold one YAML mapping; throws ValidationError with file:line. */
export function parseSpecDocument(text: string, file: string): SpecDocument {
  const lineCounter = new LineCounter();
  const lineAt = (offset: number | undefined): number => lineCounter.linePos(offset ?? 0).line;
  let doc: Document.Parsed | undefined;
  let value: unknown;
  try {
    let count = 0;
    for (const d of composeDocuments(text, lineCounter)) {
      const e = d.errors[0];
      if (e)
        throw new ValidationError(`invalid YAML: ${e.message.split('\n')[0]}`, {
          file,
          line: lineAt(e.pos[0]),
        });
      if (++count > MAX_SPEC_DOCUMENTS)
        throw new ValidationError(`expected one YAML document, found over ${MAX_SPEC_DOCUMENTS}`, {
          file,
        });
      // "---" with nothing after it is a document holding a null scalar: empty, too.
      if (d.contents === null || (isScalar(d.contents) && d.contents.value === null)) continue;
      if (doc)
        throw new ValidationError('expected one YAML document, found more', {
          file,
          line: lineAt(d.contents.range[0]),
        });
      doc = d;
    }
    if (!doc) throw new ValidationError('expected one YAML document, found 0', { file });
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw yamlFailure(err, file, doc ? lineAt(doc.contents?.range?.[0]) : undefined);
  }
  const parsed = doc as Document.Parsed;
  if (!isRecord(value))
    throw new ValidationError('expected a YAML mapping', {
      file,
      line: lineAt(parsed.contents?.range?.[0]),
    });
  return {
    file,
    value,
    lineOf(path) {
      return lineAt(locate(parsed.contents, path));
    },
  };
}

/**
 * Offset of the deepest node on path that exists: for a mapping field, its key (the
 * line that names the field); for a list item, the item.
 */
function locate(root: unknown, path: readonly (string | number)[]): number | undefined {
  let node: unknown = root;
  let offset = isNode(root) ? root.range?.[0] : undefined;
  for (const seg of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      if (isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
      if (isNode(node) && node.range) offset = node.range[0];
    } else {
      break;
    }
  }
  return offset;
}

/** True for a plain (non-array) object. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads typed fields of one mapping in a SpecDocument and reports errors at their line. */
export class FieldReader {
  constructor(
    private readonly doc: SpecDocument,
    private readonly path: readonly (string | number)[],
    private readonly obj: Record<string, unknown>,
  ) {}

  /** Rejects fields not in `known`, so typos ("targes:") are errors rather than ignored. */
  only(known: readonly string[]): this {
    for (const key of Object.keys(this.obj)) {
      if (!known.includes(key))
        this.fail([key], `unknown field "${this.at(key)}" (known: ${known.join(', ')})`);
    }
    return this;
  }

  str(key: string): string | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail([key], `${this.at(key)} must be a string`);
    return v as string;
  }

  bool(key: string): boolean | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail([key], `${this.at(key)} must be true or false`);
    return v as boolean;
  }

  /** A map of strings; numbers and booleans are accepted and turned into strings. */
  stringMap(key: string): Record<string, string> | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v)) this.fail([key], `${this.at(key)} must be a mapping`);
    const out: Record<string, string> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') {
        this.fail([key, k], `${this.at(key)}.${k} must be a string`);
      }
      out[k] = String(x);
    }
    return out;
  }

  /** A nested mapping as its own reader, or undefined when absent. */
  child(key: string): FieldReader | undefined {
    const v = this.obj[key];
    if (v === undefined || v === null) return undefined;
    if (!isRecord(v)) this.fail([key], `${this.at(key)} must be a mapping`);
    return new FieldReader(this.doc, [...this.path, key], v as Record<string, unknown>);
  }

  /** Items of a list of mappings as readers. */
  list(key: string): FieldReader[] {
    const v = this.obj[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail([key], `${this.at(key)} must be a list`);
    return (v as unknown[]).map((item, i) => {
      if (!isRecord(item)) this.fail([key, i], `${this.at(key)}[${i}] must be a mapping`);
      return new FieldReader(this.doc, [...this.path, key, i], item as Record<string, unknown>);
    });
  }

  /** The mapping itself, as parsed. */
  rawObject(): Readonly<Record<string, unknown>> {
    return this.obj;
  }

  /** The file being read. */
  file(): string {
    return this.doc.file;
  }

  /** 1-based line of a field below this mapping (or of the mapping itself). */
  lineOf(sub: readonly (string | number)[]): number {
    return this.doc.lineOf([...this.path, ...sub]);
  }

  /** The raw value of a field. */
  raw(key: string): unknown {
    return this.obj[key];
  }

  /** Throws a ValidationError at the line of a field below this mapping. */
  fail(sub: readonly (string | number)[], message: string, cause?: unknown): never {
    throw new ValidationError(message, {
      file: this.doc.file,
      line: this.doc.lineOf([...this.path, ...sub]),
      cause,
    });
  }

  /** Dotted path of a field, for messages ("spec.targets[0].vars"). */
  at(key?: string): string {
    const parts = key === undefined ? this.path : [...this.path, key];
    return parts.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  }
}
