// Render failures through the real hub with a real nats-server: the clusters are Failed
// with the reason, one alert per bundle and revision reaches a local webhook receiver
// (not one per render of that revision), and a restarted hub shows the failure from its
// KV record at once and does not alert it again. Source and renderer are fakes of our own
// interfaces (FleetSource, HubRenderer): what is under test starts after them.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import { bundleDigest, desiredStateDigest, silentLogger } from '@flotilla/common';
import { HubApp, compileHubConfig } from '@flotilla/hub';
import type { FleetSnapshot, FleetSource, HubRenderer, RenderFailure } from '@flotilla/hub';
import { requireEnv, startNats, waitFor } from '@flotilla/test-env';

const skip = await requireEnv(['nats']);
const CLUSTERS = ['edge-1', 'edge-2', 'lab-1'];
const rev = (n: number): string => String(n).repeat(40);
const BROKEN_WEB = 'bundles/web/manifests/cm.yaml:5: YAML: bad indentation of a mapping entry';
const BROKEN_API = 'bundles/api/bundle.yaml:9: spec.targets[0].patches[0]: patch matches no object';

/** A source whose test pushes each revision, as polls and webhooks would. */
class PushedSource implements FleetSource {
  readonly name = 'fleet';
  private listener: ((s: FleetSnapshot) => void | Promise<void>) | undefined;
  onSnapshot(l: (s: FleetSnapshot) => void | Promise<void>): () => void {
    this.listener = l;
    return () => (this.listener = undefined);
  }
  start(): void {}
  async stop(): Promise<void> {}
  status() {
    return { lastFetchedRevision: '', lastFetchAt: undefined, lastError: undefined };
  }
  async push(revision: string): Promise<void> {
    await this.listener?.({ source: 'fleet', revision });
  }
}

function state(cluster: string, revision: string): DesiredState {
  const b = { name: 'app', drift: { mode: 'enforce' as const, ignore: [] }, forceConflicts: true };
  const bundle = { ...b, objects: [], digest: bundleDigest({ ...b, objects: [] }) };
  const bundles = [bundle as BundleDesiredState];
  return { cluster, revision, digest: desiredStateDigest(cluster, bundles), bundles };
}

// rev(2) breaks web on the edges (rev(1)'s rendering still served); rev(3) also breaks
// api on lab-1 (nothing served); rev(5) breaks lab-1's cluster file; others render.
const renderer: HubRenderer = {
  render: async ({ revision }) => {
    const failures = new Map<string, RenderFailure[]>();
    if (revision === rev(2) || revision === rev(3))
      for (const c of ['edge-1', 'edge-2'])
        failures.set(c, [{ bundle: 'web', messages: [BROKEN_WEB], servingRevision: rev(1) }]);
    if (revision === rev(3))
      failures.set('lab-1', [{ bundle: 'api', messages: [BROKEN_API], servingRevision: '' }]);
    if (revision === rev(5))
      failures.set('lab-1', [
        { bundle: '', messages: ['clusters/lab-1.yaml:2: bad'], servingRevision: rev(4) },
      ]);
    return {
      revision,
      clusters: new Map(CLUSTERS.map((c) => [c, state(c, revision)])),
      labels: new Map(CLUSTERS.map((c) => [c, { env: c.startsWith('lab') ? 'lab' : 'prod' }])),
      errors: [],
      failures,
    };
  },
};

type Alert = {
  kind: string;
  bundle: string;
  revision: string;
  clusters?: string[];
  message: string;
};
type Cluster = {
  name: string;
  state: string;
  message: string;
  renderFailures: { bundle: string; revision: string; servingRevision: string }[];
};

test(
  'render-failures-show-persist-across-a-restart-and-alert-once-per-bundle-and-revision',
  { skip, timeout: 120_000 },
  async () => {
    const nats = await startNats();
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-render-failures-'));
    const alerts: Alert[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        alerts.push(JSON.parse(body) as Alert);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const hookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    const cfg = compileHubConfig(
      {
        sources: [{ name: 'fleet', url: 'https://git.invalid/fleet.git' }],
        grpc: { listen: '127.0.0.1:0' },
        http: { listen: '127.0.0.1:0' },
        nats: { url: nats.url },
        insecure: true,
        hubId: 'render-it',
        // Render alerts only: the clusters' agents never connect here.
        notify: { webhooks: [{ name: 'ops', url: hookUrl, format: 'json', events: ['render'] }] },
      },
      'hub.yaml',
      { defaultCacheDir: join(dir, 'cache') },
    );
    const start = async () => {
      const source = new PushedSource();
      const hub = new HubApp(cfg, {
        createSource: async () => source,
        renderer,
        logger: silentLogger(),
      });
      await hub.start();
      const get = async <T>(path: string): Promise<T> =>
        (await (await fetch(`http://127.0.0.1:${hub.httpPort}${path}`)).json()) as T;
      return { hub, source, get };
    };
    const renderAlerts = () => alerts.filter((a) => a.kind === 'render');
    let h = await start();
    try {
      await h.source.push(rev(1));
      await h.source.push(rev(2));
      const edge = await h.get<Cluster>('/api/v1/clusters/edge-1');
      assert.equal(edge.state, 'Pending', 'an agent that never connected stays Pending');
      assert.deepEqual(edge.renderFailures, [
        { bundle: 'web', revision: rev(2), message: BROKEN_WEB, servingRevision: rev(1) },
      ]);
      const { deployments } = await h.get<{
        deployments: { cluster: string; state: string; reason: string }[];
      }>('/api/v1/deployments?bundle=web');
      assert.deepEqual(
        deployments.map((d) => [d.cluster, d.state, d.reason]),
        ['edge-1', 'edge-2'].map((c) => [
          c,
          'Failed',
          `serving 111111111111; 222222222222 failed to render: ${BROKEN_WEB}`,
        ]),
      );
      await waitFor(() => renderAlerts().length === 1, { what: 'the render alert for web' });
      assert.deepEqual(
        renderAlerts().map((a) => [a.bundle, a.revision, a.clusters, a.message]),
        [['web', rev(2), ['edge-1', 'edge-2'], BROKEN_WEB]],
      );

      // rev(2) handed out again (a webhook after a poll): no second alert. The alerts of
      // rev(3) come after it on the same queue, so once they are in, a duplicate would be.
      await h.source.push(rev(2));
      await h.source.push(rev(3));
      await waitFor(() => renderAlerts().length >= 3, { what: "rev(3)'s render alerts" });
      assert.deepEqual(
        renderAlerts().map((a) => [a.bundle, a.revision.slice(0, 1), a.clusters]),
        [
          ['web', '2', ['edge-1', 'edge-2']],
          ['web', '3', ['edge-1', 'edge-2']],
          ['api', '3', ['lab-1']],
        ],
      );

      // A restarted hub shows the failures from KV before it renders anything.
      await h.hub.stop(1_000);
      h = await start();
      const lab = await h.get<Cluster>('/api/v1/clusters/lab-1');
      assert.deepEqual(
        lab.renderFailures.map((f) => [f.bundle, f.revision, f.servingRevision]),
        [['api', rev(3), '']],
      );
      const api = await h.get<{ deployments: { state: string; reason: string }[] }>(
        '/api/v1/deployments?bundle=api',
      );
      assert.equal(api.deployments[0]?.state, 'Failed');
      // It renders rev(3) again (a source hands out its head at start): nothing re-alerted,
      // which rev(5)'s alert, queued after anything rev(3) could raise, shows. rev(4) fixes.
      await h.source.push(rev(3));
      await h.source.push(rev(4));
      const fixed = await h.get<{ clusters: Cluster[] }>('/api/v1/clusters');
      assert.deepEqual(
        fixed.clusters.map((c) => [c.name, c.renderFailures.length]),
        CLUSTERS.map((c) => [c, 0]),
      );
      await h.source.push(rev(5));
      await waitFor(() => renderAlerts().length >= 4, { what: "rev(5)'s render alert" });
      assert.deepEqual(
        renderAlerts()
          .slice(3)
          .map((a) => [a.bundle, a.revision.slice(0, 1), a.clusters]),
        [['', '5', ['lab-1']]],
      );
    } finally {
      await h.hub.stop(1_000);
      await new Promise<void>((r) => receiver.close(() => r()));
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);
