// A SOPS-encrypted Secret, end to end on real parts (kube-apiserver, NATS, a Git server,
// the hub decrypting with the real sops and an age key file, an agent with its own
// RBAC): it deploys decrypted; its plaintext appears nowhere in the hub's or agent's
// logs, `flotilla render`, `status`, `get`, `drift` or `history`, also after drift of
// the Secret is healed; a tampered commit fails the bundle with the reason while the
// cluster keeps the Secret it has.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import {
  ageKeyPair,
  binaryPaths,
  requireEnv,
  sopsEncrypt,
  waitFor,
  writeAgeKeyFile,
} from '@flotilla/test-env';
import { FLOTILLA_BIN, startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const PASSWORD = 'sops-e2e-plaintext-7f3a9c';
const IN_CLUSTER_EDIT = 'edited-in-cluster-5d21e8';
const encodings = (s: string): string[] => [s, Buffer.from(s).toString('base64')];

const skip = await requireEnv(['cluster', 'nats', 'git']);
let fleet: Fleet | undefined;
let work = '';
let keyFile = '';
let repoFiles: Record<string, string> = {};
const SECRET_FILE = 'bundles/db/manifests/secret.yaml';

before(async () => {
  if (skip) return;
  work = await mkdtemp(join(tmpdir(), 'flotilla-sops-e2e-'));
  const key = ageKeyPair();
  keyFile = await writeAgeKeyFile(join(work, 'age-keys.txt'), [key]);
  repoFiles = {
    'clusters/eu.yaml':
      'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: eu\n  labels: {}\n',
    'bundles/db/bundle.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: db
spec:
  source: { path: manifests }
  namespace: db
  targets:
    - clusterSelector: {}
`,
    'bundles/db/manifests/namespace.yaml':
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: db\n',
    [SECRET_FILE]: await sopsEncrypt(
      `apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-password\nstringData:\n  password: ${PASSWORD}\n`,
      {
        sops: binaryPaths().sops,
        recipients: [key.recipient],
        encryptedRegex: '^(data|stringData)$',
      },
    ),
  };
  fleet = await startFleet({
    clusters: ['eu'],
    repoFiles,
    render: { sopsAgeKeyFile: keyFile },
  });
});

after(async () => {
  await fleet?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Every file of a directory tree, concatenated (the fleet's process logs). */
async function allText(dir: string): Promise<string> {
  let out = '';
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out += await readFile(join(e.parentPath, e.name), 'utf8');
  }
  return out;
}

function flotillaRender(repo: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [FLOTILLA_BIN, 'render', '--repo', repo, '--cluster', 'eu', ...args],
      {
        env: { ...process.env, FLOTILLA_SOPS: binaryPaths().sops, SOPS_AGE_KEY_FILE: keyFile },
        timeout: 60_000,
      },
      (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout + stderr)),
    );
  });
}

test(
  'a-sops-encrypted-secret-deploys-decrypted-and-its-plaintext-is-in-no-log-or-cli-output',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    assert.doesNotMatch(repoFiles[SECRET_FILE] ?? '', new RegExp(PASSWORD), 'encrypted in Git');
    await f.waitForRevision(f.firstCommit, 120_000);
    const kc = new KubeConfig();
    kc.loadFromFile(f.clusters.get('eu')!.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const password = async (): Promise<string> => {
      const s = await core.readNamespacedSecret({ name: 'db-password', namespace: 'db' });
      return Buffer.from(s.data?.password ?? '', 'base64').toString();
    };
    assert.equal(await password(), PASSWORD, 'the cluster holds the decrypted value');

    // Drift on the Secret: healed, and reported without values.
    const live = await core.readNamespacedSecret({ name: 'db-password', namespace: 'db' });
    live.data = { password: Buffer.from(IN_CLUSTER_EDIT).toString('base64') };
    await core.replaceNamespacedSecret({ name: 'db-password', namespace: 'db', body: live });
    await waitFor(async () => (await password()) === PASSWORD, {
      what: `the agent heals the edited Secret (logs in ${f.logDir})`,
      timeoutMs: 60_000,
    });
    const drift = await waitFor(
      async () => {
        const out = await f.cli([
          'history',
          '--kind',
          'drift-detected,drift-corrected',
          '-o',
          'json',
        ]);
        return out.includes('db-password') && out.includes('drift-corrected') ? out : false;
      },
      { what: 'the drift of the Secret in history', timeoutMs: 60_000 },
    );

    // A tampered commit: the bundle is Failed with the reason; the cluster keeps its Secret.
    const tampered = await f.repo.commitAndPush('tampered secret', {
      [SECRET_FILE]: (repoFiles[SECRET_FILE] ?? '').replace('name: db-password', 'name: db-admin'),
    });
    const reason = await waitFor(
      async () => {
        const d = JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as {
          deployments: { bundle: string; state: string; reason: string }[];
        };
        const db = d.deployments.find((x) => x.bundle === 'db');
        return db?.state === 'Failed' && db.reason.includes(tampered.slice(0, 12))
          ? db.reason
          : false;
      },
      { what: 'the db bundle Failed at the tampered commit', timeoutMs: 60_000 },
    );
    assert.match(
      reason,
      /bundles\/db\/manifests\/secret\.yaml: cannot decrypt this SOPS-encrypted file: its MAC does not match its content: .*tampered/,
    );
    assert.equal(await password(), PASSWORD, 'the cluster keeps the last good Secret');

    // Everything a user or operator reads: CLI output and every process log.
    const local = join(work, 'checkout');
    for (const [p, t] of Object.entries(repoFiles)) {
      await mkdir(dirname(join(local, p)), { recursive: true });
      await writeFile(join(local, p), t);
    }
    const rendered = await flotillaRender(local, []);
    assert.match(rendered, /password: <redacted>/, 'flotilla render decrypts and hides');
    const outputs: Record<string, string> = {
      'flotilla render': rendered,
      'flotilla render -o json': await flotillaRender(local, ['-o', 'json']),
      'flotilla status': await f.cli(['status', '-o', 'wide']),
      'flotilla get deployments': await f.cli(['get', 'deployments', '-o', 'yaml']),
      'flotilla get bundles': await f.cli(['get', 'bundles', '-o', 'yaml']),
      'flotilla describe cluster': await f.cli(['describe', 'cluster', 'eu']),
      'flotilla drift': await f.cli(['drift', '--since', '1h']),
      'flotilla history': await f.cli(['history', '-o', 'json']),
      'drift history': drift,
      'process logs (hub, agent, API server)': await allText(f.logDir),
    };
    for (const [where, text] of Object.entries(outputs))
      for (const secret of [...encodings(PASSWORD), ...encodings(IN_CLUSTER_EDIT)])
        assert.ok(!text.includes(secret), `${where} shows a secret value`);
    assert.match(
      await flotillaRender(local, ['--show-secrets']),
      new RegExp(`password: ${PASSWORD}`),
      'shown when asked',
    );
  },
);
