// The whole hub in-process: fake source and renderer (our interfaces), real gRPC
// agent client, real HTTP, and a real nats-server when one is installed.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import type { DesiredState } from '@flotilla/common';
import { silentLogger, sleep } from '@flotilla/common';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { HubApp } from './app.js';
import type { FleetSnapshot, FleetSource, HubRenderer } from './app.js';
import { compileHubConfig } from './config/hub-config.js';
import { desiredState } from './stream/fixtures.js';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';

class FakeSource implements FleetSource {
  readonly name = 'fleet';
  private listener: ((s: FleetSnapshot) => void | Promise<void>) | undefined;
  onSnapshot(l: (s: FleetSnapshot) => void | Promise<void>): () => void {
    this.listener = l;
    return () => (this.listener = undefined);
  }
  start(): void {}
  async stop(): Promise<void> {}
  status() {
    return { lastFetchedRevision: 'rev', lastFetchAt: new Date(0), lastError: undefined };
  }
  async push(revision: string): Promise<void> {
    await this.listener?.({ source: 'fleet', revision });
  }
}

const renderer: HubRenderer = {
  render: async ({ revision }) => {
    if (revision === 'bad') throw new Error('bundles/app/bundle.yaml:3: boom');
    const clusters = new Map<string, DesiredState>([['edge-1', desiredState('edge-1', revision)]]);
    return { revision, clusters, labels: new Map([['edge-1', { env: 'prod' }]]), errors: [] };
  },
};

async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('hub-serves-desired-state-to-an-agent-and-reports-it-ready', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-hub-'));
  let nats: TestNats | undefined;
  if (!(await requireEnv(['nats']))) nats = await startNats();
  else t.diagnostic('nats-server not installed: running without NATS');
  await writeFile(join(dir, 'token'), 'agent-token\n');
  const cfg = compileHubConfig(
    {
      sources: [{ name: 'fleet', url: 'https://git.example/fleet.git' }],
      grpc: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      nats: { url: nats?.url ?? 'nats://127.0.0.1:1' },
      auth: { tokenFile: join(dir, 'token') },
      // The shared-token path of --insecure; per-cluster mTLS is tested in identity/ and integration-tests/src/identity.
      insecure: true,
    },
    'hub.yaml',
    { defaultCacheDir: dir },
  );
  const source = new FakeSource();
  const app = new HubApp(cfg, {
    createSource: async () => source,
    renderer,
    logger: silentLogger(),
  });
  await app.start();
  const http = async (path: string) => {
    const res = await fetch(`http://127.0.0.1:${app.httpPort}${path}`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const client = new (loadFlotillaProto().AgentStream)(
    `127.0.0.1:${app.grpcPort}`,
    credentials.createInsecure(),
  ) as AgentStreamClient;
  try {
    assert.equal((await http('/readyz')).status, 503, 'not ready before the first render');
    await source.push('rev-1');
    if (nats)
      await until(async () => ((await http('/readyz')).status === 200 ? true : undefined), 'ready');

    const md = new Metadata();
    md.set('authorization', 'Bearer agent-token');
    const call = client.Connect(md);
    const got: HubMessage__Output[] = [];
    call.on('data', (m: HubMessage__Output) => got.push(m));
    const ended = new Promise<ServiceError | undefined>((r) => {
      call.on('error', (e: ServiceError) => r(e));
      call.on('end', () => r(undefined));
    });
    call.write({
      hello: {
        cluster: 'edge-1',
        agentVersion: 't',
        appliedDigest: '',
        appliedRevision: '',
        protocolVersion: 1,
      },
    });
    const chunk = await until(
      async () => got.find((m) => m.desired)?.desired ?? undefined,
      'desired state',
    );
    assert.equal((await http('/api/v1/clusters/edge-1')).body.state, 'Progressing');
    call.write({
      ack: {
        generation: chunk.generation,
        digest: chunk.digest,
        revision: chunk.revision,
        result: 'ACK_RESULT_APPLIED',
        message: '',
        objectsApplied: 1,
        objectsFailed: 0,
      },
    });
    await until(
      async () =>
        (await http('/api/v1/clusters/edge-1')).body.state === 'Ready' ? true : undefined,
      'Ready',
    );

    // A commit that fails to render leaves the last good state in place, and says so:
    // the cluster is not Ready at a commit it cannot get.
    await source.push('bad');
    const sources = (await http('/api/v1/sources')).body.sources as {
      renderedRevision: string;
      error: string;
    }[];
    assert.equal(sources[0]?.renderedRevision, 'rev-1');
    assert.match(sources[0]?.error ?? '', /boom/);
    const list = (await http('/api/v1/clusters?selector=env=prod')).body.clusters as {
      name: string;
      state: string;
      message: string;
      desiredRevision: string;
    }[];
    assert.deepEqual(
      list.map((c) => [c.name, c.state, c.desiredRevision]),
      [['edge-1', 'Failed', 'rev-1']],
    );
    assert.match(list[0]?.message ?? '', /^serving rev-1; bad failed to render: .*boom/);

    await app.stop(1_000);
    assert.equal(app.state, 'stopped');
    const err = await ended;
    assert.equal(err?.code, 14, 'agents are told the hub is going away (UNAVAILABLE)');
  } finally {
    client.close();
    await app.stop(1_000);
    await nats?.stop({ kill: true, removeStore: true });
    await rm(dir, { recursive: true, force: true });
  }
});
