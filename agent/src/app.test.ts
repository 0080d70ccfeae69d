// The whole agent (runAgentCli) against a real kube-apiserver, a real nats-server and a
// scripted hub: apply → ack → event, then a restart that enforces the stored state
// while the hub is away, then a state held by the mass-prune guard.
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { after, afterEach, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect as natsConnect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, eventSubject, parseEvent } from '@flotilla/common';
import type { AppliedData } from '@flotilla/common';
import { runAgentCli } from './cli.js';
import { KubeClient, loadKubeConfig } from './kube/client.js';
import { configMap, makeState } from './testing/desired.js';
import { requireEnv, startCluster, startNats } from '@flotilla/test-env';
import type { TestCluster, TestNats } from '@flotilla/test-env';
import { ScriptedHub, sendState, until, within } from './testing/scripted-hub.js';

const skip = await requireEnv(['cluster', 'nats']);

describe('agent end to end', { skip }, () => {
  let api: TestCluster;
  let nats: TestNats;
  let kube: KubeClient;
  const hub = new ScriptedHub();
  // What a test starts is stopped after it, passed or failed: an agent left running keeps
  // dialling the hub and the test process never ends.
  const agents: { controller: AbortController; exit: Promise<number> }[] = [];
  const connections: NatsConnection[] = [];
  const connect = async (opts: { servers: string }): Promise<NatsConnection> => {
    const nc = await natsConnect(opts);
    connections.push(nc);
    return nc;
  };
  before(async () => {
    // Each server is kept as soon as it runs, so after() stops it even if another failed.
    await Promise.all([
      startCluster().then((c) => (api = c)),
      startNats().then((n) => (nats = n)),
      hub.start(),
    ]);
    kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
  });
  afterEach(async () => {
    for (const a of agents) a.controller.abort();
    await within(Promise.all(agents.splice(0).map((a) => a.exit)), 'stopping the agents');
    await Promise.all(connections.splice(0).map((nc) => nc.close()));
  });
  after(async () => {
    hub.server.forceShutdown();
    kube?.close();
    await Promise.all([api?.stop(), nats?.stop({ removeStore: true })]);
  });

  const state = makeState('east', 'rev1', [
    {
      name: 'web',
      objects: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } },
        configMap('web', 'settings', { color: 'blue' }),
      ],
    },
  ]);
  const startAgent = async (hubPort: number, controller: AbortController) => {
    const tokenFile = join(tmpdir(), `flotilla-agent-token-${process.pid}`);
    await writeFile(tokenFile, 'tok3n\n');
    const out = new PassThrough();
    out.resume();
    const args = [
      '--cluster',
      'east',
      '--hub',
      `127.0.0.1:${hubPort}`,
      '--insecure',
      '--kubeconfig',
      api.kubeconfigPath,
      '--nats',
      nats.url,
      '--token-file',
      tokenFile,
    ];
    const exit = runAgentCli(args, {
      env: {},
      signal: controller.signal,
      stdout: out,
      stderr: out,
    });
    agents.push({ controller, exit });
    return exit;
  };

  it('applies-a-desired-state-from-the-hub-acks-it-and-publishes-an-applied-event', async () => {
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: EVENTS_STREAM, subjects: [`${EVENTS_SUBJECT_PREFIX}.>`] });
    hub.streams = [];
    hub.onStream = (call) => {
      call.write({
        welcome: { session: 'sess-1', heartbeatIntervalMs: 5_000, protocolVersion: 1 },
      });
      sendState(call, state, 1);
    };
    const controller = new AbortController();
    const exit = startAgent(hub.port, controller);
    const ack = await until(() => hub.streams[0]?.received.find((m) => m.ack)?.ack, 'ack', 30_000);
    assert.deepEqual(
      [ack.result, ack.objectsApplied, ack.objectsFailed, ack.digest],
      ['ACK_RESULT_APPLIED', 2, 0, state.digest],
    );
    assert.equal(hub.streams[0]?.auth, 'Bearer tok3n');
    assert.equal(hub.streams[0]?.received[0]?.hello?.appliedDigest, '');
    const live = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: 'web',
      name: 'settings',
    });
    assert.deepEqual(live?.data, { color: 'blue' });
    // The applied event, wherever the health tracker's first event fell relative to it.
    const appliedEvent = async () => {
      for (let seq = 1; seq <= 10; seq++) {
        const m = await jsm.streams.getMessage(EVENTS_STREAM, { seq }).catch(() => null);
        if (!m) return null;
        const parsed = parseEvent(m.data);
        if (parsed.kind === 'applied') return parsed;
      }
      return null;
    };
    const { event } = await until(appliedEvent, 'applied event');
    assert.equal((event.data as AppliedData).bundles[0]?.created, 2);
    controller.abort();
    assert.equal(await exit, 0);
    await nc.close();
  });

  it('after-a-restart-the-stored-state-is-enforced-before-the-hub-answers', async () => {
    await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'web', name: 'settings' });
    hub.streams = [];
    hub.onStream = () => {}; // the hub accepts the stream but never answers
    const controller = new AbortController();
    const exit = startAgent(hub.port, controller);
    await until(
      () => kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'web', name: 'settings' }),
      'ConfigMap re-created',
      30_000,
    );
    const hello = await until(() => hub.streams[0]?.received[0]?.hello, 'hello');
    assert.deepEqual([hello.appliedDigest, hello.appliedRevision], [state.digest, 'rev1']);
    controller.abort();
    assert.equal(await exit, 0);
  });

  it('a-state-emptying-a-bundle-is-held-acked-failed-and-the-earlier-state-stays-stored', async () => {
    const settings = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'web', name: 'settings' };
    const emptied = makeState('east', 'rev2', [{ name: 'web', objects: [] }]);
    hub.streams = [];
    hub.onStream = (call) => {
      call.write({
        welcome: { session: 'sess-3', heartbeatIntervalMs: 5_000, protocolVersion: 1 },
      });
      sendState(call, emptied, 1);
    };
    let controller = new AbortController();
    let exit = startAgent(hub.port, controller);
    const ack = await until(() => hub.streams[0]?.received.find((m) => m.ack)?.ack, 'ack', 30_000);
    assert.equal(ack.result, 'ACK_RESULT_FAILED');
    assert.match(
      ack.message,
      /^mass prune held at revision rev2: bundle web has no objects at this revision but manages 2 /,
    );
    assert.ok(await kube.get(settings), 'nothing pruned');
    const nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    const msg = await until(
      () =>
        jsm.streams
          .getMessage(EVENTS_STREAM, { last_by_subj: eventSubject('east', 'apply-failed') })
          .catch(() => null),
      'apply-failed event',
    );
    const data = parseEvent(msg.data).event.data as AppliedData;
    assert.equal(data.digest, emptied.digest);
    assert.match(data.message ?? '', /mass prune held/);
    assert.match(data.bundles[0]?.failures[0] ?? '', /^mass prune held: would delete 2 of its 2/);
    await nc.close();
    controller.abort();
    assert.equal(await exit, 0);

    // The held state was not stored: a restart enforces the earlier one.
    await kube.delete(settings);
    hub.streams = [];
    hub.onStream = () => {};
    controller = new AbortController();
    exit = startAgent(hub.port, controller);
    await until(() => kube.get(settings), 'ConfigMap re-created from the earlier state', 30_000);
    const hello = await until(() => hub.streams[0]?.received[0]?.hello, 'hello');
    assert.equal(hello.appliedDigest, state.digest);
    controller.abort();
    assert.equal(await exit, 0);
  });
});
