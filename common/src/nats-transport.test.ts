import assert from 'node:assert/strict';
import test from 'node:test';
import { ConfigError } from './errors.js';
import { isLoopbackHost, natsTransport } from './nats-transport.js';

const FIELDS = {
  url: 'nats',
  caFile: '--nats-ca-file',
  allowPlaintext: '--nats-allow-plaintext',
};

test('loopback-hosts-are-recognised', () => {
  for (const h of ['127.0.0.1', '127.4.5.6', 'localhost', '[::1]', '::1', 'a.localhost'])
    assert.equal(isLoopbackHost(h), true, h);
  for (const h of ['10.0.0.1', 'nats.example.com', '[fe80::1]', '0.0.0.0', 'localhost.evil.com'])
    assert.equal(isLoopbackHost(h), false, h);
});

test('plaintext-nats-to-a-remote-address-is-refused-naming-the-options', () => {
  for (const url of [
    'nats://nats.example.com:4222',
    'nats.example.com:4222',
    'nats://10.1.2.3:4222',
  ])
    assert.throws(
      () => natsTransport(url, {}, FIELDS),
      (err: Error) =>
        err instanceof ConfigError &&
        err.field === 'nats' &&
        /not a loopback address/.test(err.message) &&
        err.message.includes('--nats-allow-plaintext') &&
        err.message.includes('--nats-ca-file') &&
        err.message.includes('tls://'),
      url,
    );
  // One remote server among loopback ones is enough to refuse.
  assert.throws(() =>
    natsTransport('nats://127.0.0.1:4222,nats://n2.example.com:4222', {}, FIELDS),
  );
});

test('plaintext-nats-is-accepted-on-loopback-or-when-explicitly-allowed', () => {
  assert.deepEqual(natsTransport('nats://127.0.0.1:4222', {}, FIELDS), {
    tls: false,
    servers: ['nats://127.0.0.1:4222'],
  });
  assert.equal(natsTransport('nats://localhost:4222', {}, FIELDS).tls, false);
  assert.equal(
    natsTransport('nats://nats.example.com:4222', { allowPlaintext: true }, FIELDS).tls,
    false,
  );
});

test('tls-scheme-or-a-ca-file-requires-tls', () => {
  assert.equal(natsTransport('tls://nats.example.com:4222', {}, FIELDS).tls, true);
  assert.equal(
    natsTransport('nats://nats.example.com:4222', { caFile: '/etc/ca.crt' }, FIELDS).tls,
    true,
  );
  assert.equal(
    natsTransport('tls://127.0.0.1:4222, tls://127.0.0.2:4222', {}, FIELDS).servers.length,
    2,
  );
});

test('the-config-file-is-named-in-the-error', () => {
  assert.throws(
    () =>
      natsTransport(
        'nats://nats.example.com:4222',
        {},
        {
          url: 'nats.url',
          caFile: 'nats.caFile',
          allowPlaintext: 'nats.allowPlaintext: true',
          file: '/etc/hub.yaml',
        },
      ),
    /^ConfigError: \/etc\/hub\.yaml: nats\.url: "nats:\/\/nats\.example\.com:4222" is plaintext/,
  );
});
