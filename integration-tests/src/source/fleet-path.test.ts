// A fleet kept in a subdirectory of a larger repository (a monorepo), followed by a hub
// source with `path`: the hub renders only that subtree, a commit that changes nothing
// under it is not rendered, and a commit that removes it is a source error naming the
// path and the commit while the last good desired states keep being served. Real Git
// server, real NATS, the production source and renderer.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { HubApp, compileHubConfig, realHubParts } from '@flotilla/hub';
import type { SourceStatusView } from '@flotilla/hub';
import { createWorkRepo, requireEnv, startGitServer, startNats, waitFor } from '@flotilla/test-env';

const skip = await requireEnv(['git', 'nats']);
const FLEET = 'deploy/fleet';

const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n`;
const bundle = (name: string, source = ''): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  namespace: apps\n${source}  targets:\n    - clusterSelector: {}\n`;
const configMap = (color: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  color: ${color}\n`;

interface ClusterView {
  name: string;
  desiredRevision: string;
  desiredDigest: string;
}

test(
  'a-source-with-path-renders-only-that-subdirectory-and-a-commit-outside-it-changes-no-digest',
  { skip, timeout: 60_000 },
  async (t) => {
    const git = await startGitServer();
    t.after(() => git.stop());
    const nats = await startNats();
    t.after(() => nats.stop());
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-fleet-path-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const url = await git.createRepo('mono');
    const work = await createWorkRepo(url);
    t.after(() => work.dispose());
    await work.writeFiles({
      'src/main.go': 'package main\n',
      // A fleet at the root as well: the hub must not see it.
      'clusters/decoy.yaml': cluster('decoy'),
      'deploy/shared/secret.yaml': configMap('outside'),
      [`${FLEET}/clusters/edge-1.yaml`]: cluster('edge-1'),
      [`${FLEET}/bundles/web/bundle.yaml`]: bundle('web'),
      [`${FLEET}/bundles/web/manifests/cm.yaml`]: configMap('blue'),
      // Reaches outside the fleet's root: a render error, never the file's content.
      [`${FLEET}/bundles/escape/bundle.yaml`]: bundle(
        'escape',
        '  source: { path: ../../../shared }\n',
      ),
    });
    const first = await work.commitAndPush('fleet in a subdirectory');

    const cfg = compileHubConfig(
      {
        sources: [
          { name: 'mono', url, path: `${FLEET}/`, pollInterval: '200ms', pollJitter: 0.05 },
        ],
        grpc: { listen: '127.0.0.1:0' },
        http: { listen: '127.0.0.1:0' },
        nats: { url: nats.url },
        insecure: true,
      },
      'hub.yaml',
      { defaultCacheDir: join(dir, 'cache') },
    );
    assert.equal(cfg.sources[0]?.path, FLEET);
    const hub = new HubApp(cfg, realHubParts(silentLogger()));
    await hub.start();
    t.after(() => hub.stop());
    const api = `http://127.0.0.1:${hub.httpPort}/api/v1`;
    const source = async (): Promise<SourceStatusView> => {
      const body = (await (await fetch(`${api}/sources`)).json()) as {
        sources: SourceStatusView[];
      };
      return body.sources[0] as SourceStatusView;
    };
    const clusters = async (): Promise<ClusterView[]> =>
      ((await (await fetch(`${api}/clusters`)).json()) as { clusters: ClusterView[] }).clusters;

    const s1 = await waitFor(
      async () => ((await source()).renderedRevision === first ? source() : undefined),
      {
        what: 'first render of the fleet under deploy/fleet',
      },
    );
    assert.match(
      s1.error,
      /bundles\/escape\/bundle\.yaml:\d+: spec\.source\.path "\.\.\/\.\.\/\.\.\/shared" leaves the repository/,
    );
    const c1 = await clusters();
    assert.deepEqual(
      c1.map((c) => c.name),
      ['edge-1'],
      'only the clusters under the path are in the fleet',
    );
    assert.equal(c1[0]?.desiredRevision, first);

    // A commit outside the path: the desired revision follows it (so `flotilla wait
    // --for revision=HEAD` works), the content and digests do not change.
    await work.writeFiles({
      'src/main.go': 'package main // v2\n',
      'clusters/decoy.yaml': cluster('decoy-2'),
    });
    const outside = await work.commitAndPush('application change only');
    await waitFor(async () => (await source()).renderedRevision === outside, {
      what: 'the hub rendered the commit outside the path',
    });
    const c2 = await clusters();
    assert.deepEqual(
      c2.map((c) => c.name),
      ['edge-1'],
    );
    assert.equal(c2[0]?.desiredRevision, outside);
    assert.equal(c2[0]?.desiredDigest, c1[0]?.desiredDigest, 'the same content, the same digest');

    // A commit inside the path is rendered.
    await work.writeFiles({ [`${FLEET}/bundles/web/manifests/cm.yaml`]: configMap('green') });
    const inside = await work.commitAndPush('fleet change');
    await waitFor(async () => (await source()).renderedRevision === inside, {
      what: 'render of the commit that changed the fleet',
    });
    const c3 = await clusters();
    assert.equal(c3[0]?.desiredRevision, inside);
    assert.notEqual(c3[0]?.desiredDigest, c1[0]?.desiredDigest);

    // Removing the directory: a clear source error; the last good state is still served.
    await work.remove([FLEET]);
    const removed = await work.commitAndPush('fleet moved away');
    const s4 = await waitFor(
      async () => ((await source()).errorCode === 'NOT_FOUND' ? source() : undefined),
      {
        what: 'a source error for the missing fleet path',
      },
    );
    assert.match(
      s4.error,
      new RegExp(`source "mono" .*: fleet path "deploy/fleet" does not exist at commit ${removed}`),
    );
    assert.equal(s4.revision, inside, 'the commit without the path is not taken');
    assert.equal(s4.renderedRevision, inside);
    assert.deepEqual(await clusters(), c3, 'the last good desired state keeps being served');

    // Restoring it clears the error.
    await work.writeFiles({
      [`${FLEET}/clusters/edge-1.yaml`]: cluster('edge-1'),
      [`${FLEET}/bundles/web/bundle.yaml`]: bundle('web'),
      [`${FLEET}/bundles/web/manifests/cm.yaml`]: configMap('red'),
    });
    const restored = await work.commitAndPush('fleet back');
    const s5 = await waitFor(
      async () => ((await source()).renderedRevision === restored ? source() : undefined),
      {
        what: 'render of the commit that restored the fleet path',
      },
    );
    assert.equal(s5.errorCode, undefined);
    assert.equal(s5.error, '');
  },
);
