// A chart that generates its password (randAlphaNum after a `lookup` that finds nothing
// under `helm template`) renders to the same bytes after a hub restart: helm's output is
// kept by the digest of its inputs, and a change of any input renders afresh.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { FleetRenderer } from './renderer.js';
import { bundleYaml, clusterYaml, repo } from './testing.js';
import type { ToolRequest, ToolRunner } from './tools.js';

/** A fake of our own ToolRunner playing helm on a chart that generates a password. */
class PasswordChart implements ToolRunner {
  runs = 0;
  run(req: ToolRequest): Promise<string> {
    this.runs++;
    const values = JSON.parse(String(req.scratchFiles?.['values.json'])) as { user: string };
    const password = randomBytes(12).toString('base64');
    return Promise.resolve(`apiVersion: v1
kind: Secret
metadata: { name: db }
data: { user: ${Buffer.from(values.user).toString('base64')}, password: ${password} }
`);
  }
}

const files = (user: string) =>
  repo({
    'clusters/c1.yaml': clusterYaml('c1'),
    'bundles/db/bundle.yaml': bundleYaml(
      'db',
      `  source: { helm: { chart: chart, values: { user: ${user} } } }\n  namespace: db\n  targets:\n    - clusterSelector: {}\n`,
    ),
    'bundles/db/chart/Chart.yaml': 'apiVersion: v2\nname: db\nversion: 1.0.0\n',
    'bundles/db/chart/templates/secret.yaml': 'x',
  });

const digest = async (r: FleetRenderer, user: string, rev: string): Promise<string> => {
  const out = await r.render(files(user), rev);
  assert.deepEqual(out.errors, []);
  return out.clusters.get('c1')?.digest ?? '';
};

describe('kept helm output', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-kept-'));
  after(() => rm(dir, { recursive: true, force: true }));

  test('a-chart-generating-a-password-renders-the-same-bytes-after-a-restart', async () => {
    const first = new PasswordChart();
    const before = await digest(
      new FleetRenderer({ tools: first, helmOutputDir: dir }),
      'app',
      'r1',
    );
    // A restarted hub: a new renderer, no caches in memory, the same directory.
    const again = new PasswordChart();
    const restarted = new FleetRenderer({ tools: again, helmOutputDir: dir });
    assert.equal(await digest(restarted, 'app', 'r1'), before);
    assert.equal(again.runs, 0, 'helm is not run again for the same inputs');
    assert.equal((await readdir(dir)).filter((n) => n.endsWith('.yaml.gz')).length, 1);

    // A changed value is new input: helm runs, and its new output is kept in turn.
    const changed = await digest(restarted, 'admin', 'r2');
    assert.notEqual(changed, before);
    assert.equal(again.runs, 1);
    const third = new PasswordChart();
    assert.equal(
      await digest(new FleetRenderer({ tools: third, helmOutputDir: dir }), 'admin', 'r2'),
      changed,
    );
  });

  test('without-kept-output-a-restart-renders-a-new-password', async () => {
    // What the hub did before: each new renderer ran helm, and the password changed.
    const a = await digest(new FleetRenderer({ tools: new PasswordChart() }), 'app', 'r1');
    const b = await digest(new FleetRenderer({ tools: new PasswordChart() }), 'app', 'r1');
    assert.notEqual(a, b);
  });

  test('an-unwritable-directory-never-fails-a-render', async () => {
    // A path under a regular file: no directory can be made there.
    await writeFile(join(dir, 'a-file'), 'x');
    const tools = new PasswordChart();
    const r = new FleetRenderer({ tools, helmOutputDir: join(dir, 'a-file', 'kept') });
    assert.ok(await digest(r, 'app', 'r1'));
    assert.equal(tools.runs, 1);
  });
});
