// The hub in-process with a real nats-server and a real gRPC agent stream: reported
// capabilities reach the renderer, a change re-renders and streams the new state, and a
// restarted hub renders with the stored capabilities before any agent reconnects.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { ClusterCapabilities, DesiredState } from '@flotilla/common';
import { silentLogger, sleep } from '@flotilla/common';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { requireEnv, startNats } from '@flotilla/test-env';
import { HubApp } from '../app.js';
import type { FleetSnapshot, FleetSource, HubRenderer } from '../app.js';
import { compileHubConfig } from '../config/hub-config.js';
import type { HubConfig } from '../config/hub-config.js';
import { configMap, desiredState } from '../stream/fixtures.js';

const skip = await requireEnv(['nats']);

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

// Renders what a chart branching on .Capabilities would: a "monitor" object only where
// monitoring.coreos.com/v1 is served. Records the capabilities of every render.
function capabilityRenderer(seen: (ClusterCapabilities | undefined)[]): HubRenderer {
  return {
    render: async ({ revision }, inputs) => {
      const caps = inputs.capabilities?.get('edge-1');
      seen.push(caps);
      const objects = [configMap('app')];
      if (caps?.apiVersions.includes('monitoring.coreos.com/v1'))
        objects.push(configMap('monitor'));
      const clusters = new Map<string, DesiredState>([
        ['edge-1', desiredState('edge-1', revision, objects)],
      ]);
      return { revision, clusters, labels: new Map([['edge-1', {}]]), errors: [] };
    },
  };
}

async function until<T>(
  fn: () => T | undefined | Promise<T | undefined>,
  what: string,
): Promise<T> {
  for (let i = 0; i < 500; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await sleep(20);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const BASE = ['v1', 'v1/ConfigMap', 'apps/v1', 'apps/v1/Deployment'];
const MONITORING = ['monitoring.coreos.com/v1', 'monitoring.coreos.com/v1/ServiceMonitor'];

test(
  'capability-reports-re-render-stream-the-new-state-and-survive-a-hub-restart',
  { skip },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-caps-'));
    const nats = await startNats();
    await writeFile(join(dir, 'token'), 'agent-token\n');
    const cfg: HubConfig = compileHubConfig(
      {
        sources: [{ name: 'fleet', url: 'https://git.example/fleet.git' }],
        grpc: { listen: '127.0.0.1:0' },
        http: { listen: '127.0.0.1:0' },
        nats: { url: nats.url },
        auth: { tokenFile: join(dir, 'token') },
        insecure: true,
      },
      'hub.yaml',
      { defaultCacheDir: dir },
    );
    const seen: (ClusterCapabilities | undefined)[] = [];
    const source = new FakeSource();
    let app = new HubApp(cfg, {
      createSource: async () => source,
      renderer: capabilityRenderer(seen),
      logger: silentLogger(),
    });
    const stream = loadFlotillaProto().AgentStream;
    let client: AgentStreamClient | undefined;
    try {
      await app.start();
      await source.push('rev-1');
      assert.equal(seen.at(-1), undefined, 'nothing reported yet');

      client = new stream(
        `127.0.0.1:${app.grpcPort}`,
        credentials.createInsecure(),
      ) as AgentStreamClient;
      const md = new Metadata();
      md.set('authorization', 'Bearer agent-token');
      const call = client.Connect(md);
      const got: HubMessage__Output[] = [];
      call.on('data', (m: HubMessage__Output) => got.push(m));
      call.on('error', () => undefined);
      call.write({
        hello: {
          cluster: 'edge-1',
          agentVersion: 't',
          appliedDigest: '',
          appliedRevision: '',
          protocolVersion: 1,
          capabilities: { kubeVersion: 'v1.35.4', apiVersions: BASE },
        },
      });
      await until(() => (seen.at(-1)?.kubeVersion === 'v1.35.4' ? true : undefined), 're-render');
      const first = await until(() => got.find((m) => m.desired)?.desired ?? undefined, 'a state');

      // The ServiceMonitor CRD gets installed: the agent reports, the hub re-renders and sends.
      call.write({
        capabilities: { kubeVersion: 'v1.35.4', apiVersions: [...BASE, ...MONITORING] },
      });
      const second = await until(
        () => got.find((m) => m.desired && m.desired.digest !== first.digest)?.desired ?? undefined,
        'the re-rendered state',
      );
      assert.ok(second.generation > first.generation);
      assert.equal(second.revision, 'rev-1', 'same commit, new content');
      const res = await fetch(
        `http://127.0.0.1:${app.httpPort}/api/v1/clusters/edge-1/capabilities`,
      );
      const body = (await res.json()) as {
        reported: { kubeVersion: string; apiVersions: string[] };
        default: { kubeVersion: string };
      };
      assert.equal(body.reported.kubeVersion, 'v1.35.4');
      assert.ok(body.reported.apiVersions.includes('monitoring.coreos.com/v1/ServiceMonitor'));
      assert.equal(body.default.kubeVersion, 'v1.35.0');
      call.end();
      client.close();
      client = undefined;
      await app.stop(1_000);

      // A restarted hub renders its first snapshot with the stored report, not the default.
      seen.length = 0;
      app = new HubApp(cfg, {
        createSource: async () => source,
        renderer: capabilityRenderer(seen),
        logger: silentLogger(),
      });
      await app.start();
      await source.push('rev-1');
      assert.ok(seen[0]?.apiVersions.includes('monitoring.coreos.com/v1'));
    } finally {
      client?.close();
      await app.stop(1_000);
      await nats.stop({ kill: true, removeStore: true });
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a-render-begun-before-an-agents-report-does-not-send-it-a-state-for-other-capabilities',
  { skip },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-caps-'));
    const nats = await startNats();
    await writeFile(join(dir, 'token'), 'agent-token\n');
    const cfg: HubConfig = compileHubConfig(
      {
        sources: [{ name: 'fleet', url: 'https://git.example/fleet.git' }],
        grpc: { listen: '127.0.0.1:0' },
        http: { listen: '127.0.0.1:0' },
        nats: { url: nats.url },
        auth: { tokenFile: join(dir, 'token') },
        insecure: true,
      },
      'hub.yaml',
      { defaultCacheDir: dir },
    );
    // Each render waits for its gate: the test decides the order they finish in.
    const seen: (ClusterCapabilities | undefined)[] = [];
    const gates: (() => void)[] = [];
    const inner = capabilityRenderer(seen);
    const renderer: HubRenderer = {
      render: async (snap, inputs) => {
        const out = await inner.render(snap, inputs);
        await new Promise<void>((resolve) => gates.push(resolve));
        return out;
      },
    };
    const source = new FakeSource();
    const app = new HubApp(cfg, {
      createSource: async () => source,
      renderer,
      logger: silentLogger(),
    });
    let client: AgentStreamClient | undefined;
    try {
      await app.start();
      // The first render begins before any agent has reported.
      const firstRender = source.push('rev-1');
      await until(() => (gates.length === 1 ? true : undefined), 'the first render');
      client = new (loadFlotillaProto().AgentStream)(
        `127.0.0.1:${app.grpcPort}`,
        credentials.createInsecure(),
      ) as AgentStreamClient;
      const md = new Metadata();
      md.set('authorization', 'Bearer agent-token');
      const call = client.Connect(md);
      const got: HubMessage__Output[] = [];
      call.on('data', (m: HubMessage__Output) => got.push(m));
      call.on('error', () => undefined);
      call.write({
        hello: {
          cluster: 'edge-1',
          agentVersion: 't',
          appliedDigest: '',
          appliedRevision: '',
          protocolVersion: 1,
          capabilities: { kubeVersion: 'v1.35.4', apiVersions: [...BASE, ...MONITORING] },
        },
      });
      // The report causes a re-render (it waits at its gate too).
      await until(() => (gates.length === 2 ? true : undefined), 'the re-render');
      assert.equal(seen[1]?.kubeVersion, 'v1.35.4');
      // The first render ends now, after the report, with the default capabilities.
      gates[0]?.();
      await firstRender;
      await sleep(200);
      assert.deepEqual(
        got.map((m) => m.kind),
        ['welcome'],
        'no state rendered before the report is sent',
      );
      gates[1]?.();
      const first = await until(() => got.find((m) => m.desired)?.desired ?? undefined, 'a state');
      const withMonitor = desiredState('edge-1', 'rev-1', [configMap('app'), configMap('monitor')]);
      assert.equal(first.digest, withMonitor.digest, 'the first state is the one for the report');
      call.end();
    } finally {
      for (const g of gates) g();
      client?.close();
      await app.stop(1_000);
      await nats.stop({ kill: true, removeStore: true });
      await rm(dir, { recursive: true, force: true });
    }
  },
);
