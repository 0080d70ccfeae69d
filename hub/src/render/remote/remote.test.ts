// The renderer's transport with real TLS: a job round trip, a tool failure as the
// bundle's error, clients that are not the hub refused, and a renderer that is away
// failing only its bundles and not being remembered once it is back. The "tool" is a
// shell script standing for kustomize (the real one runs in integration-tests).
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:http2';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CertificateAuthority, createCa } from '../../identity/pki.js';
import { FleetRenderer } from '../renderer.js';
import { NO_SANDBOX } from '../sandbox.js';
import { bundleYaml, clusterYaml, repo } from '../testing.js';
import { ExecToolRunner } from '../tools.js';
import { RemoteToolRunner, RendererUnavailableError, probeRenderer } from './client.js';
import type { RemoteRendererSettings } from './client.js';
import { checkRemoteFiles, compileRenderConfig } from '../render-config.js';
import { startRenderServer } from './server.js';
import type { RunningRenderServer } from './server.js';

const YEAR = 365 * 86_400_000;
const LIMITS = {
  timeoutMs: 20_000,
  maxCpuMs: 10_000,
  maxMemoryBytes: 512 * 1024 * 1024,
  maxOutputBytes: 1024 * 1024,
};

// Prints a ConfigMap named after the file in the dir it is given, or fails on "fail".
const FAKE_KUSTOMIZE = `#!/bin/sh
dir="$2"
if [ -f "$dir/fail" ]; then echo "Error: accumulating resources: bad thing in $dir/kustomization.yaml" >&2; exit 1; fi
name=$(cat "$dir/name")
printf 'apiVersion: v1\\nkind: ConfigMap\\nmetadata:\\n  name: %s\\n' "$name"
`;

describe('remote renderer', () => {
  let dir = '';
  let settings: RemoteRendererSettings;
  let server: RunningRenderServer | undefined;
  let kustomize = '';
  const pem: Record<string, string> = {};

  const start = async (port = 0): Promise<RunningRenderServer> =>
    startRenderServer({
      host: '127.0.0.1',
      port,
      certPem: pem.serverCert as string,
      keyPem: pem.serverKey as string,
      clientCaPem: pem.ca as string,
      kustomizePath: kustomize,
      sandbox: NO_SANDBOX,
    });

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-remote-'));
    kustomize = join(dir, 'kustomize');
    await writeFile(kustomize, FAKE_KUSTOMIZE);
    await chmod(kustomize, 0o755);
    const ca = new CertificateAuthority(createCa('renderer-ca'));
    const s = ca.issueKeyPair('flotilla-renderer', 'flotilla-renderer', YEAR, {
      server: true,
      hosts: ['127.0.0.1', 'localhost'],
    });
    const c = ca.issueKeyPair('flotilla-hub', 'flotilla-hub', YEAR);
    const wrongCn = ca.issueKeyPair('someone-else', 'flotilla-hub', YEAR);
    const other = new CertificateAuthority(createCa('other-ca')).issueKeyPair(
      'flotilla-hub',
      'flotilla-hub',
      YEAR,
    );
    Object.assign(pem, {
      ca: ca.caPem,
      serverCert: s.certPem,
      serverKey: s.keyPem,
      wrongCnCert: wrongCn.certPem,
      wrongCnKey: wrongCn.keyPem,
      otherCert: other.certPem,
      otherKey: other.keyPem,
    });
    for (const [name, text] of Object.entries({
      'ca.crt': ca.caPem,
      'hub.crt': c.certPem,
      'hub.key': c.keyPem,
    }))
      await writeFile(join(dir, name), text);
    server = await start();
    settings = {
      address: server.address,
      caFile: join(dir, 'ca.crt'),
      certFile: join(dir, 'hub.crt'),
      keyFile: join(dir, 'hub.key'),
    };
  });
  after(async () => {
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const job = (files: Record<string, string>) => ({
    tool: 'kustomize' as const,
    files: new Map(Object.entries(files).map(([p, t]) => [p, Buffer.from(t)])),
    args: (root: string) => ['build', join(root, 'k')],
    errorFile: 'k/kustomization.yaml',
  });
  const runner = () => new RemoteToolRunner(settings, LIMITS, new ExecToolRunner());

  test('a-kustomize-run-goes-to-the-renderer-with-its-files-and-comes-back', async () => {
    const r = runner();
    const out = await r.run(job({ 'k/kustomization.yaml': 'resources: []\n', 'k/name': 'sent' }));
    r.close();
    assert.match(out, /name: sent/);
  });

  test('a-failed-run-is-the-bundles-error-with-its-file-and-no-temp-paths', async () => {
    const r = runner();
    await assert.rejects(
      r.run(job({ 'k/kustomization.yaml': '', 'k/fail': '' })),
      (err: Error & { file?: string }) => {
        assert.ok(!(err instanceof RendererUnavailableError));
        assert.equal(err.file, 'k/kustomization.yaml');
        assert.match(
          err.message,
          /^k\/kustomization.yaml: kustomize failed \(exit 1\): Error: accumulating resources: bad thing in k\/kustomization.yaml$/,
        );
        return true;
      },
    );
    r.close();
  });

  test('the-renderer-refuses-clients-without-the-hubs-certificate', async () => {
    const [host, port] = [settings.address.split(':')[0], settings.address.split(':')[1]];
    const tryGet = (opts: { cert?: string; key?: string }): Promise<number> =>
      new Promise((resolve, reject) => {
        const s = connect(`https://${host}:${port}`, {
          ca: pem.ca,
          servername: 'localhost',
          ...opts,
        });
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
    // No certificate, or one from another CA: the handshake fails.
    await assert.rejects(tryGet({}));
    await assert.rejects(tryGet({ cert: pem.otherCert, key: pem.otherKey }));
    // The right CA but not the hub's name: refused.
    assert.equal(await tryGet({ cert: pem.wrongCnCert, key: pem.wrongCnKey }), 403);
    // The hub's certificate: served.
    await probeRenderer(settings, 5_000);
  });

  test('a-renderer-that-is-away-fails-only-its-bundles-and-they-render-once-it-is-back', async () => {
    // A port nothing listens on, then a renderer on it.
    const port = await freePort();
    const away = { ...settings, address: `127.0.0.1:${port}` };
    const renderer = new FleetRenderer({ remoteRenderer: away, toolTimeoutMs: 20_000 });
    const tree = repo({
      'clusters/c1.yaml': clusterYaml('c1'),
      'bundles/k/bundle.yaml': bundleYaml(
        'k',
        '  source: { kustomize: { path: k } }\n  namespace: k\n  targets: [ { clusterSelector: {} } ]\n',
      ),
      'bundles/k/k/kustomization.yaml': 'resources: []\n',
      'bundles/k/k/name': 'from-renderer',
      'bundles/plain/bundle.yaml': bundleYaml(
        'plain',
        '  source: { path: m }\n  namespace: plain\n  targets: [ { clusterSelector: {} } ]\n',
      ),
      'bundles/plain/m/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n',
    });
    const first = await renderer.render(tree, 'r1');
    assert.equal(first.errors.length, 1);
    assert.equal(first.errors[0]?.bundle, 'k');
    assert.match(first.errors[0]?.message ?? '', /renderer at 127\.0\.0\.1:\d+ is unavailable/);
    assert.deepEqual(
      first.clusters.get('c1')?.bundles.map((b) => b.name),
      ['plain'],
      'the plain bundle is served',
    );
    await assert.rejects(probeRenderer(away, 2_000));
    const back = await start(port);
    try {
      const second = await renderer.render(tree, 'r1');
      assert.deepEqual(second.errors, [], 'the failure was not cached');
      const k = second.clusters.get('c1')?.bundles.find((b) => b.name === 'k');
      assert.equal(
        (k?.objects[0] as { metadata: { name: string } }).metadata.name,
        'from-renderer',
      );
    } finally {
      await back.stop();
    }
  });

  test('render-remote-config-is-checked-and-names-the-field', () => {
    const cfg = (remote: unknown) => compileRenderConfig({ render: { remote } }, 'hub.yaml');
    assert.throws(() => cfg({ address: 'nope' }), /render\.remote\.address: must be host:port/);
    const missing = cfg({
      address: 'r:7444',
      caFile: join(dir, 'missing.crt'),
      certFile: settings.certFile,
      keyFile: settings.keyFile,
    }).remote;
    assert.throws(() => checkRemoteFiles(missing!), /render\.remote\.caFile: cannot read/);
    assert.throws(
      () => cfg({ address: 'r:7444', bogus: 1 }),
      /render\.remote\.bogus: unknown field/,
    );
    const ok = cfg({
      address: 'renderer:7444',
      caFile: settings.caFile,
      certFile: settings.certFile,
      keyFile: settings.keyFile,
    });
    assert.equal(ok.remote?.address, 'renderer:7444');
  });
});

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
