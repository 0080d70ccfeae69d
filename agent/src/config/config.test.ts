import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { compileConfig } from './config.js';
import { parseAgentArgs } from './options.js';

const compile = (argv: string[], env: NodeJS.ProcessEnv = {}) =>
  compileConfig(parseAgentArgs(argv, env), '0.1.0');
const fieldOf = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.field;
    throw err;
  }
  return undefined;
};

it('flags-and-env-compile-to-a-full-config-with-defaults', () => {
  const c = compile(['--cluster', 'east', '--hub', 'hub.example:7443', '--insecure'], {
    FLOTILLA_NATS_URL: 'tls://n:4222',
    KUBECONFIG: '/k',
    FLOTILLA_TOKEN: 't',
  });
  assert.equal(c.cluster, 'east');
  assert.equal(c.namespace, 'flotilla-system');
  assert.equal(c.kubeconfigPath, '/k');
  assert.equal(c.token, 't');
  assert.equal(c.insecure, true);
  assert.equal(c.resyncIntervalMs, 300_000);
  assert.equal(c.eventBufferSize, 10_000);
});

it('flags-win-over-env', () => {
  const c = compile(['--cluster', 'east', '--hub', 'h:1', '--nats', 'tls://a:1'], {
    FLOTILLA_CLUSTER: 'west',
    FLOTILLA_NATS_URL: 'tls://b:2',
  });
  assert.deepEqual([c.cluster, c.natsServers], ['east', 'tls://a:1']);
});

it('config-errors-name-the-field', () => {
  const ok = ['--hub', 'h:1', '--nats', 'tls://a:1'];
  assert.equal(
    fieldOf(() => compile(ok)),
    'cluster',
  );
  assert.equal(
    fieldOf(() => compile(['--cluster', 'East_1', ...ok])),
    'cluster',
  );
  assert.equal(
    fieldOf(() => compile(['--cluster', 'e', '--hub', 'nohost', '--nats', 'tls://a:1'])),
    'hub',
  );
  assert.equal(
    fieldOf(() => compile(['--cluster', 'e', '--hub', 'h:1', '--nats', 'http://a:1'])),
    'nats',
  );
  assert.equal(
    fieldOf(() => compile(['--cluster', 'e', ...ok, '--log-level', 'loud'])),
    'log-level',
  );
  assert.equal(
    fieldOf(() => compile(['--cluster', 'e', ...ok, '--namespace', 'Bad'])),
    'namespace',
  );
  assert.equal(
    fieldOf(() => compile(['--bogus'])),
    'arguments',
  );
});

it('managed-namespaces-turn-on-namespaced-mode-and-are-validated', () => {
  const ok = ['--cluster', 'e', '--hub', 'h:1', '--nats', 'tls://a:1'];
  assert.equal(compile(ok).managedNamespaces, undefined, 'cluster-wide by default');
  assert.deepEqual(
    compile([...ok, '--managed-namespaces', 'team-b, team-a,team-b']).managedNamespaces,
    ['team-a', 'team-b'],
  );
  assert.deepEqual(compile(ok, { FLOTILLA_MANAGED_NAMESPACES: 'apps' }).managedNamespaces, [
    'apps',
  ]);
  assert.equal(
    fieldOf(() => compile([...ok, '--managed-namespaces', 'Team_A'])),
    'managed-namespaces',
  );
  assert.equal(
    fieldOf(() => compile([...ok, '--managed-namespaces', ' , '])),
    'managed-namespaces',
  );
});

it('capabilities-interval-defaults-to-60s-and-is-at-least-1s', () => {
  const ok = ['--cluster', 'e', '--hub', 'h:1', '--nats', 'tls://a:1'];
  assert.equal(compile(ok).capabilitiesIntervalMs, 60_000);
  assert.equal(compile(ok, { FLOTILLA_CAPABILITIES_INTERVAL: '2s' }).capabilitiesIntervalMs, 2_000);
  assert.equal(compile([...ok, '--capabilities-interval', '5m']).capabilitiesIntervalMs, 300_000);
  assert.equal(
    fieldOf(() => compile([...ok, '--capabilities-interval', '100ms'])),
    'capabilities-interval',
  );
  assert.equal(
    fieldOf(() => compile([...ok, '--capabilities-interval', 'often'])),
    'capabilities-interval',
  );
});

it('plaintext-nats-to-a-remote-server-is-refused-naming-the-option', () => {
  const base = ['--cluster', 'e', '--hub', 'h:1'];
  assert.throws(
    () => compile([...base, '--nats', 'nats://nats.example.com:4222']),
    (err: Error) =>
      err instanceof ConfigError &&
      err.field === 'nats' &&
      err.message.includes('--nats-allow-plaintext') &&
      err.message.includes('tls://nats.example.com:4222'),
  );
  const allowed = compile([
    ...base,
    '--nats',
    'nats://nats.example.com:4222',
    '--nats-allow-plaintext',
  ]);
  assert.equal(allowed.natsTls, false);
  assert.equal(compile([...base, '--nats', 'nats://127.0.0.1:4222']).natsTls, false, 'loopback');
});

it('tls-nats-takes-a-ca-file-from-the-flag-or-env', () => {
  const base = ['--cluster', 'e', '--hub', 'h:1'];
  const tls = compile([...base, '--nats', 'tls://nats.example.com:4222']);
  assert.deepEqual([tls.natsTls, tls.natsCaFile], [true, undefined]);
  const ca = compile([...base, '--nats', 'nats://nats.example.com:4222'], {
    FLOTILLA_NATS_CA_FILE: '/etc/nats/ca.crt',
  });
  assert.deepEqual([ca.natsTls, ca.natsCaFile], [true, '/etc/nats/ca.crt']);
});

it('hub-takes-several-addresses-each-checked', () => {
  const env = { FLOTILLA_NATS_URL: 'tls://n:4222' };
  const c = compile(['--cluster', 'east', '--hub', 'hub-0.example:443, hub-1.example:443'], env);
  assert.equal(c.hubAddress, 'hub-0.example:443,hub-1.example:443');
  assert.equal(
    fieldOf(() => compile(['--cluster', 'east', '--hub', 'hub-0.example:443,hub-1'], env)),
    'hub',
  );
  assert.throws(
    () => compile(['--cluster', 'east', '--hub', 'hub-0.example:443,hub-1'], env),
    /"hub-1" is not HOST:PORT/,
  );
});
