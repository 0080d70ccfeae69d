// node:http, loaded with require() on purpose. Node 22+ gives node:http lazy getters
// (WebSocket, CloseEvent, MessageEvent) that load Node's bundled undici; the ESM view of a
// built-in module reads every export when it is imported, so `import ... from
// 'node:http'` loads undici although the agent never uses it: +12 MiB RSS and +2.2 MiB of
// heap on Node 24 (measured, a bare process and the agent alike); Node 20 has no such
// getters. require() reads no export it is not asked for. node-http.test.ts checks it.
import { createRequire } from 'node:module';
import type * as Http from 'node:http';

/** The node:http module, without loading what its lazy exports would load. */
export const http = createRequire(import.meta.url)('node:http') as typeof Http;
