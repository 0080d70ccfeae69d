// The whole hub with two Git sources: credentials and a webhook secret from the
// environment, a push webhook posted to the hub's own HTTP API, and per-source status
// in GET /api/v1/sources. Real NATS, real Git server, the production source/renderer.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger } from '@flotilla/common';
import { HubApp, compileHubConfig, realHubParts } from '@flotilla/hub';
import type { SourceStatusView } from '@flotilla/hub';
import { createWorkRepo, requireEnv, startGitServer, startNats, waitFor } from '@flotilla/test-env';

const skip = await requireEnv(['git', 'nats']);
const AUTH = { username: 'hub', password: 'hub-pa55word-secret' };
const HOOK_SECRET = 'hub-webhook-secret';

const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n`;

test(
  'a-hub-with-two-sources-fetches-on-a-webhook-and-reports-each-source-on-its-own',
  { skip, timeout: 60_000 },
  async (t) => {
    const git = await startGitServer({ auth: AUTH });
    t.after(() => git.stop());
    const nats = await startNats();
    t.after(() => nats.stop());
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-hub-src-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const url = await git.createRepo('fleet');
    const work = await createWorkRepo(url, { auth: AUTH });
    t.after(() => work.dispose());
    await work.writeFiles({ 'clusters/edge-1.yaml': cluster('edge-1') });
    const first = await work.commitAndPush('first');

    for (const [k, v] of Object.entries({
      FLT_GIT_USER: AUTH.username,
      FLT_GIT_PASS: AUTH.password,
      FLT_HOOK: HOOK_SECRET,
    }))
      process.env[k] = v;
    const auth = { usernameEnv: 'FLT_GIT_USER', passwordEnv: 'FLT_GIT_PASS' };
    const cfg = compileHubConfig(
      {
        sources: [
          {
            name: 'fleet',
            url,
            branch: 'main',
            pollInterval: '1h',
            auth,
            webhook: { secretEnv: 'FLT_HOOK' },
          },
          { name: 'releases', url, semver: '^1.0.0', pollInterval: '1h', auth },
        ],
        grpc: { listen: '127.0.0.1:0' },
        http: { listen: '127.0.0.1:0' },
        nats: { url: nats.url },
        insecure: true,
      },
      'hub.yaml',
      { defaultCacheDir: join(dir, 'cache') },
    );
    const lines: string[] = [];
    const logger = createLogger({
      name: 'hub',
      level: 'debug',
      destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }),
    });
    const hub = new HubApp(cfg, realHubParts(logger));
    await hub.start();
    t.after(() => hub.stop());
    const api = `http://127.0.0.1:${hub.httpPort}/api/v1`;
    const sources = async (): Promise<Map<string, SourceStatusView>> => {
      const body = (await (await fetch(`${api}/sources`)).json()) as {
        sources: SourceStatusView[];
      };
      return new Map(body.sources.map((s) => [s.name, s]));
    };

    const s1 = await waitFor(
      async () => {
        const s = await sources();
        return s.get('fleet')?.renderedRevision === first && s.get('releases')?.errorCode
          ? s
          : undefined;
      },
      { what: 'first render of fleet and a status for releases' },
    );
    assert.equal(s1.get('fleet')?.error, '');
    assert.equal(s1.get('fleet')?.ref, 'branch main');
    assert.equal(s1.get('releases')?.errorCode, 'NOT_FOUND');
    assert.match(
      s1.get('releases')?.error ?? '',
      /source "releases" .*no tag matches semver range "\^1\.0\.0"/,
    );
    assert.ok(s1.get('releases')?.errorAt);

    await work.writeFiles({ 'clusters/edge-2.yaml': cluster('edge-2') });
    const second = await work.commitAndPush('second');
    const body = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: url } });
    const res = await fetch(`${api}/webhooks/fleet`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'push',
        'x-hub-signature-256': `sha256=${createHmac('sha256', HOOK_SECRET).update(body).digest('hex')}`,
      },
      body,
    });
    assert.equal(res.status, 202);
    await waitFor(async () => (await sources()).get('fleet')?.renderedRevision === second, {
      what: 'render of the commit announced by the webhook',
    });
    const clusters = (await (await fetch(`${api}/clusters`)).json()) as {
      clusters: { name: string }[];
    };
    assert.deepEqual(clusters.clusters.map((c) => c.name).sort(), ['edge-1', 'edge-2']);

    const noHook = await fetch(`${api}/webhooks/releases`, {
      method: 'POST',
      headers: { 'x-github-event': 'push' },
      body,
    });
    assert.equal(noHook.status, 404, 'a source without a webhook secret has no webhook');

    const log = lines.join('');
    for (const secret of [
      AUTH.password,
      HOOK_SECRET,
      Buffer.from(`${AUTH.username}:${AUTH.password}`).toString('base64'),
    ]) {
      assert.ok(!log.includes(secret), 'a secret reached the hub log');
    }
  },
);
