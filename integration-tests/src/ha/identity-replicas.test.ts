// Identity across hub replicas, as real processes: two hubs with TLS and per-cluster
// identities (one hubId, a replicaId each, one CA mounted in both) on a three-node NATS
// JetStream cluster, their identity records in the KV bucket flotilla-identity-<hubId>.
// A bootstrap token sent to both replicas at the same moment registers once; a cluster
// revoked through one replica loses its stream on the other, which refuses it from then on.
import assert from 'node:assert/strict';
import { readFile, mkdtemp, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { createCsr, generateKeyPem, identityBucket } from '@flotilla/hub';
import { PROTOCOL_VERSION, loadFlotillaProto } from '@flotilla/proto';
import type { AgentStreamClient, IdentityClient } from '@flotilla/proto';
import {
  createWorkRepo,
  freePort,
  requireEnv,
  spawnServer,
  startGitServer,
  startNatsCluster,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess } from '@flotilla/test-env';
import { FLOTILLA_BIN } from '../system/fleet.js';
import { register } from '../identity/clients.js';
import type { ClientTls } from '../identity/clients.js';

const skip = await requireEnv(['nats', 'git']);
const HUB_ID = 'id-hub';
const ROUNDS = 10;

interface Hub {
  replica: string;
  grpc: string;
  https: string;
  proc?: ManagedProcess;
}

function creds(tls: ClientTls): grpc.ChannelCredentials {
  return tls.keyPem && tls.certPem
    ? grpc.credentials.createSsl(
        Buffer.from(tls.caPem),
        Buffer.from(tls.keyPem),
        Buffer.from(tls.certPem),
      )
    : grpc.credentials.createSsl(Buffer.from(tls.caPem));
}

/** One unary Identity call as an administrator. */
function adminCall<Res>(
  address: string,
  admin: ClientTls,
  method: string,
  req: object,
): Promise<Res> {
  const { Identity } = loadFlotillaProto();
  const client = new Identity(address, creds(admin)) as unknown as Record<
    string,
    (req: object, cb: (err: grpc.ServiceError | null, res: Res) => void) => void
  > &
    IdentityClient;
  return new Promise((resolve, reject) => {
    client[method]?.(req, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

/** An agent stream held open: `opened` once the hub welcomed it, `ended` with how it ended. */
function holdStream(address: string, tls: ClientTls, cluster: string) {
  const { AgentStream } = loadFlotillaProto();
  const client = new AgentStream(address, creds(tls)) as unknown as AgentStreamClient;
  const call = client.Connect();
  let welcomed!: () => void;
  const opened = new Promise<void>((r) => (welcomed = r));
  const ended = new Promise<{ code: grpc.status; details: string }>((resolve) => {
    call.on('data', (m: { welcome?: unknown }) => {
      if (m.welcome) welcomed();
    });
    call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, details: err.details }));
    call.on('end', () => resolve({ code: grpc.status.OK, details: 'ended' }));
  });
  call.write({
    hello: {
      cluster,
      agentVersion: 'test',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: PROTOCOL_VERSION,
    },
  });
  return {
    opened,
    ended,
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

async function httpsOk(url: string, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    httpsGet(url, { ca }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 300);
    }).on('error', () => resolve(false));
  });
}

test(
  'a-bootstrap-token-registers-once-across-replicas-and-a-revocation-closes-the-stream-on-the-other-replica',
  { skip, timeout: 300_000 },
  async () => {
    const work = await mkdtemp(join(tmpdir(), 'flotilla-identity-replicas-'));
    const [nats, git] = await Promise.all([startNatsCluster(), startGitServer()]);
    const hubs: Hub[] = [];
    const held: { close(): void }[] = [];
    try {
      const repoUrl = await git.createRepo('fleet');
      const repo = await createWorkRepo(repoUrl);
      await repo.writeFiles({
        'clusters/edge-0.yaml':
          'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge-0\n',
      });
      await repo.commitAndPush('first');
      // One identity directory for both: in Kubernetes the CA is a Secret mounted in every replica.
      const stateDir = join(work, 'identity');
      for (const replica of ['hub-a', 'hub-b']) {
        const [grpcPort, httpPort] = [await freePort(), await freePort()];
        const config = join(work, `${replica}.yaml`);
        await writeFile(
          config,
          [
            'sources:',
            '  - name: fleet',
            `    url: ${repoUrl}`,
            '    pollInterval: 5s',
            `grpc:\n  listen: 127.0.0.1:${grpcPort}`,
            `http:\n  listen: 127.0.0.1:${httpPort}`,
            'nats:',
            `  url: ${nats.url}`,
            '  replicas: 3',
            `hubId: ${HUB_ID}`,
            'identity:',
            `  stateDir: ${stateDir}`,
            '  hosts: [127.0.0.1]',
            `cacheDir: ${join(work, `cache-${replica}`)}`,
            '',
          ].join('\n'),
        );
        hubs.push({
          replica,
          grpc: `127.0.0.1:${grpcPort}`,
          https: `https://127.0.0.1:${httpPort}`,
        });
      }
      const start = async (h: Hub): Promise<void> => {
        const config = join(work, `${h.replica}.yaml`);
        const p = spawnServer(
          h.replica,
          process.execPath,
          [FLOTILLA_BIN, 'hub', '--config', config],
          {
            logFile: join(work, `${h.replica}.log`),
            env: { ...process.env, FLOTILLA_HUB_REPLICA: h.replica },
          },
        );
        h.proc = p;
        await waitFor(
          async () => {
            if (!p.isRunning()) throw new Error(`${h.replica} exited; log:\n${p.logTail()}`);
            const ca = await readFile(join(stateDir, 'ca.crt'), 'utf8').catch(() => '');
            return ca !== '' && (await httpsOk(`${h.https}/readyz`, ca));
          },
          { what: `${h.replica} ready (log in ${work})`, timeoutMs: 60_000, intervalMs: 200 },
        );
      };
      // The first start creates the CA; the second replica mounts the same one.
      const [a, b] = hubs as [Hub, Hub];
      await start(a);
      await start(b);
      const caPem = await readFile(join(stateDir, 'ca.crt'), 'utf8');
      const admin: ClientTls = {
        caPem,
        keyPem: await readFile(join(stateDir, 'admin.key'), 'utf8'),
        certPem: await readFile(join(stateDir, 'admin.crt'), 'utf8'),
      };

      // The records are in a three-copy KV bucket, not in a file of one replica.
      const nc = await connect({ servers: nats.url.split(',') });
      const info = await (await jetstreamManager(nc)).streams.info(`KV_${identityBucket(HUB_ID)}`);
      assert.equal(info.config.num_replicas, 3);
      await nc.close();

      const key = generateKeyPem();
      let winner: { cluster: string; certPem: string } | undefined;
      for (let i = 0; i < ROUNDS; i++) {
        const cluster = `edge-${i}`;
        const { token } = await adminCall<{ token: string }>(a.grpc, admin, 'AddCluster', {
          name: cluster,
          labels: {},
        });
        // Replica b knows the cluster (and, a moment later, its token) before the race.
        await waitFor(
          async () =>
            (
              await adminCall<{ clusters: { name: string }[] }>(b.grpc, admin, 'ListIdentities', {})
            ).clusters.some((c) => c.name === cluster),
          { what: `${cluster} known to hub-b`, timeoutMs: 10_000, intervalMs: 50 },
        );
        await new Promise((r) => setTimeout(r, 300));
        const csrPem = createCsr(key, cluster);
        const outcomes = await Promise.all(
          [a, b].map((h) => register(h.grpc, { caPem }, { cluster, token, csrPem })),
        );
        const ok = outcomes.filter((o) => o.code === grpc.status.OK);
        const refused = outcomes.filter((o) => o.code !== grpc.status.OK);
        assert.equal(
          ok.length,
          1,
          `round ${i}: exactly one registration: ${JSON.stringify(outcomes)}`,
        );
        assert.equal(refused[0]?.code, grpc.status.UNAUTHENTICATED);
        assert.match(refused[0]?.details ?? '', /already used/);
        if (i === 0) winner = { cluster, certPem: ok[0]?.response?.certificatePem ?? '' };
      }
      assert.ok(winner);

      // The agent of edge-0 holds its stream on hub-b; the revocation goes through hub-a.
      const agentTls: ClientTls = { caPem, keyPem: key, certPem: winner.certPem };
      const stream = holdStream(b.grpc, agentTls, winner.cluster);
      held.push(stream);
      await stream.opened;
      const t0 = Date.now();
      const revoked = await adminCall<{ streamsClosed: number }>(a.grpc, admin, 'RevokeCluster', {
        name: winner.cluster,
      });
      assert.equal(revoked.streamsClosed, 0, 'hub-a held no stream of edge-0');
      const end = await Promise.race([
        stream.ended,
        new Promise<undefined>((r) => setTimeout(() => r(undefined), 10_000)),
      ]);
      assert.ok(end, 'hub-b closed the stream of the revoked cluster');
      assert.equal(end.code, grpc.status.UNAUTHENTICATED, end.details);
      assert.match(end.details, /revoked/);
      const seenMs = Date.now() - t0;
      assert.match(
        await readFile(join(work, 'hub-b.log'), 'utf8'),
        /cluster revoked on another hub replica/,
      );
      // Its reconnect is refused by hub-b (and hub-a).
      for (const h of [b, a]) {
        const again = holdStream(h.grpc, agentTls, winner.cluster);
        held.push(again);
        const r = await Promise.race([
          again.ended,
          new Promise<undefined>((res) => setTimeout(() => res(undefined), 10_000)),
        ]);
        assert.ok(r, `${h.replica} refused the reconnect`);
        assert.equal(r.code, grpc.status.UNAUTHENTICATED, `${h.replica}: ${r.details}`);
      }
      console.log(`# stream on hub-b closed ${seenMs} ms after the revocation was sent to hub-a`);
    } finally {
      for (const s of held) s.close();
      await Promise.all(hubs.map((h) => h.proc?.stop()));
      await Promise.all([nats.stop(), git.stop()]);
    }
  },
);
