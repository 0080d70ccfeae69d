// One way to print a render error, shared by the CLI and the hub's logs.
import type { RenderError } from './types.js';

/** "file:line: message [bundle b, cluster c]"; the message already carries file:line when known. */
export function formatRenderError(e: RenderError): string {
  const ctx = [
    e.bundle !== undefined ? `bundle ${e.bundle}` : '',
    e.cluster !== undefined ? `cluster ${e.cluster}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return ctx ? `${e.message} [${ctx}]` : e.message;
}
