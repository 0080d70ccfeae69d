// Offline autonomy and event durability, with the whole agent (runAgentCli) against a
// real kube-apiserver and a real nats-server: the hub goes away, the agent restarts,
// NATS has an outage; desired state keeps being enforced and no event is lost.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, parseEvent } from '@flotilla/common';
import type { DriftDetectedData, EventKind, FlotillaEvent, KubeObject } from '@flotilla/common';
import { runAgentCli } from './cli.js';
import { KubeClient, loadKubeConfig } from './kube/client.js';
import { configMap, makeState } from './testing/desired.js';
import { requireEnv, startCluster, startNats } from '@flotilla/test-env';
import type { TestCluster, TestNats } from '@flotilla/test-env';
import { ScriptedHub, sendState, until, within } from './testing/scripted-hub.js';

const skip = await requireEnv(['cluster', 'nats']);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

describe(
  'offline autonomy and event buffering (real kube-apiserver, nats-server)',
  { skip },
  () => {
    let api: TestCluster;
    let nats: TestNats;
    let kube: KubeClient;
    let nc: NatsConnection;
    let jsm: JetStreamManager;
    const hubs: ScriptedHub[] = [];
    const agents: { controller: AbortController; exit: Promise<number> }[] = [];
    before(async () => {
      // Each server is kept as soon as it runs, so after() stops it even if another failed.
      await Promise.all([
        startCluster().then((c) => (api = c)),
        startNats().then((n) => (nats = n)),
      ]);
      kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
      nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
      jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: EVENTS_STREAM, subjects: [`${EVENTS_SUBJECT_PREFIX}.>`] });
    });
    after(async () => {
      // Every step runs even when one before it failed or hangs: nothing outlives the file.
      for (const a of agents) a.controller.abort();
      const stopped = within(Promise.all(agents.map((a) => a.exit)), 'stopping the agents');
      await stopped.catch(() => undefined);
      for (const h of hubs) h.server.forceShutdown();
      await nc?.close().catch(() => undefined);
      kube?.close();
      await Promise.all([api?.stop(), nats?.stop({ removeStore: true })]);
      await stopped;
    });

    const objects: KubeObject[] = [
      { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'app' } },
      configMap('app', 'one', { v: '1' }),
      configMap('app', 'two', { v: '2' }),
    ];
    const state = makeState('west', 'rev1', [{ name: 'app', objects }]);
    const cmRef = (name: string) => ({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: 'app',
      name,
    });
    const editBy = (name: string, value: string): Promise<unknown> =>
      kube.request({
        method: 'PATCH',
        path: `/api/v1/namespaces/app/configmaps/${name}`,
        query: { fieldManager: 'kubectl-edit' },
        contentType: 'application/merge-patch+json',
        body: { data: { v: value } },
      });

    const startAgent = async (
      hubPort: number,
    ): Promise<{ controller: AbortController; exit: Promise<number> }> => {
      const tokenFile = join(tmpdir(), `flotilla-offline-token-${process.pid}`);
      await writeFile(tokenFile, 'tok3n\n');
      const out = new PassThrough();
      out.resume();
      const controller = new AbortController();
      const args = [
        '--cluster',
        'west',
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
      const a = {
        controller,
        exit: runAgentCli(args, { env: {}, signal: controller.signal, stdout: out, stderr: out }),
      };
      agents.push(a);
      return a;
    };
    const stopAgent = async (a: {
      controller: AbortController;
      exit: Promise<number>;
    }): Promise<void> => {
      a.controller.abort();
      assert.equal(await a.exit, 0);
    };
    const hubServing = async (port = 0): Promise<ScriptedHub> => {
      const hub = new ScriptedHub();
      hubs.push(hub);
      let generation = 0;
      hub.onStream = (call) => {
        call.write({
          welcome: { session: `s${hubs.length}`, heartbeatIntervalMs: 5_000, protocolVersion: 1 },
        });
        sendState(call, state, ++generation);
      };
      await hub.start(port);
      return hub;
    };
    const storedEvents = async (): Promise<{ kind: EventKind; event: FlotillaEvent }[]> => {
      const n = (await jsm.streams.info(EVENTS_STREAM)).state.last_seq;
      const out: { kind: EventKind; event: FlotillaEvent }[] = [];
      for (let seq = 1; seq <= n; seq++) {
        const m = await jsm.streams.getMessage(EVENTS_STREAM, { seq }).catch(() => null);
        if (m) out.push(parseEvent(m.data));
      }
      return out;
    };

    it('state-kept-across-restart-drift-healed-while-the-hub-is-down-and-no-rewrites-after-reconnect', async () => {
      const hub = await hubServing();
      const first = await startAgent(hub.port);
      await until(() => hub.streams[0]?.received.find((m) => m.ack), 'first ack', 30_000);
      await stopAgent(first);
      hub.server.forceShutdown();

      // Restart with the hub unreachable: nothing listens on this port yet.
      const port = await freePort();
      const second = await startAgent(port);
      await kube.delete(cmRef('one'));
      await until(
        () => kube.get(cmRef('one')),
        'deleted object re-created from the stored state',
        20_000,
      );
      const before = await kube.get(cmRef('two'));
      await editBy('two', 'changed');
      await until(
        async () => (await kube.get(cmRef('two')))?.data?.['v' as never] === '2',
        'drift healed with the hub down',
        20_000,
      );
      const healed = await kube.get(cmRef('two'));
      assert.notEqual(healed?.metadata.resourceVersion, before?.metadata.resourceVersion);

      // The hub comes back and (having forgotten everything) sends the same state again.
      const versions = await Promise.all(
        ['one', 'two'].map(async (n) => (await kube.get(cmRef(n)))?.metadata.resourceVersion),
      );
      const back = await hubServing(port);
      const ack = await until(
        () => back.streams[0]?.received.find((m) => m.ack)?.ack,
        'ack after reconnect',
        30_000,
      );
      assert.equal(back.streams[0]?.received[0]?.hello?.appliedDigest, state.digest);
      assert.deepEqual([ack.result, ack.objectsApplied], ['ACK_RESULT_APPLIED', 3]);
      const after = await Promise.all(
        ['one', 'two'].map(async (n) => (await kube.get(cmRef(n)))?.metadata.resourceVersion),
      );
      assert.deepEqual(after, versions, 'unchanged objects were not rewritten');
      const kinds = (await storedEvents()).map((e) => e.kind);
      assert.ok(
        kinds.includes('drift-detected') && kinds.includes('drift-corrected'),
        kinds.join(','),
      );
      await stopAgent(second);
    });

    it('events-are-buffered-while-nats-is-down-and-delivered-exactly-once-after', async () => {
      const hub = await hubServing();
      const agent = await startAgent(hub.port);
      await until(() => hub.streams[0]?.received.find((m) => m.ack), 'ack', 30_000);
      const seen = (await storedEvents()).length;
      await nats.stop();
      // Three drifts while NATS is down: three drift-detected and three drift-corrected events.
      for (const [name, value] of [
        ['one', 'x'],
        ['two', 'y'],
        ['one', 'z'],
      ] as const) {
        await editBy(name, value);
        await until(
          async () => (await kube.get(cmRef(name)))?.data?.['v' as never] !== value,
          `heal of ${name}`,
          20_000,
        );
      }
      await nats.start();
      const events = await until(
        async () => {
          const all = (await storedEvents().catch(() => [])).slice(seen);
          return all.filter((e) => e.kind === 'drift-corrected').length >= 3 && all;
        },
        'buffered events delivered',
        30_000,
      );
      const drifts = events.filter((e) => e.kind === 'drift-detected');
      assert.deepEqual(
        drifts.map((e) => (e.event.data as DriftDetectedData).object.name),
        ['one', 'two', 'one'],
      );
      assert.equal(events.filter((e) => e.kind === 'drift-corrected').length, 3);
      const ids = events.map((e) => e.event.id);
      assert.equal(new Set(ids).size, ids.length, 'no event stored twice');
      await stopAgent(agent);
    });
  },
);
