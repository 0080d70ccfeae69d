import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { clusterYaml, repo } from '../render/testing.js';
import { capabilitiesFor, parseCapabilityFlags } from './render-capabilities.js';
import type { Fetch } from './hub-client.js';
import type { CliIo } from './io.js';

const io: CliIo = {
  stdout: { write: () => true },
  stderr: { write: () => true },
  env: {},
  cwd: '/',
};

// The hub's GET /api/v1/clusters/{name}/capabilities answer.
function hub(reported: object | null, asked: string[] = []): Fetch {
  return async (url) => {
    asked.push(url);
    const body = {
      cluster: 'x',
      reported,
      default: { kubeVersion: 'v1.31.0', apiVersions: ['v1'] },
    };
    return { ok: true, status: 200, text: async () => JSON.stringify(body) };
  };
}

const tree = repo({
  'clusters/declared.yaml': clusterYaml(
    'declared',
    {},
    '  kubeVersion: v1.29.4\n  apiVersions: [example.com/v1]\n',
  ),
  'clusters/plain.yaml': clusterYaml('plain'),
});

describe('capabilities of flotilla render', () => {
  test('without-the-hub-declared-capabilities-else-the-built-in-default', async () => {
    const flags = parseCapabilityFlags({});
    assert.deepEqual(await capabilitiesFor(tree, 'declared', flags, io, hub(null)), {
      kubeVersion: 'v1.29.4',
      apiVersions: ['example.com/v1'],
    });
    assert.deepEqual(await capabilitiesFor(tree, 'plain', flags, io, hub(null)), {
      kubeVersion: 'v1.35.0',
      apiVersions: [],
    });
  });

  test('with-the-hub-reported-ones-win-and-the-hub-default-replaces-the-built-in-one', async () => {
    const asked: string[] = [];
    const flags = parseCapabilityFlags({ hub: true, 'hub-url': 'http://hub:7080' });
    const reported = {
      kubeVersion: 'v1.35.4',
      apiVersions: ['monitoring.coreos.com/v1', 'v1'],
      reportedAt: 't',
    };
    assert.deepEqual(await capabilitiesFor(tree, 'declared', flags, io, hub(reported, asked)), {
      kubeVersion: 'v1.35.4',
      apiVersions: ['monitoring.coreos.com/v1', 'v1'],
    });
    assert.deepEqual(asked, ['http://hub:7080/api/v1/clusters/declared/capabilities']);
    assert.deepEqual(await capabilitiesFor(tree, 'plain', flags, io, hub(null)), {
      kubeVersion: 'v1.31.0',
      apiVersions: ['v1'],
    });
  });

  test('flags-win-each-for-its-own-field', async () => {
    const flags = parseCapabilityFlags({
      hub: true,
      'kube-version': 'v1.30.1',
      'api-versions': ['apps/v1,policy/v1', 'autoscaling/v2'],
    });
    const reported = { kubeVersion: 'v1.35.4', apiVersions: ['v1'] };
    assert.deepEqual(await capabilitiesFor(tree, 'plain', flags, io, hub(reported)), {
      kubeVersion: 'v1.30.1',
      apiVersions: ['apps/v1', 'autoscaling/v2', 'policy/v1'],
    });
    const versionOnly = parseCapabilityFlags({ 'kube-version': 'v1.28.0' });
    assert.deepEqual(await capabilitiesFor(tree, 'declared', versionOnly, io, hub(null)), {
      kubeVersion: 'v1.28.0',
      apiVersions: ['example.com/v1'],
    });
  });

  test('a-malformed-hub-answer-is-an-error', async () => {
    const flags = parseCapabilityFlags({ hub: true });
    await assert.rejects(
      capabilitiesFor(
        tree,
        'plain',
        flags,
        io,
        hub({ kubeVersion: 'v1.35.4', apiVersions: ['--set=x'] }),
      ),
      /the hub's reported capabilities: API version "--set=x" is not/,
    );
  });
});
