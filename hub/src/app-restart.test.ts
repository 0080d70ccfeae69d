// A restarted hub serves the rendering it saved before, while Git and NATS are both down:
// ready at once, agents at that digest are told they are up to date, and what is degraded
// is said (GET /api/v1/hub, /readyz, the metric) until Git answers again.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { DesiredState } from '@flotilla/common';
import { durations, silentLogger, sleep } from '@flotilla/common';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { HubApp } from './app.js';
import type { FleetSnapshot, FleetSource, HubRenderer } from './app.js';
import { compileHubConfig } from './config/hub-config.js';
import { desiredState } from './stream/fixtures.js';
import type { Degradation } from './api/types.js';

/** A source that can be made unreachable, as GitSource reports it. */
class FlakySource implements FleetSource {
  readonly name = 'fleet';
  down: Date | undefined;
  private listener: ((s: FleetSnapshot) => void | Promise<void>) | undefined;
  onSnapshot(l: (s: FleetSnapshot) => void | Promise<void>): () => void {
    this.listener = l;
    return () => (this.listener = undefined);
  }
  start(): void {}
  async stop(): Promise<void> {}
  status() {
    return this.down
      ? {
          lastError: 'cannot reach https://git.example/fleet.git: connect ECONNREFUSED',
          lastErrorCode: 'UNAVAILABLE',
          lastErrorAt: new Date(),
          failingSince: this.down,
        }
      : { lastFetchedRevision: 'rev-1', lastFetchAt: new Date() };
  }
  async push(revision: string): Promise<void> {
    this.down = undefined;
    await this.listener?.({ source: 'fleet', revision });
  }
}

const renderer: HubRenderer = {
  render: async ({ revision }) => ({
    revision,
    clusters: new Map<string, DesiredState>([['edge-1', desiredState('edge-1', revision)]]),
    labels: new Map([['edge-1', { env: 'prod' }]]),
    errors: [],
  }),
};

async function until<T>(fn: () => Promise<T | undefined>, what: string): Promise<T> {
  for (let i = 0; i < 250; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('a-restarted-hub-serves-its-saved-rendering-while-git-and-nats-are-down', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-hub-restart-'));
  const cfg = compileHubConfig(
    {
      sources: [{ name: 'fleet', url: 'https://git.example/fleet.git' }],
      grpc: { listen: '127.0.0.1:0' },
      http: { listen: '127.0.0.1:0' },
      // Nothing listens there: NATS is down for both hubs.
      nats: { url: 'nats://127.0.0.1:1' },
      insecure: true,
    },
    'hub.yaml',
    { defaultCacheDir: dir },
  );
  const hubWith = (source: FlakySource) =>
    new HubApp(cfg, { createSource: async () => source, renderer, logger: silentLogger() });
  const first = new FlakySource();
  let app = hubWith(first);
  const client = () =>
    new (loadFlotillaProto().AgentStream)(
      `127.0.0.1:${app.grpcPort}`,
      credentials.createInsecure(),
    ) as AgentStreamClient;
  try {
    await app.start();
    await first.push('rev-1');
    await app.stop(1_000);

    const source = new FlakySource();
    source.down = new Date(Date.now() - 60_000);
    app = hubWith(source);
    const started = Date.now();
    await app.start();
    // Old hubs waited the status window and then the whole rollout window for NATS.
    assert.ok(
      Date.now() - started < durations.rolloutRestoreWindow,
      `start took ${Date.now() - started} ms with NATS down`,
    );
    const http = async (path: string) => {
      const res = await fetch(`http://127.0.0.1:${app.httpPort}${path}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const ready = await http('/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    assert.deepEqual(ready.body.degraded, ['git:fleet', 'nats']);
    const hub = (await http('/api/v1/hub')).body as { degraded: Degradation[] };
    assert.match(
      hub.degraded[0]?.message ?? '',
      /^Git source fleet unreachable since .*: serving revision rev-1 saved before the restart/,
    );
    assert.equal(hub.degraded[0]?.since, source.down.toISOString());
    assert.match(hub.degraded[1]?.message ?? '', /^NATS unreachable since /);
    const metrics = await (await fetch(`http://127.0.0.1:${app.httpPort}/metrics`)).text();
    assert.match(metrics, /flotilla_hub_degraded\{reason="git",source="fleet"\} 1/);
    assert.match(metrics, /flotilla_hub_degraded\{reason="nats"\} 1/);
    const sources = (await http('/api/v1/sources')).body.sources as {
      renderedRevision: string;
      restoredFrom?: string;
    }[];
    assert.equal(sources[0]?.renderedRevision, 'rev-1');
    assert.ok(sources[0]?.restoredFrom);

    // The agent runs what was saved: it is told it is up to date, nothing is re-sent.
    const applied = desiredState('edge-1', 'rev-1');
    const c = client();
    const call = c.Connect(new Metadata());
    const got: HubMessage__Output[] = [];
    call.on('data', (m: HubMessage__Output) => got.push(m));
    call.on('error', () => undefined);
    call.write({
      hello: {
        cluster: 'edge-1',
        agentVersion: 't',
        appliedDigest: applied.digest,
        appliedRevision: 'rev-1',
        protocolVersion: 1,
      },
    });
    const upToDate = await until(
      async () => got.find((m) => m.upToDate)?.upToDate ?? undefined,
      'up to date',
    );
    assert.equal(upToDate.digest, applied.digest);
    assert.equal(
      got.some((m) => m.desired),
      false,
    );
    call.cancel();
    c.close();

    // Git answers again: the render replaces the saved rendering and Git is no longer degraded.
    await source.push('rev-1');
    const after = (await http('/readyz')).body;
    assert.deepEqual(after.degraded, ['nats']);
    const again = (await http('/api/v1/sources')).body.sources as { restoredFrom?: string }[];
    assert.equal(again[0]?.restoredFrom, undefined);
  } finally {
    await app.stop(1_000);
    await rm(dir, { recursive: true, force: true });
  }
});
