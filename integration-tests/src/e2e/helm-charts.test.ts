// Helm charts from a chart repository and an OCI registry, end to end: two real
// kube-apiservers with real agents (their own RBAC), NATS, Git, the hub and the pinned
// helm; a chart repository over HTTPS with basic auth and its own CA (charts packaged by
// the real `helm package`, index.yaml by `helm repo index`) and CNCF Distribution (charts
// pushed by `helm push`). Both charts deploy with version ranges; new versions published
// within the ranges are picked up by the re-resolve interval, without a commit, and
// upgrade both clusters; status, sources and history say which version runs.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { CertificateAuthority, createCa } from '@flotilla/hub';
import {
  binaryPaths,
  helmPackage,
  requireEnv,
  requirePrerequisite,
  startChartRepository,
  startRegistry,
  waitFor,
  writeTestChart,
} from '@flotilla/test-env';
import type { TestChartRepository, TestRegistry } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const bins = binaryPaths();
const executable = (path: string) => () => (accessSync(path, constants.X_OK), true);
const skip =
  (await requireEnv(['cluster', 'nats', 'git'])) ??
  (await requirePrerequisite(
    'helm',
    executable(bins.helm),
    'run integration-tests/tools/prereqs.sh (builds helm)',
  )) ??
  (await requirePrerequisite(
    'registry (CNCF Distribution)',
    executable(bins.registry),
    'run integration-tests/tools/prereqs.sh (builds the registry)',
  ));

const PASSWORD = 'e2e-Chart-pa55word';
// The hub is a child process: the repository's username comes from its environment.
process.env.FLOTILLA_TEST_CHART_USER = 'reader';
const CLUSTERS = ['c1', 'c2'];

let fleet: Fleet | undefined;
let repo: TestChartRepository | undefined;
let registry: TestRegistry | undefined;
let work = '';

async function publishRepo(version: string): Promise<void> {
  await repo!.publish(
    await writeTestChart(join(work, `podinfo-${version}`, 'podinfo'), { name: 'podinfo', version }),
  );
}

async function pushOci(version: string): Promise<void> {
  const dir = await writeTestChart(join(work, `hello-${version}`, 'hello'), {
    name: 'hello',
    version,
  });
  await registry!.push(await helmPackage(dir, join(work, 'oci-out')), 'charts');
}

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'flotilla-e2e-charts-'));
  const ca = new CertificateAuthority(createCa('e2e-charts-ca'));
  const cert = ca.issueKeyPair('127.0.0.1', 'test', 3_600_000, {
    server: true,
    hosts: ['127.0.0.1'],
  });
  repo = await startChartRepository({
    tls: cert,
    basicAuth: { username: 'reader', password: PASSWORD },
  });
  registry = await startRegistry();
  await writeFile(join(work, 'ca.crt'), ca.caPem);
  await writeFile(join(work, 'password'), PASSWORD, { mode: 0o600 });
  await publishRepo('1.0.0');
  await pushOci('0.1.0');
  const bundle = (name: string, source: string) => `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: ${name} }
spec:
  source:
    helm: ${source}
  namespace: ${name}
  targets: [ { clusterSelector: {} } ]
`;
  fleet = await startFleet({
    clusters: CLUSTERS,
    repoFiles: {
      ...Object.fromEntries(
        CLUSTERS.map((c) => [
          `clusters/${c}.yaml`,
          `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${c}\n`,
        ]),
      ),
      'bundles/podinfo/bundle.yaml': bundle(
        'podinfo',
        `{ repo: "${repo.url}", chart: podinfo, version: "1.x", values: { greeting: from-git } }`,
      ),
      'bundles/hello/bundle.yaml': bundle(
        'hello',
        `{ chart: "${registry.url}/charts/hello", version: ">=0.1.0 <1.0.0" }`,
      ),
    },
    hubConfigExtra: [
      'charts:',
      '  resolveInterval: 2s',
      '  repositories:',
      `    - url: ${repo.url}`,
      '      usernameEnv: FLOTILLA_TEST_CHART_USER',
      `      passwordFile: ${join(work, 'password')}`,
      `      caFile: ${join(work, 'ca.crt')}`,
      `    - url: ${registry.url}/charts`,
      '      plainHttp: true',
    ],
  });
});

after(async () => {
  await fleet?.stop();
  await repo?.stop();
  await registry?.stop();
});

async function configVersion(
  cluster: string,
  ns: string,
  name: string,
): Promise<string | undefined> {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet!.clusters.get(cluster)!.kubeconfigPath);
  try {
    const cm = await kc.makeApiClient(CoreV1Api).readNamespacedConfigMap({ name, namespace: ns });
    return cm.data?.version;
  } catch {
    return undefined;
  }
}

async function waitForVersions(podinfo: string, hello: string): Promise<void> {
  for (const c of CLUSTERS)
    await waitFor(
      async () =>
        (await configVersion(c, 'podinfo', 'podinfo-podinfo')) === podinfo &&
        (await configVersion(c, 'hello', 'hello-hello')) === hello,
      {
        what: `podinfo ${podinfo} and hello ${hello} on ${c} (logs in ${fleet!.logDir})`,
        timeoutMs: 120_000,
        intervalMs: 250,
      },
    );
}

interface Deployment {
  bundle: string;
  cluster: string;
  state: string;
  chart?: { name: string; version: string; digest: string };
}

test(
  'a-repository-chart-and-an-oci-chart-deploy-and-upgrade-when-their-ranges-admit-new-versions',
  { skip, timeout: 400_000 },
  async () => {
    const f = fleet!;
    await waitForVersions('1.0.0', '0.1.0');
    await f.waitForRevision(f.firstCommit, 120_000);
    const deployments = async (): Promise<Deployment[]> =>
      (
        JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as {
          deployments: Deployment[];
        }
      ).deployments;
    const rows = (list: Deployment[]) =>
      list.map((d) => [d.bundle, d.cluster, d.state, d.chart?.version]).sort();
    let first: Deployment[] = [];
    await waitFor(
      async () => {
        first = await deployments();
        return first.every((d) => d.state === 'Ready');
      },
      { what: 'every deployment Ready', timeoutMs: 60_000, intervalMs: 500 },
    ).catch(() => undefined); // the assertion below says what differs
    assert.deepEqual(rows(first), [
      ['hello', 'c1', 'Ready', '0.1.0'],
      ['hello', 'c2', 'Ready', '0.1.0'],
      ['podinfo', 'c1', 'Ready', '1.0.0'],
      ['podinfo', 'c2', 'Ready', '1.0.0'],
    ]);
    const digest = `sha256:${(await import('node:crypto'))
      .createHash('sha256')
      .update(await readFile(join(repo!.dir, 'podinfo-1.0.0.tgz')))
      .digest('hex')}`;
    assert.equal(first.find((d) => d.bundle === 'podinfo')?.chart?.digest, digest);

    // New versions in range, no commit: the re-resolve interval finds them.
    await publishRepo('1.1.0');
    await publishRepo('2.0.0'); // outside 1.x
    await pushOci('0.2.0');
    await waitForVersions('1.1.0', '0.2.0');
    await waitFor(
      async () =>
        (await deployments()).every(
          (d) => d.state === 'Ready' && ['1.1.0', '0.2.0'].includes(d.chart?.version ?? ''),
        ),
      {
        what: 'every deployment Ready at the new chart versions',
        timeoutMs: 120_000,
        intervalMs: 500,
      },
    );

    const source = await f.cli(['describe', 'source', 'fleet']);
    assert.match(source, /Charts:\n.*BUNDLE\s+CHART\s+VERSION/);
    assert.match(source, /podinfo\s+podinfo\s+1\.1\.0\s+[0-9a-f]{12}\s+2\s+https:\/\/127\.0\.0\.1/);
    assert.match(source, /hello\s+hello\s+0\.2\.0/);

    // History: the same commit, applied twice, at the two chart versions.
    const history = JSON.parse(
      await f.cli([
        'history',
        '--cluster',
        'c1',
        '--bundle',
        'podinfo',
        '--kind',
        'applied',
        '-o',
        'json',
      ]),
    ) as { entries: { revision: string; charts?: { bundle: string; version: string }[] }[] };
    const versions = history.entries.flatMap((e) =>
      (e.charts ?? []).filter((c) => c.bundle === 'podinfo').map((c) => c.version),
    );
    assert.ok(versions.includes('1.0.0') && versions.includes('1.1.0'), versions.join(','));
    assert.ok(history.entries.every((e) => e.revision === f.firstCommit));

    // A range no version matches: the bundle is Failed with the reason on both clusters,
    // and they keep running the last good rendering.
    const bad = await f.repo.commitAndPush('podinfo: ask for 9.x', {
      'bundles/podinfo/bundle.yaml': (
        await readFile(join(f.repo.dir, 'bundles/podinfo/bundle.yaml'), 'utf8')
      ).replace('version: "1.x"', 'version: "9.x"'),
    });
    let failed: Deployment[] = [];
    await waitFor(
      async () => {
        failed = (await deployments()).filter((d) => d.bundle === 'podinfo');
        return failed.length === 2 && failed.every((d) => d.state === 'Failed');
      },
      { what: `podinfo Failed after ${bad}`, timeoutMs: 60_000, intervalMs: 500 },
    );
    for (const d of failed)
      assert.match(
        (d as Deployment & { reason: string }).reason,
        /no version of chart "podinfo" matches "9\.x" \(versions: 2\.0\.0, 1\.1\.0, 1\.0\.0\)/,
      );
    for (const c of CLUSTERS)
      assert.equal(await configVersion(c, 'podinfo', 'podinfo-podinfo'), '1.1.0');

    // Credentials never reach the hub's log or the CLI.
    const log = await readFile(f.hub.logFile, 'utf8');
    assert.ok(!log.includes(PASSWORD), 'the hub log holds the password');
    assert.ok(!log.includes(Buffer.from(`reader:${PASSWORD}`).toString('base64')));
    assert.ok(!source.includes(PASSWORD));
  },
);
