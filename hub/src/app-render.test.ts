// The running hub while a commit takes seconds to render: the renderer works in its own
// thread, so agent streams keep their heartbeats and queries are answered meanwhile.
// Real hub app, real renderer (sourceRenderers), real gRPC agent client and HTTP API;
// the source is a fake of our own interface.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { silentLogger, sleep } from '@flotilla/common';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { HubApp, sourceRenderers } from './app.js';
import type { FleetSource } from './app.js';
import { compileHubConfig } from './config/hub-config.js';
import type { SourceSnapshot } from './source/git-source.js';
import { bundleYaml, clusterYaml, configMap, repo } from './render/testing.js';

class FakeSource implements FleetSource<SourceSnapshot> {
  readonly name = 'fleet';
  private listener: ((s: SourceSnapshot) => void | Promise<void>) | undefined;
  onSnapshot(l: (s: SourceSnapshot) => void | Promise<void>): () => void {
    this.listener = l;
    return () => (this.listener = undefined);
  }
  start(): void {}
  async stop(): Promise<void> {}
  status() {
    return { lastFetchedRevision: 'rev', lastFetchAt: new Date(0), lastError: undefined };
  }
  async push(revision: string, files: Record<string, string>): Promise<void> {
    const tree = repo(files);
    await this.listener?.({ source: 'fleet', revision, readTree: async () => tree });
  }
}

async function until<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  what: string,
): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const fleet = (message: string): Record<string, string> => ({
  'clusters/edge-1.yaml': clusterYaml('edge-1', { env: 'prod' }),
  'bundles/app/bundle.yaml': bundleYaml(
    'app',
    '  namespace: app\n  targets:\n    - clusterSelector: {}\n',
  ),
  'bundles/app/manifests/cm.yaml': configMap('app', { message }),
});

test('agent-streams-and-queries-are-served-while-a-slow-commit-renders', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-hub-'));
  await writeFile(join(dir, 'token'), 'agent-token\n');
  const cfg = compileHubConfig(
    {
      sources: [{ name: 'fleet', url: 'https://git.example/fleet.git' }],
      grpc: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      nats: { url: 'nats://127.0.0.1:1' },
      auth: { tokenFile: join(dir, 'token') },
      insecure: true,
      // Three silent intervals (1.2 s) close a stream: far less than the render below
      // takes, far more than a busy machine keeps a thread waiting.
      heartbeatInterval: '400ms',
      // Limits raised so the slow commit is a legal one that takes seconds to parse.
      render: { maxBundleDocuments: 1_000_000 },
    },
    'hub.yaml',
    { defaultCacheDir: dir },
  );
  const source = new FakeSource();
  const renderer = sourceRenderers(silentLogger(), () => cfg);
  const app = new HubApp(cfg, {
    createSource: async () => source,
    renderer,
    logger: silentLogger(),
  });
  await app.start();
  const client = new (loadFlotillaProto().AgentStream)(
    `127.0.0.1:${app.grpcPort}`,
    credentials.createInsecure(),
  ) as AgentStreamClient;
  let beat: NodeJS.Timeout | undefined;
  try {
    await source.push('rev-1', fleet('one'));
    const md = new Metadata();
    md.set('authorization', 'Bearer agent-token');
    const call = client.Connect(md);
    const got: HubMessage__Output[] = [];
    call.on('data', (m: HubMessage__Output) => got.push(m));
    let ended: string | undefined;
    call.on('error', (e: ServiceError) => (ended = e.message));
    call.on('end', () => (ended ??= 'end'));
    call.write({
      hello: {
        cluster: 'edge-1',
        agentVersion: 't',
        appliedDigest: '',
        appliedRevision: '',
        protocolVersion: 1,
      },
    });
    beat = setInterval(() => call.write({ heartbeat: { sentAtMs: Date.now() } }), 50);
    await until(
      () => (got.some((m) => m.desired?.revision === 'rev-1') ? true : undefined),
      'rev-1',
    );

    // 400,000 empty documents: seconds of parsing, plus a change the agent must receive.
    const slow = { ...fleet('two'), 'bundles/app/manifests/empty.yaml': '---\n'.repeat(400_000) };
    let rendered = false;
    const rendering = source.push('rev-2', slow).then(() => (rendered = true));
    const heartbeatsBefore = got.filter((m) => m.heartbeat).length;
    let answeredDuringRender = 0;
    while (!rendered) {
      const res = await fetch(`http://127.0.0.1:${app.httpPort}/api/v1/clusters/edge-1`);
      const body = (await res.json()) as { connected?: boolean };
      assert.equal(res.status, 200);
      assert.equal(
        body.connected,
        true,
        `the agent stream stays connected (ended: ${ended}, rendered: ${rendered})`,
      );
      if (!rendered) answeredDuringRender++;
    }
    const heartbeatsDuring = got.filter((m) => m.heartbeat).length - heartbeatsBefore;
    await rendering;
    assert.ok(answeredDuringRender > 0, 'queries are answered before the render finishes');
    assert.ok(heartbeatsDuring > 0, 'the hub kept sending heartbeats while rendering');

    // The same stream, never dropped, delivers the new revision.
    await until(
      () => (got.some((m) => m.desired?.revision === 'rev-2') ? true : undefined),
      'rev-2',
    );
    assert.equal(ended, undefined, 'the agent stream stayed connected');
    assert.equal(got.filter((m) => m.welcome).length, 1, 'one session from start to end');
  } finally {
    clearInterval(beat);
    client.close();
    await app.stop(1_000);
    await rm(dir, { recursive: true, force: true });
  }
});
