// NATS over TLS with a real nats-server: what `flotilla nats init --tls-hosts` writes makes
// the server require TLS with a certificate that only its CA verifies; the hub and the
// agent's publisher refuse a server whose certificate is from another CA (nothing is sent
// to an impostor), and connect once they trust the right one.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import { natsSink } from '@flotilla/agent';
import { createLogger } from '@flotilla/common';
import { HubApp, compileHubConfig } from '@flotilla/hub';
import { createTestCa, requireEnv, startNats, waitFor } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';
import { FLOTILLA_BIN } from '../system/fleet.js';
import { OneCommit, oneBundleRenderer } from '../status/one-commit-fleet.js';

const skip = await requireEnv(['nats']);
let dir = '';
let nats: TestNats | undefined;
let hubCreds: Uint8Array;
let natsCa = '';
let otherCa = '';

/** A logger whose lines a test can wait for. */
function recordingLogger(name: string): {
  logger: ReturnType<typeof createLogger>;
  lines: string[];
} {
  const lines: string[] = [];
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) =>
    lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)),
  );
  return { logger: createLogger({ name, level: 'debug', destination: out }), lines };
}

const CERT_ERROR = /certificate|self.signed|unable to verify|UNABLE_TO_VERIFY/i;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'flotilla-nats-tls-'));
  await new Promise<void>((resolve, reject) =>
    execFile(
      process.execPath,
      [
        FLOTILLA_BIN,
        'nats',
        'init',
        '--output-dir',
        dir,
        '--resolver-dir',
        join(dir, 'jwt'),
        '--tls-hosts',
        '127.0.0.1,localhost',
        '--tls-dir',
        dir,
      ],
      (err, _out, stderr) => (err ? reject(new Error(stderr)) : resolve()),
    ),
  );
  const config = [
    await readFile(join(dir, 'nats-auth.conf'), 'utf8'),
    await readFile(join(dir, 'nats-tls.conf'), 'utf8'),
  ].join('\n');
  nats = await startNats({ config });
  hubCreds = await readFile(join(dir, 'hub.creds'));
  natsCa = join(dir, 'nats-ca.crt');
  otherCa = join(dir, 'other-ca.crt');
  await writeFile(otherCa, createTestCa('an-impostors-ca').caPem);
});

after(async () => {
  await nats?.stop({ removeStore: true });
  if (dir) await rm(dir, { recursive: true, force: true });
});

const tlsUrl = (): string => `tls://127.0.0.1:${nats!.port}`;

test('nats-init-tls-files-make-the-server-require-tls-verified-by-its-ca', { skip }, async () => {
  const nc = await connect({
    servers: tlsUrl(),
    tls: { caFile: natsCa },
    authenticator: credsAuthenticator(hubCreds),
  });
  try {
    const connz = (await (await fetch(`${nats!.monitorUrl}/connz`)).json()) as {
      connections: { tls_version?: string }[];
    };
    assert.ok(connz.connections.length > 0);
    assert.ok(connz.connections.every((c) => c.tls_version));
  } finally {
    await nc.close();
  }
  await assert.rejects(
    connect({
      servers: tlsUrl(),
      tls: { caFile: otherCa },
      authenticator: credsAuthenticator(hubCreds),
      reconnect: false,
    }),
    (err: Error) => CERT_ERROR.test(`${err.message} ${String(err.cause)}`),
  );
  await assert.rejects(
    connect({
      servers: tlsUrl(),
      tls: null,
      authenticator: credsAuthenticator(hubCreds),
      reconnect: false,
    }),
    'a client that will not speak TLS is refused',
  );
});

test(
  'the-hub-does-not-use-a-nats-server-whose-certificate-is-from-another-ca',
  { skip, timeout: 60_000 },
  async () => {
    const hubFor = (caFile: string, log: ReturnType<typeof createLogger>): HubApp => {
      const cfg = compileHubConfig(
        {
          sources: [{ name: 'fleet', url: 'https://git.invalid/fleet.git' }],
          grpc: { listen: '127.0.0.1:0' },
          http: { listen: '127.0.0.1:0' },
          nats: { url: tlsUrl(), caFile, credsFile: join(dir, 'hub.creds') },
          insecure: true,
          hubId: 'tls',
        },
        join(dir, 'hub.yaml'),
        { defaultCacheDir: join(dir, 'cache') },
      );
      return new HubApp(cfg, {
        createSource: async () => new OneCommit(),
        renderer: oneBundleRenderer(new Map([['a', {}]])),
        logger: log,
      });
    };
    const readyz = async (hub: HubApp) =>
      (await fetch(`http://127.0.0.1:${hub.httpPort}/readyz`)).json() as Promise<{
        ready: boolean;
        reasons: string[];
        degraded: string[];
      }>;
    const impostor = recordingLogger('hub');
    let hub = hubFor(otherCa, impostor.logger);
    try {
      await hub.start();
      await waitFor(
        () => impostor.lines.some((l) => l.includes('NATS unavailable') && CERT_ERROR.test(l)),
        { what: 'the hub refusing the NATS server certificate', timeoutMs: 20_000 },
      );
      // The hub serves without NATS; readiness says NATS is what is degraded.
      const r = await readyz(hub);
      assert.deepEqual(r.degraded, ['nats'], JSON.stringify(r));
    } finally {
      await hub.stop();
    }
    hub = hubFor(natsCa, recordingLogger('hub').logger);
    try {
      await hub.start();
      await waitFor(async () => (await readyz(hub)).degraded.length === 0, {
        what: 'the hub ready with the NATS CA',
        timeoutMs: 30_000,
      });
    } finally {
      await hub.stop();
    }
  },
);

test(
  'an-agent-sends-nothing-to-a-nats-server-whose-certificate-is-from-another-ca',
  { skip, timeout: 60_000 },
  async () => {
    const rec = recordingLogger('agent');
    const sink = natsSink({
      servers: tlsUrl(),
      tls: { caPem: await readFile(otherCa, 'utf8') },
      name: 'flotilla-agent-tls',
      logger: rec.logger,
      retryInitialMs: 100,
      retryMaxMs: 200,
    });
    try {
      await waitFor(
        () => rec.lines.some((l) => l.includes('cannot connect to NATS') && CERT_ERROR.test(l)),
        { what: 'the agent refusing the NATS server certificate', timeoutMs: 20_000 },
      );
      await assert.rejects(
        sink.publish('flotilla.events.a.applied', new TextEncoder().encode('{}'), 'm-1'),
        /not connected/,
      );
    } finally {
      await sink.close();
    }
  },
);
