// SOPS-encrypted files in the renderer, with fakes of our own SecretDecrypter and
// ToolRunner (the real sops program is exercised in integration-tests/src/render).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '@flotilla/common';
import { FleetRenderer, renderFleet } from './renderer.js';
import { SopsDecrypter, sopsFormat } from './sops.js';
import type { SecretDecrypter, SopsFormat } from './sops.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import type { ToolRequest, ToolRunner } from './tools.js';

// What sops writes (shape only): the values are ciphertext, `sops` holds the metadata.
const encrypted = (name: string, cipher: string): string => `apiVersion: v1
kind: Secret
metadata:
    name: ${name}
stringData:
    password: ENC[AES256_GCM,data:${cipher},iv:x,tag:y,type:str]
sops:
    age:
        - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
          enc: |
            -----BEGIN AGE ENCRYPTED FILE-----
            -----END AGE ENCRYPTED FILE-----
    lastmodified: "2026-12-01T10:00:00Z"
    mac: ENC[AES256_GCM,data:mac,iv:x,tag:y,type:str]
    encrypted_regex: ^(data|stringData)$
    version: 3.13.3
`;

/** "Decrypts" by turning the ciphertext marker into plaintext; records every call. */
class FakeDecrypter implements SecretDecrypter {
  readonly calls: string[] = [];
  constructor(readonly refuse: Record<string, string> = {}) {}
  decrypt(path: string, bytes: Buffer, format: SopsFormat): Promise<Buffer> {
    this.calls.push(`${path}:${format}`);
    const reason = this.refuse[path];
    if (reason) return Promise.reject(new ValidationError(reason, { file: path }));
    const text = bytes.toString('utf8');
    const cipher = /data:([a-z0-9-]+),iv/.exec(text)?.[1] ?? '';
    return Promise.resolve(
      Buffer.from(text.replace(/ENC\[[^\]]*\]/, `plain-${cipher}`).replace(/^sops:[\s\S]*$/m, '')),
    );
  }
}

const secretBundle = (name: string, source = ''): string =>
  bundleYaml(name, `${source}  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`);

const FILES = {
  'clusters/a.yaml': clusterYaml('a'),
  'bundles/db/bundle.yaml': secretBundle('db'),
  'bundles/db/manifests/secret.yaml': encrypted('db-password', 'one'),
  'bundles/db/manifests/cm.yaml': configMap('db'),
  'bundles/web/bundle.yaml': secretBundle('web'),
  'bundles/web/manifests/cm.yaml': configMap('web'),
};

function secretOf(out: Awaited<ReturnType<typeof renderFleet>>, bundle: string): unknown {
  const b = out.clusters.get('a')?.bundles.find((x) => x.name === bundle);
  return b?.objects.find((o) => o.kind === 'Secret');
}

describe('SOPS-encrypted files', () => {
  test('files-are-recognised-by-their-sops-metadata-per-format', () => {
    assert.equal(sopsFormat('a/s.yaml', Buffer.from(encrypted('x', 'c'))), 'yaml');
    assert.equal(sopsFormat('a/s.yml', Buffer.from(encrypted('x', 'c'))), 'yaml');
    assert.equal(
      sopsFormat('a/s.json', Buffer.from('{"data":"ENC[…]","sops":{"mac":"ENC[…]"}}')),
      'json',
    );
    assert.equal(sopsFormat('a/s.env', Buffer.from('A=ENC[…]\nsops_mac=ENC[…]\n')), 'dotenv');
    assert.equal(sopsFormat('a/cm.yaml', Buffer.from(configMap('sops'))), undefined);
    assert.equal(sopsFormat('a/doc.md', Buffer.from(encrypted('x', 'c'))), undefined);
  });

  test('an-encrypted-manifest-deploys-decrypted-and-is-decrypted-once-per-content', async () => {
    const secrets = new FakeDecrypter();
    const r = new FleetRenderer({ secrets, tools: undefined });
    const out = await r.render(repo(FILES), 'r1');
    assert.deepEqual(out.errors, []);
    assert.deepEqual(secretOf(out, 'db'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db-password', namespace: 'db', labels: { 'flotilla.dev/bundle': 'db' } },
      stringData: { password: 'plain-one' },
    });
    assert.deepEqual(secrets.calls, ['bundles/db/manifests/secret.yaml:yaml']);
    assert.equal(out.stats.decryptions, 1);
    const again = await r.render(
      repo({ ...FILES, 'bundles/db/manifests/cm.yaml': configMap('x') }),
      'r2',
    );
    assert.equal(again.stats.decryptions, 0, 'unchanged ciphertext is not decrypted again');
    const rotated = await r.render(
      repo({ ...FILES, 'bundles/db/manifests/secret.yaml': encrypted('db-password', 'two') }),
      'r3',
    );
    assert.equal(rotated.stats.decryptions, 1);
    assert.deepEqual((secretOf(rotated, 'db') as { stringData: unknown }).stringData, {
      password: 'plain-two',
    });
  });

  test('a-file-that-cannot-be-decrypted-fails-its-bundle-with-the-reason-and-keeps-the-last-good-one', async () => {
    const reason = 'cannot decrypt this SOPS-encrypted file: its MAC does not match its content';
    const secrets = new FakeDecrypter();
    const r = new FleetRenderer({ secrets });
    await r.render(repo(FILES), 'r1');
    const file = 'bundles/db/manifests/secret.yaml';
    secrets.refuse[file] = reason;
    const out = await r.render(repo({ ...FILES, [file]: encrypted('db-password', 'bad') }), 'r2');
    assert.deepEqual(out.errors, [{ bundle: 'db', file, message: `${file}: ${reason}` }]);
    assert.deepEqual(
      out.failures.get('a')?.map((f) => [f.bundle, f.messages, f.servingRevision]),
      [['db', [`${file}: ${reason}`], 'r1']],
    );
    assert.deepEqual((secretOf(out, 'db') as { stringData: unknown }).stringData, {
      password: 'plain-one',
    });
    assert.ok(
      out.clusters.get('a')?.bundles.some((b) => b.name === 'web'),
      'web still deploys',
    );
  });

  test('kustomize-and-helm-get-the-plaintext-of-encrypted-inputs', async () => {
    const runs: ToolRequest[] = [];
    const tools: ToolRunner = {
      run: (req) => {
        runs.push(req);
        return Promise.resolve(configMap('out'));
      },
    };
    const files = {
      'clusters/a.yaml': clusterYaml('a'),
      'bundles/k/bundle.yaml': secretBundle('k', '  source: { kustomize: { path: overlay } }\n'),
      'bundles/k/overlay/kustomization.yaml': 'resources: [secret.yaml]\n',
      'bundles/k/overlay/secret.yaml': encrypted('k', 'kk'),
      'bundles/h/bundle.yaml': secretBundle(
        'h',
        '  source: { helm: { chart: chart, valuesFiles: [secrets.yaml] } }\n',
      ),
      'bundles/h/chart/Chart.yaml': 'apiVersion: v2\nname: h\nversion: 0.1.0\n',
      'bundles/h/secrets.yaml': `token: ENC[AES256_GCM,data:hh,iv:x,tag:y,type:str]\nsops:\n    mac: ENC[x]\n`,
    };
    const out = await renderFleet(repo(files), 'r', { tools, secrets: new FakeDecrypter() });
    assert.deepEqual(out.errors, []);
    const input = (tool: string, path: string): string =>
      runs
        .find((r) => r.tool === tool)
        ?.files.get(path)
        ?.toString() ?? '';
    assert.match(input('kustomize', 'bundles/k/overlay/secret.yaml'), /password: plain-kk/);
    assert.equal(input('helm', 'bundles/h/secrets.yaml').trim(), 'token: plain-hh');
  });

  test('sops-exit-codes-become-reasons-and-no-key-configured-runs-nothing', async () => {
    const runs: ToolRequest[] = [];
    const exit = (code: number): ToolRunner => ({
      run: (req) => {
        runs.push(req);
        return Promise.reject(
          new ValidationError(req.explainExit?.(code, 'secret=hunter2') ?? '', {
            file: req.errorFile,
          }),
        );
      },
    });
    const file = Buffer.from(encrypted('x', 'c'));
    const reason = async (tools: ToolRunner, key: string | undefined): Promise<string> =>
      new SopsDecrypter(tools, { ageKeyFile: key }).decrypt('s.yaml', file, 'yaml').then(
        () => 'decrypted',
        (err: Error) => err.message,
      );
    assert.match(
      await reason(exit(1), undefined),
      /no age key is configured \(render\.sopsAgeKeyFile\)/,
    );
    assert.equal(runs.length, 0);
    assert.match(
      await reason(exit(128), '/keys.txt'),
      /none of the hub's age keys \(render\.sopsAgeKeyFile\) can decrypt its data key \(it is encrypted for age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\)/,
    );
    assert.match(
      await reason(exit(51), '/keys.txt'),
      /MAC does not match .* \(tampered or corrupted\), refused/,
    );
    assert.match(await reason(exit(25), '/keys.txt'), /changed after it was encrypted/);
    assert.doesNotMatch(await reason(exit(4), '/keys.txt'), /hunter2/, 'stderr is never shown');
    const req = runs[0] as ToolRequest;
    assert.equal(req.tool, 'sops');
    assert.deepEqual(req.secretFiles, { SOPS_AGE_KEY_FILE: '/keys.txt' });
    assert.deepEqual(req.args('/R', '/S'), [
      'decrypt',
      '--input-type',
      'yaml',
      '--output-type',
      'yaml',
      '/R/s.yaml',
    ]);
  });
});
