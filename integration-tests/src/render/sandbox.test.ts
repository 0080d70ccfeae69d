// The render sandbox with the real kustomize and sops: a run cannot reach a local HTTP
// server (Go programs bypass the unreachable proxy for 127.0.0.1, so only a network
// namespace keeps them off it), cannot read a file of the hub's outside its inputs (run as
// another user), and SOPS decryption still works with its key copied into the run.
// Each test also runs the same thing without the sandbox and sees it succeed, so a
// sandbox that silently did nothing would fail here.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  ExecToolRunner,
  MapRepoTree,
  NO_SANDBOX,
  renderFleet,
  resolveSandbox,
} from '@flotilla/hub';
import type { ToolRequest, ToolSandbox } from '@flotilla/hub';
import {
  ageKeyPair,
  binaryPaths,
  requirePrerequisite,
  sopsEncrypt,
  writeAgeKeyFile,
} from '@flotilla/test-env';

const bins = binaryPaths();
const skip = await requirePrerequisite(
  'kustomize and sops',
  () => {
    accessSync(bins.kustomize, constants.X_OK);
    accessSync(bins.sops, constants.X_OK);
    return true;
  },
  'run integration-tests/tools/prereqs.sh (builds kustomize and sops), or set FLOTILLA_KUSTOMIZE / FLOTILLA_SOPS',
);
// Running as another user needs root (to switch users); the network namespace needs
// unprivileged user namespaces or root. Both are what the hub's image and a Linux CI get.
const skipUser =
  skip ??
  (await requirePrerequisite(
    'root, to run the render tools as another user',
    () => process.getuid?.() === 0 || 'the tests run as a non-root user',
    'run the integration tests as root (as CI does in its container)',
  ));

const CM = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fetched\n';
const CLUSTER =
  'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\n  labels: {}\n';
const bundle = (name: string, source: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  source: ${source}\n  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`;

describe('the render sandbox', { skip }, () => {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method ?? ''} ${req.url ?? ''}`);
    res.writeHead(200, { 'content-type': 'application/yaml' }).end(CM);
  });
  let url = '';
  let dir = '';
  // Programs where every user can run them (the cached ones live under a private HOME).
  let kustomize = '';
  let sops = '';

  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/cm.yaml`;
    dir = await mkdtemp(join(tmpdir(), 'flotilla-sandbox-'));
    await chmod(dir, 0o755);
    kustomize = join(dir, 'kustomize');
    sops = join(dir, 'sops');
    await copyFile(bins.kustomize, kustomize);
    await copyFile(bins.sops, sops);
    await chmod(kustomize, 0o755);
    await chmod(sops, 0o755);
  });
  after(async () => {
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const networkSandbox = (): ToolSandbox =>
    resolveSandbox({ mode: 'network', uid: 65534, gid: 65534 }, [kustomize]);
  const userSandbox = (): ToolSandbox =>
    resolveSandbox({ mode: 'user', uid: 65534, gid: 65534 }, [kustomize, sops]);

  // kustomize fetching a remote file itself, as it would if a reference slipped past the
  // hub's own check of kustomizations.
  const fetchRun = (): ToolRequest => ({
    tool: 'kustomize',
    files: new Map([['k/kustomization.yaml', Buffer.from(`resources:\n  - ${url}\n`)]]),
    args: (root) => ['build', join(root, 'k')],
    errorFile: 'k/kustomization.yaml',
  });

  test('kustomize-in-the-sandbox-cannot-reach-a-local-http-server', async () => {
    // Without the sandbox the same run fetches from the server: the test can fail.
    requests.length = 0;
    const open = await new ExecToolRunner({ kustomizePath: kustomize }).run(fetchRun());
    assert.match(open, /name: fetched/);
    assert.equal(requests.length, 1, 'kustomize fetches over HTTP without the sandbox');

    requests.length = 0;
    for (const sandbox of [networkSandbox(), ...(skipUser ? [] : [userSandbox()])]) {
      const runner = new ExecToolRunner({ kustomizePath: kustomize, sandbox });
      await assert.rejects(runner.run(fetchRun()), (err: Error) => {
        assert.match(err.message, /network is unreachable|connect/, err.message);
        return true;
      });
      assert.deepEqual(requests, [], `no request from a run at level ${sandbox.level}`);
    }
  });

  test('a-kustomization-naming-a-local-url-fails-its-bundle-and-the-server-gets-no-request', async () => {
    requests.length = 0;
    const tree = MapRepoTree.fromStrings({
      'clusters/c1.yaml': CLUSTER,
      'bundles/remote/bundle.yaml': bundle('remote', '{ kustomize: { path: k } }'),
      'bundles/remote/k/kustomization.yaml': `resources:\n  - ${url}\n`,
      'bundles/ok/bundle.yaml': bundle('ok', '{ path: manifests }'),
      'bundles/ok/manifests/cm.yaml': CM,
    });
    const out = await renderFleet(tree, 'r', {
      kustomizePath: kustomize,
      toolSandbox: networkSandbox(),
    });
    assert.equal(out.errors.length, 1, out.errors.map((e) => e.message).join('\n'));
    assert.match(out.errors[0]?.message ?? '', /is a remote base/);
    assert.deepEqual(
      out.clusters.get('c1')?.bundles.map((b) => b.name),
      ['ok'],
    );
    assert.deepEqual(requests, []);
  });

  test(
    'kustomize-as-the-sandbox-user-cannot-read-a-secret-file-of-the-hub',
    { skip: skipUser },
    async () => {
      // Stands for the CA key or a NATS seed: readable by the hub only.
      const secrets = join(dir, 'hub-secrets');
      await mkdir(secrets, { mode: 0o700 });
      const keyPath = join(secrets, 'ca-key.yaml');
      await writeFile(
        keyPath,
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stolen\ndata:\n  key: TOP-SECRET-CA-KEY\n',
        { mode: 0o600 },
      );
      // LoadRestrictionsNone lets kustomize read any path: only the sandbox stands in the way.
      const steal = (): ToolRequest => ({
        tool: 'kustomize',
        files: new Map([['k/kustomization.yaml', Buffer.from(`resources:\n  - ${keyPath}\n`)]]),
        args: (root) => ['build', '--load-restrictor', 'LoadRestrictionsNone', join(root, 'k')],
        errorFile: 'k/kustomization.yaml',
      });
      const open = await new ExecToolRunner({ kustomizePath: kustomize, sandbox: NO_SANDBOX }).run(
        steal(),
      );
      assert.match(open, /TOP-SECRET-CA-KEY/, 'without the sandbox kustomize reads the file');

      const sandbox = userSandbox();
      assert.equal(sandbox.level, 'user');
      const runner = new ExecToolRunner({ kustomizePath: kustomize, sandbox });
      await assert.rejects(runner.run(steal()), (err: Error) => {
        assert.match(err.message, /permission denied/, err.message);
        assert.doesNotMatch(err.message, /TOP-SECRET-CA-KEY/);
        return true;
      });
      // Its own inputs it can read: a plain build works as that user.
      const ok = await runner.run({
        tool: 'kustomize',
        files: new Map([
          ['k/kustomization.yaml', Buffer.from('resources: [cm.yaml]\n')],
          ['k/cm.yaml', Buffer.from(CM)],
        ]),
        args: (root) => ['build', join(root, 'k')],
        errorFile: 'k/kustomization.yaml',
      });
      assert.match(ok, /name: fetched/);
    },
  );

  test(
    'sops-as-the-sandbox-user-decrypts-with-a-key-file-only-the-hub-can-read',
    { skip: skipUser },
    async () => {
      const key = ageKeyPair();
      const keys = join(dir, 'age');
      await mkdir(keys, { mode: 0o700 });
      const keyFile = await writeAgeKeyFile(join(keys, 'keys.txt'), [key]);
      await chmod(keyFile, 0o600);
      const secret = await sopsEncrypt(
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2-sandboxed\n',
        {
          sops: bins.sops,
          recipients: [key.recipient],
          format: 'yaml',
          encryptedRegex: '^stringData$',
        },
      );
      const out = await renderFleet(
        MapRepoTree.fromStrings({
          'clusters/c1.yaml': CLUSTER,
          'bundles/db/bundle.yaml': bundle('db', '{ path: manifests }'),
          'bundles/db/manifests/secret.yaml': secret,
        }),
        'r',
        { sopsPath: sops, sopsAgeKeyFile: keyFile, toolSandbox: userSandbox() },
      );
      assert.deepEqual(out.errors, []);
      const objects = out.clusters.get('c1')?.bundles[0]?.objects ?? [];
      assert.equal(
        (objects[0] as { stringData?: { password?: string } } | undefined)?.stringData?.password,
        'hunter2-sandboxed',
      );
    },
  );
});
