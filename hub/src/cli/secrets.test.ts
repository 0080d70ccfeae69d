import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { bundleYaml, clusterYaml } from '../render/testing.js';
import { createLocalRepo } from '@flotilla/test-env';
import { diffCommand } from './diff.js';
import { renderCommand } from './render.js';
import { REDACTED, REDACTED_CHANGED, redactSecret } from './secrets.js';

const secret = (data: Record<string, string>): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 's' },
  data,
  stringData: { token: 'hunter2' },
});

describe('secret values in CLI output', () => {
  test('a-secrets-values-are-hidden-and-its-keys-kept', () => {
    assert.deepEqual(redactSecret(secret({ a: 'eA==' })), {
      ...secret({}),
      data: { a: REDACTED },
      stringData: { token: REDACTED },
    });
    const cm: KubeObject = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c' },
      data: { a: 'b' },
    };
    assert.equal(redactSecret(cm), cm);
  });

  test('values-that-changed-since-the-other-revision-say-so', () => {
    const out = redactSecret(secret({ a: 'eA==', b: 'new' }), secret({ a: 'eA==', b: 'old' }));
    assert.deepEqual(out.data, { a: REDACTED, b: REDACTED_CHANGED });
  });

  describe('flotilla render', () => {
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-secrets-'));
      const files: Record<string, string> = {
        'clusters/a.yaml': clusterYaml('a'),
        'bundles/db/bundle.yaml': bundleYaml(
          'db',
          '  namespace: db\n  targets:\n    - clusterSelector: {}\n',
        ),
        'bundles/db/manifests/s.yaml':
          'apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n',
      };
      for (const [p, t] of Object.entries(files)) {
        await mkdir(dirname(join(dir, p)), { recursive: true });
        await writeFile(join(dir, p), t);
      }
    });
    after(() => rm(dir, { recursive: true, force: true }));

    const run = async (argv: string[]): Promise<string> => {
      let out = '';
      const code = await renderCommand(argv, {
        stdout: { write: (t: string) => (out += t) },
        stderr: { write: () => undefined },
      });
      assert.equal(code, 0);
      return out;
    };

    test('render-hides-secret-values-unless-show-secrets', async () => {
      for (const format of ['yaml', 'json']) {
        const out = await run(['--repo', dir, '--cluster', 'a', '-o', format]);
        assert.doesNotMatch(out, /hunter2/, format);
        assert.match(out, /password.*<redacted>/, format);
      }
      assert.match(
        await run(['--repo', dir, '--cluster', 'a', '--show-secrets']),
        /password: hunter2/,
      );
    });
  });

  test('diff-marks-a-changed-secret-value-without-showing-either-value', async () => {
    const repo = await createLocalRepo();
    try {
      const secretYaml = (v: string): string =>
        `apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: ${v}\n  user: admin\n`;
      const from = await repo.commit('one', {
        'clusters/a.yaml': clusterYaml('a'),
        'bundles/db/bundle.yaml': bundleYaml(
          'db',
          '  namespace: db\n  targets:\n    - clusterSelector: {}\n',
        ),
        'bundles/db/manifests/s.yaml': secretYaml('old-hunter2'),
      });
      const to = await repo.commit('two', {
        'bundles/db/manifests/s.yaml': secretYaml('new-hunter2'),
      });
      const diff = async (extra: string[]): Promise<string> => {
        let out = '';
        const code = await diffCommand(['--repo', repo.dir, '--from', from, '--to', to, ...extra], {
          stdout: { write: (t: string) => (out += t) },
          stderr: { write: () => undefined },
        });
        assert.equal(code, 1);
        return out;
      };
      const hidden = await diff([]);
      assert.doesNotMatch(hidden, /hunter2/);
      assert.match(hidden, /^ +- +password: <redacted>$/m);
      assert.match(hidden, /^ +\+ +password: <redacted, changed>$/m);
      assert.doesNotMatch(hidden, /user: <redacted, changed>/, 'an unchanged value is not marked');
      assert.match(await diff(['--show-secrets']), /\+ +password: new-hunter2/);
    } finally {
      await repo.dispose();
    }
  });
});
