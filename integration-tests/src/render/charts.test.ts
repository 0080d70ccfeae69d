// The hub's renderer (in its worker thread) with the real helm, fetching charts from real
// servers on this machine: a chart repository over HTTPS with basic auth and its own CA
// (index.yaml by `helm repo index`, charts by `helm package`) and CNCF Distribution as
// OCI registry (charts pushed by `helm push`). Also `flotilla render --hub-config`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { CertificateAuthority, MapRepoTree, WorkerRenderer, createCa } from '@flotilla/hub';
import type { RenderResult } from '@flotilla/hub';
import type { DesiredState } from '@flotilla/common';
import {
  binaryPaths,
  helmPackage,
  requirePrerequisite,
  startChartRepository,
  startRegistry,
  writeTestChart,
} from '@flotilla/test-env';
import type { TestChartRepository, TestRegistry } from '@flotilla/test-env';
import { FLOTILLA_BIN } from '../system/fleet.js';

const bins = binaryPaths();
const executable = (path: string) => () => (accessSync(path, constants.X_OK), true);
const skip =
  (await requirePrerequisite(
    'helm',
    executable(bins.helm),
    'run integration-tests/tools/prereqs.sh (builds helm), or set FLOTILLA_HELM',
  )) ??
  (await requirePrerequisite(
    'registry (CNCF Distribution)',
    executable(bins.registry),
    'run integration-tests/tools/prereqs.sh (builds the registry), or set FLOTILLA_REGISTRY',
  ));

const PASSWORD = 'chart-Repo-pa55';
const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n`;
const bundle = (name: string, helm: string): string => `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: ${name} }
spec:
  source:
    helm:
${helm
  .trim()
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
  namespace: ${name}
  targets: [ { clusterSelector: {} } ]
`;

function configData(
  state: DesiredState | undefined,
  b: string,
): Record<string, string> | undefined {
  const cm = state?.bundles.find((x) => x.name === b)?.objects.find((o) => o.kind === 'ConfigMap');
  return (cm as { data?: Record<string, string> } | undefined)?.data;
}

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'flotilla-charts-render-'));
}

describe('charts from repositories and registries, rendered', { skip }, () => {
  let repo: TestChartRepository;
  let registry: TestRegistry;
  let work: string;
  let chartSettings: Record<string, unknown>;
  let hubConfig: string;
  const publish = async (name: string, version: string, to: 'repo' | 'oci' = 'repo') => {
    const dir = await writeTestChart(join(work, `${name}-${version}-${to}`, name), {
      name,
      version,
    });
    if (to === 'repo') return repo.publish(dir);
    const tgz = await helmPackage(dir, join(work, 'oci-out'));
    await registry.push(tgz, 'charts');
    return tgz;
  };

  before(async () => {
    work = await scratch();
    const ca = new CertificateAuthority(createCa('charts-render-ca'));
    const server = ca.issueKeyPair('127.0.0.1', 'test', 3_600_000, {
      server: true,
      hosts: ['127.0.0.1'],
    });
    repo = await startChartRepository({
      tls: server,
      basicAuth: { username: 'reader', password: PASSWORD },
    });
    registry = await startRegistry();
    await writeFile(join(work, 'ca.crt'), ca.caPem);
    await writeFile(join(work, 'username'), 'reader');
    await writeFile(join(work, 'password'), PASSWORD);
    const repositories = [
      {
        url: repo.url,
        username: { file: join(work, 'username') },
        password: { file: join(work, 'password') },
        caFile: join(work, 'ca.crt'),
        plainHttp: false,
        insecureSkipTlsVerify: false,
      },
      { url: registry.url, plainHttp: true, insecureSkipTlsVerify: false },
    ];
    chartSettings = {
      cacheDir: join(work, 'cache'),
      maxCacheBytes: 64 * 1024 * 1024,
      maxIndexBytes: 1024 * 1024,
      maxChartBytes: 1024 * 1024,
      fetchTimeoutMs: 10_000,
      resolveIntervalMs: 60_000,
      repositories,
    };
    hubConfig = join(work, 'hub.yaml');
    await writeFile(
      hubConfig,
      [
        'sources: [ { name: fleet, url: https://git.example.com/fleet.git } ]',
        'charts:',
        '  repositories:',
        `    - url: ${repo.url}`,
        `      usernameFile: ${join(work, 'username')}`,
        `      passwordFile: ${join(work, 'password')}`,
        `      caFile: ${join(work, 'ca.crt')}`,
        `    - url: ${registry.url}`,
        '      plainHttp: true',
        '',
      ].join('\n'),
    );
    await publish('podinfo', '1.0.0');
    await publish('hello', '0.1.0', 'oci');
  });
  after(async () => {
    await repo?.stop();
    await registry?.stop();
  });

  const renderer = () =>
    new WorkerRenderer({ helmPath: bins.helm, chartSettings: chartSettings as never });
  const fleet = (podinfoVersion: string, repoUrl = repo.url) =>
    MapRepoTree.fromStrings({
      'clusters/a.yaml': cluster('a'),
      'clusters/b.yaml': cluster('b'),
      'bundles/podinfo/bundle.yaml': bundle(
        'podinfo',
        `repo: ${repoUrl}\nchart: podinfo\nversion: "${podinfoVersion}"\nvalues: { greeting: hi }`,
      ),
      'bundles/hello/bundle.yaml': bundle(
        'hello',
        `chart: ${registry.url}/charts/hello\nversion: "0.x"`,
      ),
    });

  test('a-repository-chart-and-an-oci-chart-render-with-their-resolved-version-and-digest', async () => {
    const r = renderer();
    try {
      const out = await r.render(fleet('1.x'), 'r1');
      assert.deepEqual(out.errors, []);
      assert.equal(out.resolvesCharts, true);
      const a = out.clusters.get('a');
      assert.deepEqual(configData(a, 'podinfo'), {
        version: '1.0.0',
        greeting: 'hi',
      });
      assert.deepEqual(configData(a, 'hello'), { version: '0.1.0', greeting: 'hello' });
      const tgz = await readFile(join(repo.dir, 'podinfo-1.0.0.tgz'));
      assert.deepEqual(a?.bundles.find((b) => b.name === 'podinfo')?.chart, {
        repo: repo.url,
        name: 'podinfo',
        version: '1.0.0',
        digest: `sha256:${createHash('sha256').update(tgz).digest('hex')}`,
      });
      assert.equal(
        a?.bundles.find((b) => b.name === 'hello')?.chart?.repo,
        `${registry.url}/charts/hello`,
      );
      assert.equal(out.stats.toolRuns, 2, 'one helm run per chart, shared by both clusters');
      const downloads = repo.requests.filter((q) => q.path === '/podinfo-1.0.0.tgz').length;
      assert.equal(downloads, 1);
    } finally {
      await r.stop();
    }
  });

  test('a-new-version-within-the-range-is-picked-up-on-refresh-or-a-new-commit-not-before', async () => {
    const r = renderer();
    try {
      const first = await r.render(fleet('^2.0.0'), 'r1').catch((e: Error) => e);
      // No 2.x yet: the bundle fails, with the versions there are.
      assert.ok(!(first instanceof Error));
      assert.match(
        (first as RenderResult).errors.find((e) => e.bundle === 'podinfo')?.message ?? '',
        /no version of chart "podinfo" matches "\^2\.0\.0" \(versions: 1\.0\.0\)/,
      );
      await publish('podinfo', '2.0.0');
      const same = await r.render(fleet('^2.0.0'), 'r1');
      assert.ok(
        same.errors.some((e) => e.bundle === 'podinfo'),
        'same commit, no refresh: no new resolve',
      );
      const refreshed = await r.render(fleet('^2.0.0'), 'r1', { refreshCharts: true });
      assert.deepEqual(refreshed.errors, []);
      assert.equal(configData(refreshed.clusters.get('b'), 'podinfo')?.version, '2.0.0');
      await publish('podinfo', '2.1.0');
      const commit = await r.render(fleet('^2.0.0'), 'r2');
      assert.equal(configData(commit.clusters.get('b'), 'podinfo')?.version, '2.1.0');
      assert.notEqual(commit.clusters.get('b')?.digest, refreshed.clusters.get('b')?.digest);
    } finally {
      await r.stop();
    }
  });

  test('a-missing-version-or-an-unreachable-repository-fails-the-bundle-with-its-reason-and-the-last-good-rendering-is-served', async () => {
    const r = renderer();
    try {
      const good = await r.render(fleet('1.0.0'), 'r1');
      assert.deepEqual(good.errors, []);
      const missing = await r.render(fleet('7.x'), 'r2');
      const failure = missing.failures.get('a')?.find((f) => f.bundle === 'podinfo');
      assert.match(
        failure?.messages[0] ?? '',
        /bundles\/podinfo\/bundle\.yaml:\d+: cannot get the chart podinfo 7\.x from https:\/\/127\.0\.0\.1:\d+: no version of chart "podinfo" matches "7\.x"/,
      );
      assert.equal(failure?.servingRevision, 'r1');
      assert.equal(configData(missing.clusters.get('a'), 'podinfo')?.version, '1.0.0');
      assert.equal(
        configData(missing.clusters.get('a'), 'hello')?.version,
        '0.1.0',
        'the other bundle is unaffected',
      );
      const gone = await r.render(fleet('1.x', 'https://127.0.0.1:9'), 'r3');
      const reason = gone.failures.get('b')?.find((f) => f.bundle === 'podinfo');
      assert.match(
        reason?.messages[0] ?? '',
        /index\.yaml of https:\/\/127\.0\.0\.1:9: cannot connect/,
      );
      assert.equal(configData(gone.clusters.get('b'), 'podinfo')?.version, '1.0.0');
      for (const m of [...missing.errors, ...gone.errors]) assert.ok(!m.message.includes(PASSWORD));
    } finally {
      await r.stop();
    }
  });

  test('a-chart-in-the-repo-gets-its-undeclared-dependencies-from-their-repository-and-bundle', async () => {
    const r = renderer();
    try {
      const tree = MapRepoTree.fromStrings({
        'clusters/a.yaml': cluster('a'),
        'bundles/app/bundle.yaml': bundle('app', 'chart: chart'),
        'bundles/app/chart/Chart.yaml': `apiVersion: v2
name: app
version: 1.0.0
dependencies:
  - name: podinfo
    version: "1.x"
    repository: ${repo.url}
  - name: hello
    version: "0.1.0"
    repository: ${registry.url}/charts
  - name: local
    version: "0.1.0"
    repository: file://../local
`,
        'bundles/app/chart/templates/cm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: app }\ndata: { own: "yes" }\n',
        'bundles/app/local/Chart.yaml': 'apiVersion: v2\nname: local\nversion: 0.1.0\n',
        'bundles/app/local/templates/cm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: local }\ndata: { local: "yes" }\n',
      });
      const out = await r.render(tree, 'r1');
      assert.deepEqual(out.errors, []);
      const names = out.clusters
        .get('a')
        ?.bundles[0]?.objects.map((o) => o.metadata.name)
        .sort();
      assert.deepEqual(names, ['app', 'app-hello', 'app-podinfo', 'local']);
      const broken = await r.render(
        MapRepoTree.fromStrings({
          'clusters/a.yaml': cluster('a'),
          'bundles/app/bundle.yaml': bundle('app', 'chart: chart'),
          'bundles/app/chart/Chart.yaml':
            'apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n  - { name: x, version: "1", repository: "@stable" }\n',
        }),
        'r2',
      );
      assert.match(
        broken.errors[0]?.message ?? '',
        /bundles\/app\/chart\/Chart\.yaml: dependency "x": repository "@stable" is a name from `helm repo add`: give the repository's URL/,
      );
    } finally {
      await r.stop();
    }
  });

  test('flotilla-render-fetches-with-the-hub-configs-credentials-and-never-prints-them', async () => {
    const dir = await scratch();
    const files: Record<string, string> = {
      'clusters/a.yaml': cluster('a'),
      'bundles/podinfo/bundle.yaml': bundle(
        'podinfo',
        `repo: ${repo.url}\nchart: podinfo\nversion: "1.x"`,
      ),
    };
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(dir, path)), { recursive: true });
      await writeFile(join(dir, path), text);
    }
    const run = (args: string[]) =>
      promisify(execFile)(
        process.execPath,
        [FLOTILLA_BIN, 'render', '--repo', dir, '--cluster', 'a', ...args],
        {
          env: { ...process.env, FLOTILLA_HELM: bins.helm, XDG_CACHE_HOME: join(dir, 'cache') },
        },
      ).then(
        (r) => ({ code: 0, ...r }),
        (e: { code: number; stdout: string; stderr: string }) => e,
      );
    const ok = await run(['--hub-config', hubConfig, '-o', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /"version": "1\.0\.0"/);
    assert.match(ok.stdout, /podinfo-podinfo/);
    await writeFile(join(work, 'password'), 'wrong-Guess-123');
    try {
      const refused = await run(['--hub-config', hubConfig]);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /answered 401/);
      // Without credentials at all the repository refuses too.
      const anonymous = await run([]);
      assert.equal(anonymous.code, 1);
      for (const out of [ok, refused, anonymous])
        for (const secret of [
          PASSWORD,
          'wrong-Guess-123',
          Buffer.from(`reader:${PASSWORD}`).toString('base64'),
        ]) {
          assert.ok(!out.stdout.includes(secret), 'stdout holds a credential');
          assert.ok(!out.stderr.includes(secret), 'stderr holds a credential');
        }
    } finally {
      await writeFile(join(work, 'password'), PASSWORD);
    }
  });
});
