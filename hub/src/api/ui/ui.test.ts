// The fleet page on the HTTP API's listener: its files, their security and cache headers,
// and that the JSON API around it answers exactly as before.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { FleetStatus } from '../../status/fleet-status.js';
import { startHttpApi } from '../http.js';
import { DEPLOYMENT_STATES } from '../../status/deployments.js';
import { PAGE_CSS } from './page-css.js';
import { PAGE_SCRIPT } from './page-script.js';
import { UI_CSP, uiAssetPaths } from './serve.js';

async function api() {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet([{ name: 'edge-1', labels: { env: 'prod' }, desired: undefined }]);
  const srv = await startHttpApi('127.0.0.1', 0, {
    status,
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  const get = (path: string, init: RequestInit = {}) =>
    fetch(`http://127.0.0.1:${srv.port}${path}`, init);
  return { srv, get };
}

test('fleet-page-is-html-with-a-strict-csp-and-nosniff', async () => {
  const { srv, get } = await api();
  try {
    for (const path of ['/', '/ui', '/ui/']) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
      assert.equal(res.headers.get('content-security-policy'), UI_CSP);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('cache-control'), 'no-cache');
      const html = await res.text();
      assert.match(html, /^<!doctype html>/);
      // Everything the page loads comes from the hub, at the versioned paths it serves.
      for (const asset of uiAssetPaths()) assert.ok(html.includes(`"${asset}"`), asset);
      assert.doesNotMatch(html, /<script>|<style|style=|https?:\/\//);
    }
    assert.match(UI_CSP, /default-src 'self'/);
    assert.doesNotMatch(UI_CSP, /unsafe-inline|unsafe-eval/);
    const head = await get('/', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
  } finally {
    await srv.stop();
  }
});

test('fleet-page-assets-have-their-types-and-are-cached-by-content', async () => {
  const { srv, get } = await api();
  const types: Record<string, string> = {
    js: 'text/javascript; charset=utf-8',
    css: 'text/css; charset=utf-8',
    svg: 'image/svg+xml',
  };
  try {
    const paths = uiAssetPaths();
    assert.deepEqual(paths.map((p) => p.split('.').pop()).sort(), ['css', 'js', 'svg']);
    for (const path of paths) {
      const res = await get(path);
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), types[path.split('.').pop() ?? '']);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      assert.ok((await res.text()).length > 100, path);
      const etag = res.headers.get('etag') ?? '';
      const again = await get(path, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304, path);
    }
    const page = await get('/');
    const etag = page.headers.get('etag') ?? '';
    await page.text();
    assert.equal((await get('/', { headers: { 'if-none-match': etag } })).status, 304);
  } finally {
    await srv.stop();
  }
});

test('unknown-ui-paths-are-json-404s-and-the-api-is-unchanged', async () => {
  const { srv, get } = await api();
  try {
    for (const path of ['/ui/app.js', '/ui/nope', '/ui/app.000000000000.js', '/favicon.ico']) {
      const res = await get(path);
      assert.equal(res.status, 404, path);
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.deepEqual(await res.json(), {
        error: { code: 'NOT_FOUND', message: `path "${path}" not found` },
      });
    }
    const list = await get('/api/v1/clusters');
    assert.equal(list.headers.get('content-type'), 'application/json; charset=utf-8');
    assert.equal(list.headers.get('content-security-policy'), null);
    assert.deepEqual(
      ((await list.json()) as { clusters: { name: string }[] }).clusters.map((c) => c.name),
      ['edge-1'],
    );
    assert.equal((await get('/', { method: 'POST' })).status, 400);
  } finally {
    await srv.stop();
  }
});

test('the-page-knows-every-deployment-state-the-api-returns', () => {
  // The page counts and colours deployments by state from its own list: a state missing
  // there (Waiting, say) would be counted nowhere.
  const m = /const DEPLOYMENT_STATES = (\[[^\]]*\])/.exec(PAGE_SCRIPT);
  const pageStates = JSON.parse((m?.[1] ?? '[]').replace(/'/g, '"')) as string[];
  assert.deepEqual([...pageStates].sort(), [...DEPLOYMENT_STATES].sort());
  for (const s of DEPLOYMENT_STATES) assert.match(PAGE_CSS, new RegExp(`\\.state-${s}\\b`));
});
