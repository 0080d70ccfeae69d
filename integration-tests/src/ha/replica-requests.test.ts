// What a person or a Git host sends to one hub replica reaches the others: three hub
// replicas on a three-node NATS JetStream cluster, as real processes, following a real
// smart-HTTP Git server with an hour between polls. A signed push webhook sent to one
// replica makes every replica fetch the new commit at once; a rollout approval sent to a
// replica that does not hold the lease is done by the holder, answered to the caller, and
// recorded in the audit log once.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import {
  createWorkRepo,
  requireEnv,
  startGitServer,
  startNatsCluster,
  waitFor,
} from '@flotilla/test-env';
import { getJson, leaseHolder, startReplica, writeReplicas } from './replicas.js';
import type { Replica } from './replicas.js';

const skip = await requireEnv(['nats', 'git']);
const HUB_ID = 'requests-hub';
const SECRET = 'replica-webhook-secret';
const bundle = (message: string): Record<string, string> => ({
  'bundles/app/bundle.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: app
spec:
  source:
    path: manifests
  namespace: app
  targets:
    - clusterSelector: {}
  rollout:
    stages:
      - name: gate
        clusterNames: [edge-1]
        approval: required
`,
  'bundles/app/manifests/config.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  message: ${message}\n`,
});

type Sources = { sources: { name: string; revision: string }[] };
type Rollout = { id: string; revision: string; phase: string; stages: { approvedBy: string }[] };
const AUDIT_STREAM = 'FLOTILLA_AUDIT';

test(
  'a-webhook-and-a-rollout-action-sent-to-one-hub-replica-reach-every-replica',
  { skip, timeout: 240_000 },
  async (t) => {
    const work = await mkdtemp(join(tmpdir(), 'flotilla-replica-requests-'));
    const [nats, git] = await Promise.all([startNatsCluster(), startGitServer()]);
    const nc = await connect({ servers: nats.url.split(','), reconnectTimeWait: 250 });
    let hubs: Replica[] = [];
    try {
      const repoUrl = await git.createRepo('fleet');
      const repo = await createWorkRepo(repoUrl);
      await repo.writeFiles({
        'clusters/edge-1.yaml':
          'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge-1\n',
        ...bundle('first'),
      });
      const first = await repo.commitAndPush('first');
      const secretFile = join(work, 'webhook-secret');
      await writeFile(secretFile, SECRET, { mode: 0o600 });
      hubs = await writeReplicas({
        work,
        hubId: HUB_ID,
        natsUrls: [nats.url, nats.url, nats.url],
        lines: [
          'sources:',
          '  - name: fleet',
          `    url: ${repoUrl}`,
          // Only a webhook can explain a replica fetching within seconds.
          '    pollInterval: 1h',
          `    webhook:\n      secretFile: ${secretFile}`,
          'insecure: true',
        ],
      });
      await Promise.all(hubs.map(startReplica));
      const revision = async (h: Replica): Promise<string | undefined> =>
        (await getJson<Sources>(h, '/api/v1/sources')).sources[0]?.revision;
      for (const h of hubs)
        await waitFor(async () => (await revision(h)) === first, {
          what: `${h.replica} at the first commit`,
          timeoutMs: 30_000,
        });
      const holder = await waitFor(leaseHolder(nc, HUB_ID), {
        what: 'a lease holder',
        timeoutMs: 20_000,
      });
      const followers = hubs.filter((h) => h.replica !== holder);
      assert.equal(followers.length, 2);

      // A push, and its webhook sent to one follower only.
      await repo.writeFiles(bundle('second'));
      const second = await repo.commitAndPush('second');
      const body = JSON.stringify({
        ref: 'refs/heads/main',
        after: second,
        repository: { clone_url: repoUrl },
      });
      const sentAt = Date.now();
      const res = await fetch(`${followers[0]!.httpUrl}/api/v1/webhooks/fleet`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
        },
        body,
      });
      assert.equal(res.status, 202, await res.text());
      const fetchedMs = await Promise.all(
        hubs.map(async (h) => {
          await waitFor(async () => (await revision(h)) === second, {
            what: `${h.replica} fetching the pushed commit (webhook sent to ${followers[0]!.replica}; logs in ${work})`,
            timeoutMs: 10_000,
            intervalMs: 50,
          });
          return Date.now() - sentAt;
        }),
      );
      t.diagnostic(
        `every replica at the pushed commit ${fetchedMs.join(' / ')} ms after the webhook`,
      );

      // The push started a rollout waiting for approval; a follower is asked to approve it.
      const rollout = (h: Replica): Promise<Rollout> => getJson<Rollout>(h, '/api/v1/rollouts/app');
      const awaiting = await waitFor(
        async () => {
          const r = await rollout(followers[1]!).catch(() => undefined);
          return r?.revision === second && r.phase === 'AwaitingApproval' ? r : undefined;
        },
        {
          what: `${followers[1]!.replica} showing the rollout awaiting approval`,
          timeoutMs: 30_000,
        },
      );
      const approved = await fetch(`${followers[1]!.httpUrl}/api/v1/rollouts/app/approve`, {
        method: 'POST',
      });
      const answer = (await approved.json()) as Rollout;
      assert.equal(approved.status, 200, JSON.stringify(answer));
      assert.equal(answer.id, awaiting.id);
      assert.notEqual(answer.phase, 'AwaitingApproval');
      assert.equal(answer.stages[0]?.approvedBy, 'anonymous (insecure hub)');
      // Every replica sees the holder's decision.
      for (const h of hubs)
        await waitFor(async () => (await rollout(h)).phase !== 'AwaitingApproval', {
          what: `${h.replica} showing the approved rollout`,
          timeoutMs: 10_000,
        });

      // Recorded once, by the replica that received it: one record in the audit stream.
      const audited = async (): Promise<{ action: string; result: string }[]> => {
        const n = (await (await jetstreamManager(nc)).streams.info(AUDIT_STREAM)).state.messages;
        const out: { action: string; result: string }[] = [];
        if (n === 0) return out;
        const consumer = await jetstream(nc).consumers.get(AUDIT_STREAM);
        for await (const m of await consumer.fetch({ max_messages: n, expires: 5_000 })) {
          out.push(m.json<{ action: string; result: string }>());
          if (out.length >= n) break;
        }
        return out.filter((r) => r.action === 'rollout.approve');
      };
      await waitFor(async () => (await audited()).length > 0, {
        what: 'the approval in the audit stream',
        timeoutMs: 10_000,
      });
      await new Promise((r) => setTimeout(r, 1_000)); // a second record would be there by now
      assert.deepEqual(
        (await audited()).map((r) => r.result),
        ['ok'],
        'the approval is audited once',
      );
      const history = await getJson<{ entries: unknown[] }>(
        followers[1]!,
        '/api/v1/history?kind=audit',
      );
      assert.equal(
        JSON.stringify(history.entries).split('rollout.approve').length - 1,
        1,
        'the receiving replica shows the approval once',
      );
    } finally {
      for (const h of hubs) await h.proc?.stop();
      await nc.close().catch(() => undefined);
      await Promise.all([nats.stop(), git.stop()]);
    }
  },
);
