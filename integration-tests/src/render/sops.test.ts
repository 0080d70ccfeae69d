// SOPS-encrypted files against the real sops program (built and cached by
// tools/build-tools.sh): files encrypted by `sops encrypt` with a fresh age key render
// decrypted; no key, a wrong key and a tampered file fail their bundle with the reason;
// `flotilla render` hides Secret values unless --show-secrets.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { MapRepoTree, renderFleet } from '@flotilla/hub';
import type { KubeObject } from '@flotilla/common';
import {
  ageKeyPair,
  binaryPaths,
  requirePrerequisite,
  sopsEncrypt,
  writeAgeKeyFile,
} from '@flotilla/test-env';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const FLOTILLA = join(ROOT, 'hub', 'dist', 'cli', 'main.js');
const bins = binaryPaths();
const skip = await requirePrerequisite(
  'sops and kustomize',
  () => {
    accessSync(bins.sops, constants.X_OK);
    accessSync(bins.kustomize, constants.X_OK);
    return true;
  },
  'run integration-tests/tools/prereqs.sh (builds sops and kustomize), or set FLOTILLA_SOPS / FLOTILLA_KUSTOMIZE',
);

const PASSWORD = 'correct-horse-battery-staple';
const SECRET = `apiVersion: v1
kind: Secret
metadata:
  name: db
stringData:
  password: ${PASSWORD}
`;
const bundle = (name: string, source: string): string => `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
  source: ${source}
  namespace: ${name}
  targets:
    - clusterSelector: {}
`;
const CLUSTER =
  'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: a\n  labels: {}\n';

describe('SOPS-encrypted files with the real sops', { skip }, () => {
  const key = ageKeyPair();
  const other = ageKeyPair();
  let dir = '';
  let keyFile = '';
  let otherKeyFile = '';
  let files: Record<string, string> = {};

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-sops-'));
    keyFile = await writeAgeKeyFile(join(dir, 'keys.txt'), [other, key]);
    otherKeyFile = await writeAgeKeyFile(join(dir, 'other.txt'), [other]);
    const enc = (text: string, format: 'yaml' | 'json' | 'dotenv', regex?: string) =>
      sopsEncrypt(text, {
        sops: bins.sops,
        recipients: [key.recipient],
        format,
        ...(regex ? { encryptedRegex: regex } : {}),
      });
    files = {
      'clusters/a.yaml': CLUSTER,
      // A plain bundle: a Secret manifest, encrypted as the SOPS docs for Kubernetes say.
      'bundles/db/bundle.yaml': bundle('db', '{ path: manifests }'),
      'bundles/db/manifests/secret.yaml': await enc(SECRET, 'yaml', '^(data|stringData)$'),
      // A kustomize bundle: a JSON Secret and a secretGenerator's encrypted .env file.
      'bundles/api/bundle.yaml': bundle('api', '{ kustomize: { path: overlay } }'),
      'bundles/api/overlay/kustomization.yaml':
        'resources: [token.json]\nsecretGenerator:\n  - name: env\n    envs: [app.env]\n',
      'bundles/api/overlay/token.json': await enc(
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Secret',
          metadata: { name: 'token' },
          stringData: { token: `json-${PASSWORD}` },
        }),
        'json',
        '^stringData$',
      ),
      'bundles/api/overlay/app.env': await enc(`API_KEY=env-${PASSWORD}\n`, 'dotenv'),
    };
    for (const [p, t] of Object.entries(files)) {
      await mkdir(dirname(join(dir, 'repo', p)), { recursive: true });
      await writeFile(join(dir, 'repo', p), t);
    }
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const render = (f: Record<string, string>, ageKeyFile?: string) =>
    renderFleet(MapRepoTree.fromStrings(f), 'r', {
      sopsPath: bins.sops,
      kustomizePath: bins.kustomize,
      ...(ageKeyFile ? { sopsAgeKeyFile: ageKeyFile } : {}),
    });
  const objects = (out: Awaited<ReturnType<typeof render>>, b: string): KubeObject[] =>
    out.clusters.get('a')?.bundles.find((x) => x.name === b)?.objects ?? [];

  test('yaml-json-and-dotenv-files-encrypted-by-sops-render-decrypted', async () => {
    assert.doesNotMatch(files['bundles/db/manifests/secret.yaml'] ?? '', new RegExp(PASSWORD));
    const out = await render(files, keyFile);
    assert.deepEqual(out.errors, []);
    assert.equal(out.stats.decryptions, 3);
    const db = objects(out, 'db').find((o) => o.kind === 'Secret');
    assert.deepEqual(db?.stringData, { password: PASSWORD });
    assert.equal(db?.sops, undefined, 'no sops metadata is deployed');
    const api = objects(out, 'api');
    assert.deepEqual(api.find((o) => o.metadata.name === 'token')?.stringData, {
      token: `json-${PASSWORD}`,
    });
    const env = api.find((o) => o.metadata.name.startsWith('env-'));
    assert.equal(
      Buffer.from((env?.data as { API_KEY: string }).API_KEY, 'base64').toString(),
      `env-${PASSWORD}`,
    );
  });

  test('no-key-a-wrong-key-and-a-tampered-file-fail-the-bundle-with-the-reason', async () => {
    const file = 'bundles/db/manifests/secret.yaml';
    const reasonFor = async (f: Record<string, string>, k?: string): Promise<string> => {
      const out = await render(f, k);
      const e = out.errors.find((x) => x.bundle === 'db');
      assert.equal(e?.file, file);
      assert.ok(
        out.failures.get('a')?.some((x) => x.bundle === 'db'),
        'db is failed on a',
      );
      return e?.message ?? '';
    };
    assert.match(await reasonFor(files), /no age key is configured \(render\.sopsAgeKeyFile\)/);
    assert.match(
      await reasonFor(files, otherKeyFile),
      new RegExp(
        `none of the hub's age keys .* can decrypt its data key \\(it is encrypted for ${key.recipient}\\)`,
      ),
    );
    const renamed = (files[file] ?? '').replace('name: db', 'name: evil');
    assert.match(
      await reasonFor({ ...files, [file]: renamed }, keyFile),
      /MAC does not match its content: it was changed after it was encrypted \(tampered or corrupted\), refused/,
    );
    const flipped = (files[file] ?? '').replace(
      /data:([A-Za-z0-9+/])/,
      (_m, c: string) => `data:${c === 'A' ? 'B' : 'A'}`,
    );
    assert.match(
      await reasonFor({ ...files, [file]: flipped }, keyFile),
      /changed after it was encrypted \(tampered or corrupted\), refused/,
    );
  });

  test('flotilla-render-hides-decrypted-values-unless-show-secrets', async () => {
    const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(
          process.execPath,
          [FLOTILLA, 'render', '--repo', join(dir, 'repo'), '--cluster', 'a', ...args],
          {
            env: {
              ...process.env,
              FLOTILLA_SOPS: bins.sops,
              FLOTILLA_KUSTOMIZE: bins.kustomize,
              SOPS_AGE_KEY_FILE: keyFile,
            },
            timeout: 60_000,
          },
          (err, stdout, stderr) =>
            resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
        );
      });
    for (const format of ['yaml', 'json']) {
      const r = await run(['-o', format]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, new RegExp(PASSWORD), format);
      assert.match(r.stdout, /password.*<redacted>/, format);
    }
    const shown = await run(['--show-secrets']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`password: ${PASSWORD}`));
  });
});
