// Benchmark of the identity paths (a program, not a test): registration (token + CSR →
// certificate, agent key generation included), renewal, and revocation (time from
// `revoke` to the open stream being closed and a new stream being refused).
//   node hub/dist/identity/bench.js [clusters=20]
// Targets (issue 6): a revoked cluster cut off within 5 s; registration is one step (no target
// in ms, reported for reference).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { quietDependencyWarnings, silentLogger } from '@flotilla/common';
import { PROTOCOL_VERSION, loadFlotillaProto } from '@flotilla/proto';
import type { AgentStreamClient, Credentials__Output, IdentityClient } from '@flotilla/proto';
import { AgentStreamService } from '../stream/agent-stream.js';
import { DesiredStateStore } from '../stream/desired-store.js';
import { startGrpcServer } from '../stream/grpc-server.js';
import { nullObserver } from '../stream/types.js';
import { IdentityAuthority } from './authority.js';
import { createCsr, generateKeyPem } from './pki.js';
import { identityHandlers, peerOf } from './service.js';

const REVOKE_TARGET_MS = 5_000;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

function unary<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((ok, fail) => fn((err, res) => (err ? fail(err) : ok(res as T))));
}

/** Opens a stream as `cluster`; resolves once welcomed, with a promise of the stream's end. */
function openStream(
  address: string,
  creds: grpc.ChannelCredentials,
  cluster: string,
): Promise<{ ended: Promise<number>; close(): void }> {
  const client = new (loadFlotillaProto().AgentStream)(
    address,
    creds,
  ) as unknown as AgentStreamClient;
  const call = client.Connect();
  return new Promise((resolve, reject) => {
    const ended = new Promise<number>((done) => {
      call.on('error', () => done(performance.now()));
      call.on('end', () => done(performance.now()));
    });
    call.on('data', (m: { kind?: string }) => {
      if (m.kind === 'welcome') resolve({ ended, close: () => (call.cancel(), client.close()) });
    });
    void ended.then(() => reject(new Error('stream ended before welcome')));
    call.write({
      hello: {
        cluster,
        agentVersion: 'bench',
        appliedDigest: '',
        appliedRevision: '',
        protocolVersion: PROTOCOL_VERSION,
      },
    });
  });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 20);
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-identity-bench-'));
  const logger = silentLogger();
  const authority = new IdentityAuthority({ stateDir: dir, hosts: ['127.0.0.1'], logger });
  await authority.start();
  const stream = new AgentStreamService({
    source: new DesiredStateStore(),
    observer: nullObserver,
    logger,
    token: undefined,
    heartbeatIntervalMs: 10_000,
    authenticate: (call) => peerOf(call, authority).name,
  });
  authority.onRevoke((c) => stream.closeCluster(c, 'revoked'));
  const server = await startGrpcServer(
    '127.0.0.1:0',
    {
      agentStream: stream.handlers(),
      fleet: {} as never,
      identity: identityHandlers({ authority, logger }),
    },
    { caPem: authority.caPem, ...authority.servingPair },
  );
  const address = `127.0.0.1:${server.port}`;
  const ca = Buffer.from(authority.caPem);
  const { Identity } = loadFlotillaProto();
  const register: number[] = [];
  const renew: number[] = [];
  const revokeClosed: number[] = [];
  const revokeRefused: number[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const name = `bench-${i}`;
      const { token } = await authority.addCluster(name, {});
      const t0 = performance.now();
      const key = generateKeyPem();
      const client = new Identity(
        address,
        grpc.credentials.createSsl(ca),
      ) as unknown as IdentityClient;
      const creds = await unary<Credentials__Output>((cb) =>
        client.Register(
          { cluster: name, token, csrPem: createCsr(key, name), natsPublicKey: '' },
          cb,
        ),
      );
      register.push(performance.now() - t0);
      client.close();
      const mtls = grpc.credentials.createSsl(
        ca,
        Buffer.from(key),
        Buffer.from(creds.certificatePem),
      );
      const t1 = performance.now();
      const rc = new Identity(address, mtls) as unknown as IdentityClient;
      await unary<Credentials__Output>((cb) =>
        rc.Renew({ csrPem: createCsr(generateKeyPem(), name), natsPublicKey: '' }, cb),
      );
      renew.push(performance.now() - t1);
      rc.close();
      if (i % 4 === 0) {
        const open = await openStream(address, mtls, name);
        const t2 = performance.now();
        await authority.revoke(name);
        revokeClosed.push((await open.ended) - t2);
        open.close();
        // A new channel: a fresh TLS handshake with the revoked certificate.
        const again = openStream(
          address,
          grpc.credentials.createSsl(ca, Buffer.from(key), Buffer.from(creds.certificatePem)),
          name,
        ).then(
          () => Infinity,
          () => performance.now() - t2,
        );
        revokeRefused.push(await again);
      }
    }
  } finally {
    stream.stop();
    await server.stop(1_000);
    await rm(dir, { recursive: true, force: true });
  }
  const line = (what: string, v: number[]): string =>
    `${what.padEnd(34)} p50 ${pct(v, 50).toFixed(1)} ms   p99 ${pct(v, 99).toFixed(1)} ms   (n=${v.length})`;
  console.log(line('register (keygen + CSR + RPC)', register));
  console.log(line('renew (mTLS RPC)', renew));
  console.log(line('revoke → open stream closed', revokeClosed));
  console.log(line('revoke → new stream refused', revokeRefused));
  const worst = Math.max(...revokeClosed, ...revokeRefused);
  console.log(
    `target: revoked cluster cut off within ${REVOKE_TARGET_MS} ms → worst ${worst.toFixed(1)} ms: ${worst <= REVOKE_TARGET_MS ? 'met' : 'NOT MET'}`,
  );
}

// The clients dial 127.0.0.1 over TLS (grpc-js: DEP0123 on every dial), as the CLI does.
quietDependencyWarnings();
await main();
