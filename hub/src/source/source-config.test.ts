import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { compileHubConfig } from '../config/hub-config.js';

const compile = (source: Record<string, unknown>): ReturnType<typeof compileHubConfig> =>
  compileHubConfig(
    { sources: [{ name: 'fleet', url: 'https://git.example.com/fleet.git', ...source }] },
    'hub.yaml',
    { defaultCacheDir: '/tmp/c' },
  );

const fieldOf = (source: Record<string, unknown>): string => {
  try {
    compile(source);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.field;
  }
  return 'no error';
};

test('a-source-follows-a-branch-by-default-or-one-of-tag-commit-semver', () => {
  assert.deepEqual(compile({}).sources[0]?.ref, { kind: 'branch', name: 'main' });
  assert.deepEqual(compile({ tag: 'v1.0.0' }).sources[0]?.ref, { kind: 'tag', name: 'v1.0.0' });
  assert.deepEqual(compile({ semver: '^1.2.0' }).sources[0]?.ref, {
    kind: 'semver',
    range: '^1.2.0',
  });
  assert.deepEqual(compile({ commit: 'a'.repeat(40) }).sources[0]?.ref, {
    kind: 'commit',
    sha: 'a'.repeat(40),
  });
});

test('bad-source-refs-and-sections-are-errors-naming-the-field', () => {
  assert.equal(fieldOf({ branch: 'main', tag: 'v1' }), 'sources[0].tag');
  assert.equal(fieldOf({ semver: 'latest please' }), 'sources[0].semver');
  assert.equal(fieldOf({ commit: 'abc' }), 'sources[0].commit');
  assert.equal(fieldOf({ webhook: { secret: 'inline' } }), 'sources[0].webhook.secret');
  assert.equal(fieldOf({ webhook: {} }), 'sources[0].webhook');
  assert.equal(fieldOf({ webhook: { secretFile: '/a', secretEnv: 'B' } }), 'sources[0].webhook');
  assert.equal(fieldOf({ verify: { openpgpKeys: [] } }), 'sources[0].verify.openpgpKeys');
  assert.equal(fieldOf({ verify: { openpgpKeys: [''] } }), 'sources[0].verify.openpgpKeys[0]');
  assert.equal(fieldOf({ verify: {} }), 'sources[0].verify');
  assert.equal(
    fieldOf({ verify: { sshAllowedSigners: [] } }),
    'sources[0].verify.sshAllowedSigners',
  );
  assert.equal(
    fieldOf({ verify: { sshAllowedSigners: ['/a', 3] } }),
    'sources[0].verify.sshAllowedSigners[1]',
  );
  assert.equal(
    fieldOf({ verify: { sshAllowedSigners: '/a' } }),
    'sources[0].verify.sshAllowedSigners',
  );
});

test('webhook-and-verify-sections-compile', () => {
  const s = compile({ webhook: { secretEnv: 'HOOK' }, verify: { openpgpKeys: ['/keys/a.asc'] } })
    .sources[0];
  assert.deepEqual(s?.webhook, { secretEnv: 'HOOK' });
  assert.deepEqual(s?.verify, { openpgpKeyFiles: ['/keys/a.asc'], sshAllowedSignersFiles: [] });
  const ssh = compile({
    verify: { openpgpKeys: [], sshAllowedSigners: ['/keys/allowed_signers'] },
  });
  assert.deepEqual(ssh.sources[0]?.verify, {
    openpgpKeyFiles: [],
    sshAllowedSignersFiles: ['/keys/allowed_signers'],
  });
});
