import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { loadKubeConfig } from './kubeconfig.js';

async function dirWith(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-kubeconfig-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

it('kubeconfig-token-ca-and-client-certificate-are-read-with-relative-paths', async () => {
  const dir = await dirWith({
    ca: 'CA-PEM',
    crt: 'CERT-PEM',
    'config.yaml': `apiVersion: v1
kind: Config
current-context: main
contexts: [{ name: main, context: { cluster: c, user: u } }]
clusters: [{ name: c, cluster: { server: "https://10.0.0.1:6443", certificate-authority: ca, tls-server-name: api.local } }]
users: [{ name: u, user: { token: s3cret, client-certificate: crt, client-key-data: ${Buffer.from('KEY-PEM').toString('base64')} } }]
`,
  });
  const kc = loadKubeConfig(join(dir, 'config.yaml'));
  assert.deepEqual(kc.getCurrentCluster(), { server: 'https://10.0.0.1:6443' });
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  assert.deepEqual(
    [String(opts.ca), String(opts.cert), String(opts.key), opts.servername],
    ['CA-PEM', 'CERT-PEM', 'KEY-PEM', 'api.local'],
  );
  assert.equal((opts.headers as Record<string, string>).authorization, 'Bearer s3cret');
});

it('kubeconfig-token-file-basic-auth-and-insecure', async () => {
  const dir = await dirWith({
    tok: 'from-file\n',
    'a.yaml': `current-context: one
contexts: [{ name: one, context: { cluster: c, user: u } }, { name: two, context: { cluster: c, user: b } }]
clusters: [{ name: c, cluster: { server: "https://h:1", insecure-skip-tls-verify: true } }]
users: [{ name: u, user: { tokenFile: tok } }, { name: b, user: { username: ann, password: pw } }]
`,
    'b.yaml': `current-context: two
clusters: [{ name: c, cluster: { server: "https://ignored:2" } }]
`,
  });
  const opts: RequestOptions = {};
  await loadKubeConfig(join(dir, 'a.yaml')).applyToHTTPSOptions(opts);
  assert.equal(opts.rejectUnauthorized, false);
  assert.equal((opts.headers as Record<string, string>).authorization, 'Bearer from-file');
  // Several files: the first definition of a name and the first current-context win.
  const saved = process.env.KUBECONFIG;
  process.env.KUBECONFIG = `${join(dir, 'b.yaml')}:${join(dir, 'a.yaml')}`;
  try {
    const kc = loadKubeConfig();
    assert.deepEqual(kc.getCurrentCluster(), { server: 'https://ignored:2' });
    const basic: RequestOptions = {};
    await kc.applyToHTTPSOptions(basic);
    assert.equal(basic.auth, 'ann:pw');
  } finally {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
  }
});

it('kubeconfig-errors-name-what-is-missing', async () => {
  const dir = await dirWith({ 'x.yaml': 'current-context: nope\ncontexts: []\n' });
  assert.throws(() => loadKubeConfig(join(dir, 'x.yaml')), /no context named "nope"/);
});
