import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { ConfigError, ValidationError } from '@flotilla/common';
import { DEFAULT_ENCODE_BUDGET_MS } from '../stream/chunks.js';
import { compileHubConfig } from './hub-config.js';
import { loadHubConfig, resolveSourceAuth } from './load.js';

const OPTS = { defaultCacheDir: '/cache' };
const minimal = { sources: [{ name: 'fleet', url: 'https://git.example/fleet.git' }] };

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a ConfigError');
}

test('minimal-config-gets-every-default', () => {
  const cfg = compileHubConfig(minimal, 'hub.yaml', OPTS);
  assert.deepEqual(cfg.sources[0], {
    name: 'fleet',
    url: 'https://git.example/fleet.git',
    branch: 'main',
    pollIntervalMs: 30_000,
    pollJitter: 0.1,
    path: '',
    auth: undefined,
    ref: { kind: 'branch', name: 'main' },
    webhook: undefined,
    verify: undefined,
  });
  assert.deepEqual(cfg.grpc.listen, { address: '127.0.0.1:7443', host: '127.0.0.1', port: 7443 });
  assert.equal(cfg.http.listen.port, 7080);
  assert.equal(cfg.nats.url, 'nats://127.0.0.1:4222');
  assert.equal(cfg.auth.tokenFile, undefined);
  assert.equal(cfg.cacheDir, '/cache');
  assert.equal(cfg.heartbeatIntervalMs, 10_000);
  assert.equal(cfg.offlineAfterMs, 45_000);
  assert.equal(cfg.grpc.sendBudgetMs, DEFAULT_ENCODE_BUDGET_MS);
});

test('durations-are-compiled-to-milliseconds', () => {
  const cfg = compileHubConfig(
    {
      ...minimal,
      heartbeatInterval: '2s',
      offlineAfter: '1m',
      grpc: { sendBudget: '40ms' },
      sources: [{ ...minimal.sources[0], pollInterval: '1m30s' }],
    },
    'hub.yaml',
    OPTS,
  );
  assert.equal(cfg.heartbeatIntervalMs, 2_000);
  assert.equal(cfg.offlineAfterMs, 60_000);
  assert.equal(cfg.grpc.sendBudgetMs, 40);
  assert.equal(cfg.sources[0]?.pollIntervalMs, 90_000);
});

test('unknown-key-is-an-error-naming-file-and-field', () => {
  const err = configError(() =>
    compileHubConfig({ ...minimal, grpc: { listne: ':1' } }, 'hub.yaml', OPTS),
  );
  assert.equal(err.field, 'grpc.listne');
  assert.match(err.message, /^hub\.yaml: grpc\.listne: unknown field/);
  assert.equal(
    configError(() => compileHubConfig({ ...minimal, heartbeat: '1s' }, 'f', OPTS)).field,
    'heartbeat',
  );
});

test('bad-values-name-their-field', () => {
  const cases: [unknown, string][] = [
    [{}, 'sources'],
    [{ sources: [{ url: 'https://x' }] }, 'sources[0].name'],
    [{ sources: [{ name: 'a' }] }, 'sources[0].url'],
    [{ sources: [{ name: 'A_b', url: 'https://x' }] }, 'sources[0].name'],
    [
      {
        sources: [
          { name: 'a', url: 'u' },
          { name: 'a', url: 'u' },
        ],
      },
      'sources[1].name',
    ],
    [
      { ...minimal, sources: [{ name: 'a', url: 'u', pollInterval: 'soon' }] },
      'sources[0].pollInterval',
    ],
    [
      { ...minimal, sources: [{ name: 'a', url: 'u', auth: { token: 'x' } }] },
      'sources[0].auth.token',
    ],
    [{ ...minimal, grpc: { listen: 'localhost' } }, 'grpc.listen'],
    [{ ...minimal, grpc: { sendBudget: '0ms' } }, 'grpc.sendBudget'],
    [{ ...minimal, http: { listen: '127.0.0.1:7443' } }, 'http.listen'],
    [{ ...minimal, nats: { url: 'http://x' } }, 'nats.url'],
    [{ ...minimal, nats: { url: 'nats://127.0.0.1:4222,http://x' } }, 'nats.url'],
    [{ ...minimal, nats: { replicas: 0 } }, 'nats.replicas'],
    [{ ...minimal, nats: { replicas: '3' } }, 'nats.replicas'],
    [{ ...minimal, replicaId: 'Hub_1' }, 'replicaId'],
    [{ ...minimal, heartbeatInterval: '0s' }, 'heartbeatInterval'],
    [{ ...minimal, heartbeatInterval: '1m', offlineAfter: '30s' }, 'offlineAfter'],
  ];
  for (const [raw, field] of cases) {
    assert.equal(
      configError(() => compileHubConfig(raw, 'hub.yaml', OPTS)).field,
      field,
      JSON.stringify(raw),
    );
  }
});

test('broken-yaml-names-file-and-line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-cfg-'));
  try {
    const file = join(dir, 'hub.yaml');
    await writeFile(file, 'sources:\n  - name: fleet\n    url: [unclosed\n');
    await assert.rejects(
      loadHubConfig(file),
      (err: unknown) =>
        err instanceof ValidationError &&
        err.message.startsWith(`${file}:`) &&
        err.line !== undefined,
    );
    await assert.rejects(loadHubConfig(join(dir, 'missing.yaml')), /cannot read/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('source-credentials-come-from-files-or-env', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-cfg-'));
  try {
    await writeFile(join(dir, 'pw'), 'hunter2\n');
    const cfg = compileHubConfig(
      {
        sources: [
          { name: 'a', url: 'u', auth: { usernameEnv: 'GIT_USER', passwordFile: join(dir, 'pw') } },
        ],
      },
      'hub.yaml',
      OPTS,
    );
    assert.deepEqual(await resolveSourceAuth(cfg, 0, { GIT_USER: 'bot' }), {
      username: 'bot',
      password: 'hunter2',
    });
    await assert.rejects(
      resolveSourceAuth(cfg, 0, {}),
      /sources\[0\]\.auth\.usernameEnv: environment variable GIT_USER is not set/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('identity-defaults-and-insecure-is-explicit', () => {
  const cfg = compileHubConfig(minimal, 'hub.yaml', OPTS);
  assert.equal(cfg.insecure, false, 'TLS and per-cluster identities are the default');
  assert.equal(cfg.identity.stateDir, '/cache-identity');
  assert.deepEqual(cfg.identity.hosts, ['127.0.0.1', 'localhost']);
  assert.equal(cfg.identity.tokenTtlMs, 3_600_000);
  assert.equal(cfg.identity.certValidityMs, 86_400_000);
  const custom = compileHubConfig(
    {
      ...minimal,
      insecure: true,
      identity: { stateDir: '/id', hosts: ['hub.example.com'], certValidity: '1h' },
    },
    'hub.yaml',
    OPTS,
  );
  assert.equal(custom.insecure, true);
  assert.deepEqual(custom.identity.hosts, ['hub.example.com']);
  assert.equal(custom.identity.certValidityMs, 3_600_000);
  assert.equal(
    configError(() => compileHubConfig({ ...minimal, insecure: 'yes' }, 'f', OPTS)).field,
    'insecure',
  );
  assert.equal(
    configError(() => compileHubConfig({ ...minimal, identity: { hosts: 'x' } }, 'f', OPTS)).field,
    'identity.hosts',
  );
  assert.equal(
    configError(() => compileHubConfig({ ...minimal, identity: { tokenTtl: 'soon' } }, 'f', OPTS))
      .field,
    'identity.tokenTtl',
  );
});

test('prune-max-share-defaults-to-half-and-takes-a-fraction-or-a-percentage', () => {
  assert.equal(compileHubConfig(minimal, 'hub.yaml', OPTS).prune.maxShare, 0.5);
  const share = (maxShare: unknown): number =>
    compileHubConfig({ ...minimal, prune: { maxShare } }, 'hub.yaml', OPTS).prune.maxShare;
  assert.equal(share(0.25), 0.25);
  assert.equal(share('30%'), 0.3);
  assert.equal(share(1), 1);
  for (const bad of [0, 1.5, '150%', 'half', -0.1]) {
    const err = configError(() => share(bad));
    assert.equal(err.field, 'prune.maxShare');
    assert.match(err.message, /hub\.yaml: prune\.maxShare: must be a share above 0 and at most 1/);
  }
  assert.equal(
    configError(() => compileHubConfig({ ...minimal, prune: { max: 1 } }, 'f', OPTS)).field,
    'prune.max',
  );
});

test('nats-plaintext-to-a-remote-server-is-refused-naming-the-option', () => {
  const nats = (n: Record<string, unknown>) =>
    compileHubConfig({ ...minimal, nats: n }, 'hub.yaml', OPTS).nats;
  const err = configError(() => nats({ url: 'nats://nats.example.com:4222' }));
  assert.equal(err.field, 'nats.url');
  assert.match(
    err.message,
    /^hub\.yaml: nats\.url: "nats:\/\/nats\.example\.com:4222" is plaintext/,
  );
  assert.match(err.message, /nats\.allowPlaintext: true/);
  assert.equal(nats({ url: 'nats://nats.example.com:4222', allowPlaintext: true }).tls, false);
  assert.equal(nats({ url: 'nats://127.0.0.1:4222' }).tls, false, 'loopback stays plaintext');
  assert.equal(
    configError(() => nats({ url: 'tls://n:4222', allowPlaintext: 'yes' })).field,
    'nats.allowPlaintext',
  );
});

test('nats-tls-verifies-against-the-system-roots-or-a-ca-file', () => {
  const nats = (n: Record<string, unknown>) =>
    compileHubConfig({ ...minimal, nats: n }, 'hub.yaml', OPTS).nats;
  assert.deepEqual(
    [nats({ url: 'tls://nats.example.com:4222' }).tls, nats({ url: 'tls://n:1' }).caFile],
    [true, undefined],
  );
  const withCa = nats({ url: 'nats://nats.example.com:4222', caFile: '/etc/nats/ca.crt' });
  assert.deepEqual([withCa.tls, withCa.caFile], [true, '/etc/nats/ca.crt']);
});

test('several-nats-servers-and-replicas-for-a-hub-replica', () => {
  const one = compileHubConfig(minimal, 'hub.yaml', OPTS);
  assert.equal(one.nats.replicas, 1);
  assert.equal(one.status.replicaId, undefined);
  const cfg = compileHubConfig(
    {
      ...minimal,
      replicaId: 'hub-0',
      nats: { url: 'nats://127.0.0.1:4222, nats://127.0.0.1:4223', replicas: 3 },
    },
    'hub.yaml',
    OPTS,
  );
  assert.equal(cfg.nats.replicas, 3);
  assert.equal(cfg.nats.url, 'nats://127.0.0.1:4222, nats://127.0.0.1:4223');
  assert.equal(cfg.status.replicaId, 'hub-0');
});

test('replica-peers-are-host-port-addresses-and-bad-ones-name-the-field', () => {
  assert.deepEqual(compileHubConfig(minimal, 'f', OPTS).status.peers, []);
  const cfg = compileHubConfig(
    { ...minimal, replicaId: 'hub-0', peers: ['hubs.ns.svc:7080', '10.0.0.5:7080', '[::1]:7080'] },
    'f',
    OPTS,
  );
  assert.deepEqual(cfg.status.peers, ['hubs.ns.svc:7080', '10.0.0.5:7080', '[::1]:7080']);
  for (const peers of ['hub:7080', ['http://hub:7080'], ['hub'], [7080]]) {
    const err = configError(() => compileHubConfig({ ...minimal, peers }, 'f', OPTS));
    assert.equal(err.field, 'peers');
    assert.match(err.message, /"host:port" HTTP addresses of the other replicas/);
  }
});
