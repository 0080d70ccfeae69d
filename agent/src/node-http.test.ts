import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

// Each case runs in a fresh node process: what a process has loaded is per process.
const HTTP_MODULE = new URL('./node-http.js', import.meta.url).href;
// Node 22 added node:http's lazy WebSocket getter, which loads the bundled undici.
const HAS_LAZY_GETTERS = Number(process.versions.node.split('.')[0]) >= 22;

/** Whether Node's bundled undici is loaded after running `code` as an ES module. */
function undiciLoadedAfter(code: string): boolean {
  const script = `${code}
    console.log(process.moduleLoadList.some((m) => m.includes('undici')));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim() === 'true';
}

test('esm-import-of-node-http-loads-undici-on-node-22-and-later', () => {
  // The control: on this Node, the plain import does load undici, so the next test can fail.
  assert.equal(undiciLoadedAfter(`await import('node:http');`), HAS_LAZY_GETTERS);
});

test('agent-http-module-does-not-load-undici', () => {
  const code = `const { http } = await import(${JSON.stringify(HTTP_MODULE)});
    const server = http.createServer();
    new http.Agent({ keepAlive: true }).destroy();
    server.close();`;
  assert.equal(undiciLoadedAfter(code), false);
});
