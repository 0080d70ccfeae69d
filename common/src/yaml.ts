// YAML parsing that reports the file and line of a problem, for fleet repo files and
// config files alike.
import { LineCounter, parseAllDocuments } from 'yaml';
import { ValidationError } from './errors.js';

/** One YAML document with the line it starts on (1-based). */
export interface YamlDocument {
  value: unknown;
  line: number;
}

/**
 * Parses every document in a YAML stream. Empty documents are dropped. Throws
 * ValidationError with file and line on the first syntax error.
 */
export function parseYamlDocuments(text: string, file: string): YamlDocument[] {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const out: YamlDocument[] = [];
  for (const doc of docs) {
    const firstError = doc.errors[0];
    if (firstError) {
      const pos = lineCounter.linePos(firstError.pos[0]);
      throw new ValidationError(`invalid YAML: ${firstError.message.split('\n')[0]}`, {
        file,
        line: pos.line,
      });
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) continue;
    const start = doc.contents?.range?.[0] ?? 0;
    out.push({ value, line: lineCounter.linePos(start).line });
  }
  return out;
}

/** Parses a file that must hold exactly one YAML mapping. */
export function parseYamlObject(text: string, file: string): Record<string, unknown> {
  const docs = parseYamlDocuments(text, file);
  if (docs.length !== 1)
    throw new ValidationError(`expected one YAML document, found ${docs.length}`, { file });
  const [doc] = docs as [YamlDocument];
  if (!doc.value || typeof doc.value !== 'object' || Array.isArray(doc.value)) {
    throw new ValidationError('expected a YAML mapping', { file, line: doc.line });
  }
  return doc.value as Record<string, unknown>;
}
