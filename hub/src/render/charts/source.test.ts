import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { parseBundle } from '../spec.js';
import { chartBlock } from './repo-index.js';
import { accessFor, compileChartSettings, httpAccess } from './settings.js';
import { chartSource, selectVersion } from './source.js';

const bundle = (helm: string, targets = '    - clusterSelector: {}\n'): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: app }
spec:
  source:
    helm: ${helm}
  targets:
${targets}`;

describe('chart sources in bundle.yaml', () => {
  test('repo-and-oci-forms-are-read-and-a-chart-directory-still-works', () => {
    const repo = parseBundle(
      bundle('{ repo: "https://charts.example.com/", chart: podinfo, version: "6.x" }'),
      'bundles/app/bundle.yaml',
      'app',
    );
    assert.deepEqual(repo.helm?.remote, {
      kind: 'repo',
      url: 'https://charts.example.com',
      name: 'podinfo',
      version: '6.x',
    });
    assert.equal(repo.sourceDir, 'bundles/app');
    const oci = parseBundle(
      bundle('{ chart: "oci://registry.example.com:5000/charts/podinfo", version: "6.5.0" }'),
      'bundles/app/bundle.yaml',
      'app',
    );
    assert.deepEqual(oci.helm?.remote, {
      kind: 'oci',
      url: 'oci://registry.example.com:5000/charts/podinfo',
      name: 'podinfo',
      version: '6.5.0',
    });
    const ociRepo = parseBundle(
      bundle('{ repo: "oci://registry.example.com/charts", chart: podinfo }'),
      'bundles/app/bundle.yaml',
      'app',
    );
    assert.equal(ociRepo.helm?.remote?.url, 'oci://registry.example.com/charts/podinfo');
    const local = parseBundle(bundle('{ chart: chart }'), 'bundles/app/bundle.yaml', 'app');
    assert.equal(local.helm?.remote, undefined);
    assert.equal(local.sourceDir, 'bundles/app/chart');
  });

  test('bad-chart-sources-are-errors-with-file-and-line', () => {
    const fails = (helm: string, pattern: RegExp, targets?: string) =>
      assert.throws(
        () => parseBundle(bundle(helm, targets), 'bundles/app/bundle.yaml', 'app'),
        pattern,
      );
    fails(
      '{ repo: "https://user:pw@charts.example.com", chart: podinfo }',
      /bundle\.yaml:6: spec\.source\.helm\.repo: credentials never go in Git/,
    );
    fails(
      '{ repo: "ftp://x", chart: podinfo }',
      /spec\.source\.helm\.repo: "ftp:\/\/x" must start with https:/,
    );
    fails(
      '{ repo: "https://c.example.com", chart: "a/b" }',
      /spec\.source\.helm\.chart: chart "a\/b" must be a chart name/,
    );
    fails(
      '{ repo: "https://c.example.com", chart: x, version: "latest" }',
      /spec\.source\.helm\.version: version "latest" is neither/,
    );
    fails(
      '{ chart: chart, version: "1.x" }',
      /spec\.source\.helm\.version applies to a chart from a repository/,
    );
    fails('{ repo: "https://c.example.com" }', /spec\.source\.helm\.chart is required with repo/);
    fails(
      '{ repo: "https://c.example.com", chart: x }',
      /targets\[0\]\.helm\.repo: a target may change the chart's version, not its repository/,
      '    - clusterSelector: {}\n      helm: { repo: "https://other.example.com" }\n',
    );
  });

  test('helm-range-syntax-and-version-selection-follow-helm', () => {
    const versions = ['1.0.0', '1.2.0', '1.10.0', '2.0.0-rc.1', 'v2.0.0', 'junk'];
    assert.equal(selectVersion(versions, '1.x'), '1.10.0');
    assert.equal(selectVersion(versions, '>= 1.1, < 1.5'), '1.2.0', 'commas join comparators');
    assert.equal(selectVersion(versions, ''), 'v2.0.0', 'no range: newest stable, as written');
    assert.equal(selectVersion(versions, '1.2.0'), '1.2.0');
    assert.equal(selectVersion(versions, '3.x'), undefined);
    assert.equal(selectVersion(['1.0.0', '2.0.0-rc.1'], '>=2.0.0-0'), '2.0.0-rc.1');
    assert.equal(typeof chartSource(undefined, 'oci://r.example.com', undefined), 'string');
  });
});

describe('index.yaml', () => {
  const index = `apiVersion: v1
entries:
  nginx:
  - name: nginx
    version: 1.0.0
    urls:
    - nginx-1.0.0.tgz
  "podinfo":
  - name: podinfo
    description: |
      entries:
        podinfo: not a key
    version: 6.5.0
    urls: [podinfo-6.5.0.tgz]
  - name: podinfo
    version: 6.4.0
    urls: [podinfo-6.4.0.tgz]
  podinfo-extra:
  - version: 9.9.9
generated: "2026-01-01T00:00:00Z"
`;
  test('the-block-of-one-chart-is-cut-out-without-parsing-the-rest', () => {
    const block = chartBlock(index, 'podinfo') as string;
    assert.match(block, /^"podinfo":\n- name: podinfo/);
    assert.ok(
      block.includes('version: 6.4.0') && !block.includes('9.9.9') && !block.includes('generated'),
    );
    assert.equal(chartBlock(index, 'absent'), null);
    assert.equal(chartBlock('{"entries": {}}', 'x'), undefined, 'JSON is parsed whole');
  });
});

describe('charts: in the hub config', () => {
  test('access-is-found-by-the-longest-url-prefix-at-a-path-boundary', () => {
    const entry = (url: string) => ({ url, plainHttp: false, insecureSkipTlsVerify: false });
    const s = {
      repositories: [
        entry('https://charts.example.com'),
        entry('https://charts.example.com/team/'),
      ],
    };
    assert.equal(
      accessFor(s, 'https://charts.example.com/team/app')?.url,
      'https://charts.example.com/team/',
    );
    assert.equal(
      accessFor(s, 'https://charts.example.com/other')?.url,
      'https://charts.example.com',
    );
    assert.equal(accessFor(s, 'https://charts.example.com.evil.example'), undefined);
  });

  test('config-errors-name-the-field-and-secrets-are-read-when-used', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-charts-config-'));
    await writeFile(join(dir, 'token'), 'tok-123\n');
    const compile = (charts: unknown) =>
      compileChartSettings({ charts }, 'hub.yaml', '/var/cache/flotilla');
    const ok = compile({
      resolveInterval: '10m',
      repositories: [{ url: 'https://c.example.com', tokenFile: join(dir, 'token') }],
    });
    assert.equal(ok.cacheDir, '/var/cache/flotilla-charts');
    assert.equal(ok.resolveIntervalMs, 600_000);
    assert.equal((await httpAccess(ok.repositories[0])).authorization, 'Bearer tok-123');
    const bad = (charts: unknown, pattern: RegExp) =>
      assert.throws(
        () => compile(charts),
        (e: unknown) => e instanceof ConfigError && pattern.test(e.message),
      );
    bad(
      { repositories: [{ url: 'https://u:p@c.example.com' }] },
      /charts\.repositories\[0\]\.url: must not hold credentials/,
    );
    bad(
      { repositories: [{ url: 'https://c.example.com', passwordFile: join(dir, 'token') }] },
      /usernameFile: username and password go together/,
    );
    bad(
      { repositories: [{ url: 'https://c.example.com', caFile: join(dir, 'missing') }] },
      /caFile: cannot read .*ENOENT/,
    );
    bad({ maxChartBytes: 'big' }, /charts\.maxChartBytes: must be a whole number of bytes/);
    bad({ resolveInterval: '10ms' }, /charts\.resolveInterval: must be at least 1s/);
    bad({ repos: [] }, /charts\.repos: unknown field/);
  });
});
