// What the CLI shows of a bundle that failed to render, against the hub's real HTTP API
// over a FleetStatus: `status` lists it under the table, `get deployments` shows it
// Failed, `get sources` / `describe source` show the source's render errors, and `wait`
// gives up at once with the reason instead of waiting for its timeout.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { startHttpApi } from '../api/http.js';
import type { SourceStatus } from '../api/types.js';
import { FleetStatus } from '../status/fleet-status.js';
import { renderFailureRecord } from '../status/render-failures.js';
import { appliedEvent } from '../status/testing.js';
import { runCli } from './main.js';
import { captureIo } from './testing.js';

const OLD = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const NEW = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const BROKEN = 'bundles/web/manifests/cm.yaml:5: YAML: bad indentation of a mapping entry';

const SOURCE: SourceStatus = {
  name: 'fleet',
  url: 'https://git.example/fleet.git',
  branch: 'main',
  ref: 'branch main',
  revision: NEW,
  lastFetched: new Date(Date.now() - 5_000).toISOString(),
  renderedRevision: NEW,
  // As the hub sends it: `error` holds render errors too, lastError only the fetch's.
  error: BROKEN,
  lastError: '',
  renderErrors: [
    { bundle: 'web', clusters: ['edge-1', 'edge-2'], clusterCount: 2, message: BROKEN },
  ],
  renderErrorCount: 1,
};

// edge-1 and edge-2 run app at NEW; web failed to render at NEW and serves OLD's rendering.
// With refused, edge-1's agent could not apply app at NEW: its cluster refused an object.
async function hub(refused?: string) {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const clusters = ['edge-1', 'edge-2'];
  status.setFleet(
    clusters.map((name) => ({
      name,
      labels: { env: 'prod' },
      desired: {
        revision: NEW,
        digest: 'sha256:d2',
        bundles: [
          { name: 'app', digest: 'sha256:a2' },
          { name: 'web', digest: 'sha256:w1' },
        ],
      },
      renderFailures: [renderFailureRecord('web', NEW, [BROKEN], OLD)],
    })),
  );
  for (const c of clusters) {
    status.connected(c, `s-${c}`, {
      cluster: c,
      agentVersion: '',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: 1,
    });
    const bundles = { app: 'sha256:a2', web: 'sha256:w1' };
    status.foldEvent('applied', appliedEvent(c, NEW, 'sha256:d2', bundles, new Date()));
  }
  if (refused)
    status.foldEvent(
      'apply-failed',
      appliedEvent('edge-1', NEW, 'sha256:d2', { app: 'sha256:a2' }, new Date(Date.now() + 1), {
        result: 'failed',
        failures: { app: [refused] },
        kind: 'apply-failed',
      }),
    );
  const api = await startHttpApi('127.0.0.1', 0, {
    status,
    sources: { sources: () => [SOURCE] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  return { api, env: { FLOTILLA_HUB_URL: `http://127.0.0.1:${api.port}` } };
}

async function run(env: NodeJS.ProcessEnv, args: string[]) {
  const t = captureIo(env);
  const code = await runCli(args, t.cli);
  return { code, ...t.out };
}

const REASON = `serving 1111111aaaaa; 2222222bbbbb failed to render: ${BROKEN}`;

test('status-shows-the-clusters-failed-and-lists-what-failed-to-render', async () => {
  const { api, env } = await hub();
  try {
    const { code, stdout } = await run(env, ['status']);
    assert.equal(code, 0);
    assert.match(stdout, /^edge-1\s+true\s+Failed\s+2222222bbbbb\s+2222222bbbbb/m);
    assert.match(
      stdout,
      /Failed to render \(these clusters are not Ready until a commit fixes it\):/,
    );
    assert.ok(stdout.includes(`  bundle web on edge-1,edge-2: ${REASON}\n`), stdout);
    const json = JSON.parse((await run(env, ['status', '-o', 'json'])).stdout) as {
      clusters: { state: string; message: string }[];
    };
    assert.equal(json.clusters[0]?.state, 'Failed');
    assert.equal(json.clusters[0]?.message, `bundle web: ${REASON}`);
  } finally {
    await api.stop();
  }
});

test('get-deployments-shows-the-failed-bundle-with-its-reason', async () => {
  const { api, env } = await hub();
  try {
    const { stdout } = await run(env, ['get', 'deployments', '--bundle', 'web', '-o', 'wide']);
    const rows = stdout.trim().split('\n').slice(1);
    assert.equal(rows.length, 2);
    for (const r of rows) {
      assert.match(r, /^web\s+edge-\d\s+Failed\s/);
      assert.ok(r.endsWith(REASON), r);
    }
  } finally {
    await api.stop();
  }
});

test('describe-cluster-shows-the-cluster-failed-and-the-bundle-row-with-its-reason', async () => {
  const { api, env } = await hub();
  try {
    const { stdout } = await run(env, ['describe', 'cluster', 'edge-1']);
    assert.ok(stdout.includes(`State:             Failed (bundle web: ${REASON})\n`), stdout);
    assert.match(stdout, /^ {2}app\s+Ready\s/m);
    assert.ok(stdout.split('\n').some((l) => /^ {2}web\s+Failed\s/.test(l) && l.endsWith(REASON)));
  } finally {
    await api.stop();
  }
});

test('get-sources-and-describe-source-show-render-errors-per-bundle-and-cluster', async () => {
  const { api, env } = await hub();
  try {
    const table = await run(env, ['get', 'sources']);
    assert.equal(table.code, 0);
    assert.match(
      table.stdout,
      /^NAME\s+REF\s+REVISION\s+FETCHED\s+RENDERED\s+RENDER-ERRORS\s+LAST-ERROR\nfleet\s+branch main\s+2222222bbbbb\s+\d+s\s+2222222bbbbb\s+1\s+-\n$/,
    );
    const one = await run(env, ['describe', 'source', 'fleet']);
    assert.match(one.stdout, /^URL:\s+https:\/\/git\.example\/fleet\.git$/m);
    assert.match(one.stdout, /^Render errors at 2222222bbbbb:$/m);
    assert.match(one.stdout, new RegExp(`^  web\\s+edge-1,edge-2\\s+${BROKEN}$`, 'm'));
    const json = JSON.parse((await run(env, ['get', 'sources', 'fleet', '-o', 'json'])).stdout) as {
      sources: SourceStatus[];
    };
    assert.deepEqual(json.sources, [SOURCE]);
    const missing = await run(env, ['describe', 'source', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 NOT_FOUND: source "nope" not found/);
  } finally {
    await api.stop();
  }
});

test('wait-exits-1-at-once-when-the-revision-failed-to-render', { timeout: 30_000 }, async () => {
  const { api, env } = await hub();
  try {
    // A timeout far beyond the test's: only an immediate answer passes.
    const args = ['wait', '--for', `revision=${NEW.slice(0, 7)}`, '--timeout', '1h'];
    const { code, stderr } = await run(env, args);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `revision 2222222 failed to render; it cannot reach these clusters until a commit fixes it:\n  edge-1: bundle web: ${REASON}\n  edge-2: bundle web: ${REASON}\n`,
    );
    // Another revision is not concerned: it waits (and times out) as before.
    const other = await run(env, [
      'wait',
      '--for',
      'revision=3333333',
      '--timeout',
      '200ms',
      '--interval',
      '50ms',
    ]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^timed out after 200ms waiting for revision 3333333/);
  } finally {
    await api.stop();
  }
});

test('wait-and-status-at-a-render-failure-also-name-what-failed-to-apply', async () => {
  const refused =
    'Deployment/jobs/worker: admission webhook "registries.policy.example.com" denied the request: image docker.io/library/worker:latest is not from an allowed registry';
  const { api, env } = await hub(refused);
  try {
    const args = ['wait', '--for', `revision=${NEW.slice(0, 7)}`, '--timeout', '1h'];
    const { code, stderr } = await run(env, args);
    assert.equal(code, 1);
    assert.equal(
      stderr,
      `revision 2222222 failed to render; it cannot reach these clusters until a commit fixes it:\n  edge-1: bundle web: ${REASON}\n  edge-2: bundle web: ${REASON}\nand what was rendered failed to apply:\n  edge-1: ${refused}\n`,
    );
    const status = await run(env, ['status']);
    assert.match(
      status.stdout,
      new RegExp(`\nFailed to apply[^\n]*\n  bundle app on edge-1: ${escape(refused)}\n$`),
    );
    const wide = await run(env, ['status', '-o', 'wide']);
    assert.match(
      wide.stdout,
      new RegExp(`edge-1 .*failed to render: .*; and apply failed: ${escape(refused)}`),
    );
  } finally {
    await api.stop();
  }
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
