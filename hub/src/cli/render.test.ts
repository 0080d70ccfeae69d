import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { bundleYaml, clusterYaml, configMap } from '../render/testing.js';
import { renderCommand } from './render.js';

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await renderCommand(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
  });
  return { code, out, err };
}

describe('flotilla render', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-'));
    const files: Record<string, string> = {
      'clusters/prod-1.yaml': clusterYaml('prod-1', { env: 'prod' }),
      'clusters/dev-1.yaml': clusterYaml('dev-1', { env: 'dev' }),
      'bundles/web/bundle.yaml': bundleYaml(
        'web',
        '  namespace: web\n  substitute: true\n  targets:\n    - clusterSelector: {}\n',
      ),
      'bundles/web/manifests/cm.yaml': configMap('web', { cluster: '${cluster.name}' }),
      'bundles/web/manifests/hook.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web-hook\n  annotations: { helm.sh/hook: pre-install }\n',
      'bundles/devonly/bundle.yaml': bundleYaml(
        'devonly',
        '  namespace: d\n  substitute: true\n  targets:\n    - clusterSelector: { matchLabels: { env: dev } }\n',
      ),
      'bundles/devonly/manifests/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  v: ${vars.missing}\n',
    };
    for (const [p, t] of Object.entries(files)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), t);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('prints-the-clusters-objects-as-a-yaml-stream-and-exits-0', async () => {
    const r = await run(['--repo', dir, '--cluster', 'prod-1']);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
    const docs = parseAllDocuments(r.out).map(
      (d) => d.toJS() as { metadata: { name: string; namespace: string }; data: unknown },
    );
    assert.equal(docs.length, 2);
    assert.equal(docs[0]?.metadata.namespace, 'web');
    assert.deepEqual(docs[0]?.data, { cluster: 'prod-1' });
    // Helm hooks are printed after the bundle's objects, annotations and all.
    assert.equal(docs[1]?.metadata.name, 'web-hook');
  });

  test('json-output-is-the-desired-state-with-its-digest', async () => {
    const r = await run(['--repo', dir, '--cluster', 'prod-1', '-o', 'json', '--bundle', 'web']);
    assert.equal(r.code, 0);
    const state = JSON.parse(r.out) as {
      cluster: string;
      digest: string;
      bundles: { name: string }[];
    };
    assert.equal(state.cluster, 'prod-1');
    assert.match(state.digest, /^sha256:/);
    assert.deepEqual(
      state.bundles.map((b) => b.name),
      ['web'],
    );
  });

  test('render-errors-go-to-stderr-with-file-and-line-and-exit-1', async () => {
    const r = await run(['--repo', dir, '--cluster', 'dev-1']);
    assert.equal(r.code, 1);
    assert.match(r.err, /bundles\/devonly\/manifests\/cm\.yaml:6: .*variable "missing"/);
    assert.match(r.out, /name: web/, 'what rendered is still printed');
  });

  test('errors-of-other-clusters-are-not-shown', async () => {
    const r = await run(['--repo', dir, '--cluster', 'prod-1', '--bundle', 'web']);
    assert.equal(r.err, '');
  });

  test('unknown-cluster-exits-1', async () => {
    const r = await run(['--repo', dir, '--cluster', 'nope']);
    assert.equal(r.code, 1);
    assert.match(r.err, /cluster "nope" not found/);
  });

  test('usage-errors-exit-2', async () => {
    assert.equal((await run(['--repo', dir])).code, 2);
    assert.equal((await run(['--cluster', 'x', '--bogus'])).code, 2);
    assert.equal((await run(['--cluster', 'x', '-o', 'xml'])).code, 2);
    assert.equal((await run(['--repo', join(dir, 'missing'), '--cluster', 'x'])).code, 2);
    assert.equal((await run(['--help'])).code, 0);
  });

  test('a-symlinked-manifest-is-a-render-error', async () => {
    await symlink('/etc/hostname', join(dir, 'bundles/web/manifests/host.yaml'));
    const r = await run(['--repo', dir, '--cluster', 'prod-1']);
    await rm(join(dir, 'bundles/web/manifests/host.yaml'));
    assert.equal(r.code, 1);
    assert.match(r.err, /bundles\/web\/manifests\/host\.yaml: symbolic links are not allowed/);
  });
});

describe('flotilla render without kustomize or helm', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-tools-'));
    const files: Record<string, string> = {
      'clusters/prod-1.yaml': clusterYaml('prod-1', { env: 'prod' }),
      'clusters/dev-1.yaml': clusterYaml('dev-1', { env: 'dev' }),
      'bundles/web/bundle.yaml': bundleYaml(
        'web',
        '  namespace: web\n  targets:\n    - clusterSelector: {}\n',
      ),
      'bundles/web/manifests/cm.yaml': configMap('web'),
      // Untargeted (like the example fleet's) and dev-only bundles that need the programs.
      'bundles/kust/bundle.yaml': bundleYaml('kust', '  source: { kustomize: { path: . } }\n'),
      'bundles/kust/kustomization.yaml': 'resources: []\n',
      'bundles/chart/bundle.yaml': bundleYaml(
        'chart',
        '  source: { helm: { chart: chart } }\n  targets:\n    - clusterSelector: { matchLabels: { env: dev } }\n',
      ),
      'bundles/chart/chart/Chart.yaml': 'apiVersion: v2\nname: chart\nversion: 0.1.0\n',
    };
    for (const [p, t] of Object.entries(files)) {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), t);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const noTools = { PATH: '/nonexistent', FLOTILLA_KUSTOMIZE: '', FLOTILLA_HELM: '' };
  async function runWithout(argv: string[]) {
    let out = '';
    let err = '';
    const code = await renderCommand(argv, {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      env: noTools,
    });
    return { code, out, err };
  }

  test('a-cluster-whose-bundles-use-neither-program-renders-without-them', async () => {
    const r = await runWithout(['--repo', dir, '--cluster', 'prod-1']);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
    assert.match(r.out, /name: web/);
  });

  test('a-cluster-that-gets-a-helm-bundle-says-helm-is-missing', async () => {
    const r = await runWithout(['--repo', dir, '--cluster', 'dev-1']);
    assert.equal(r.code, 1);
    assert.match(r.err, /the helm program "helm" was not found/);
    assert.doesNotMatch(r.err, /kustomize/, 'the untargeted Kustomize bundle is not built');
  });

  test('the-example-fleet-renders-a-cluster-without-kustomize-or-helm-when-its-bundles-need-neither', async () => {
    // deploy/examples/fleet: edge-eu gets plain bundles only; Helm and Kustomize bundles target the lab.
    const root = fileURLToPath(new URL('../../../', import.meta.url));
    const r = await runWithout([
      '--repo',
      root,
      '--path',
      'deploy/examples/fleet',
      '--cluster',
      'edge-eu',
    ]);
    assert.equal(r.err, '');
    assert.equal(r.code, 0);
    assert.match(r.out, /kind: Deployment/);
  });

  test('capability-flags-are-checked-before-rendering', async () => {
    const bad = await runWithout([
      '--repo',
      dir,
      '--cluster',
      'prod-1',
      '--kube-version',
      'latest',
    ]);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--kube-version: "latest" is not a Kubernetes version/);
    const list = await runWithout([
      '--repo',
      dir,
      '--cluster',
      'prod-1',
      '--api-versions',
      'a b/v1',
    ]);
    assert.equal(list.code, 2);
    assert.match(list.err, /--api-versions: "a b\/v1" is not group\/version/);
    const stray = await runWithout(['--repo', dir, '--cluster', 'prod-1', '--hub-url', 'http://h']);
    assert.equal(stray.code, 2);
    assert.match(stray.err, /--hub-url is used only with --hub/);
  });
});
