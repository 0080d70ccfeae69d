import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUILTIN_CAPABILITIES } from './capabilities.js';
import { fileURLToPath } from 'node:url';
import { compileRenderConfig, renderOptionsOf } from './render-config.js';

const MiB = 1024 * 1024;

describe('render config', () => {
  test('defaults-mean-path-lookup-and-the-documented-limits', () => {
    const cfg = compileRenderConfig({}, 'hub.yaml');
    assert.deepEqual(cfg, {
      kustomizePath: undefined,
      helmPath: undefined,
      sopsPath: undefined,
      sopsAgeKeyFile: undefined,
      toolTimeoutMs: 60_000,
      toolMaxCpuMs: 30_000,
      toolMaxMemoryBytes: 512 * MiB,
      maxClusterBytes: 16 * MiB,
      maxClusterObjects: 20_000,
      maxBundleDocuments: 10_000,
      maxBundleObjects: 5_000,
      workerMaxHeapBytes: 1024 * MiB,
      defaultCapabilities: BUILTIN_CAPABILITIES,
      sandbox: { mode: 'auto', uid: 65534, gid: 65534 },
      remote: undefined,
    });
    assert.deepEqual(renderOptionsOf(cfg), {
      maxClusterBytes: 16 * MiB,
      maxClusterObjects: 20_000,
      maxBundleDocuments: 10_000,
      maxBundleObjects: 5_000,
      toolTimeoutMs: 60_000,
      toolMaxCpuMs: 30_000,
      toolMaxMemoryBytes: 512 * MiB,
      defaultCapabilities: { kubeVersion: 'v1.35.0', apiVersions: [] },
    });
  });

  test('program-paths-timeout-and-limit-are-read', () => {
    // Any readable file will do: the hub only checks it can read it at start.
    const keyFile = fileURLToPath(import.meta.url);
    const cfg = compileRenderConfig(
      {
        render: {
          kustomizePath: '/opt/kustomize',
          helmPath: 'helm3',
          sopsPath: '/opt/sops',
          sopsAgeKeyFile: keyFile,
          toolTimeout: '2m',
          toolMaxCpuTime: '10s',
          toolMaxMemoryBytes: 256 * MiB,
          maxClusterBytes: 1000,
          maxClusterObjects: 300,
          maxBundleDocuments: 200,
          maxBundleObjects: 100,
          workerMaxHeapBytes: 512 * MiB,
          defaultKubeVersion: 'v1.30.2',
          defaultApiVersions: ['v1', 'monitoring.coreos.com/v1', 'v1'],
          sandbox: 'user',
          sandboxUser: '10002:10003',
        },
      },
      'hub.yaml',
    );
    assert.deepEqual(cfg, {
      kustomizePath: '/opt/kustomize',
      helmPath: 'helm3',
      sopsPath: '/opt/sops',
      sopsAgeKeyFile: keyFile,
      toolTimeoutMs: 120_000,
      toolMaxCpuMs: 10_000,
      toolMaxMemoryBytes: 256 * MiB,
      maxClusterBytes: 1000,
      maxClusterObjects: 300,
      maxBundleDocuments: 200,
      maxBundleObjects: 100,
      workerMaxHeapBytes: 512 * MiB,
      defaultCapabilities: {
        kubeVersion: 'v1.30.2',
        apiVersions: ['monitoring.coreos.com/v1', 'v1'],
      },
      sandbox: { mode: 'user', uid: 10002, gid: 10003 },
      remote: undefined,
    });
    assert.deepEqual(compileRenderConfig({ render: { sandboxUser: 10002 } }, 'h').sandbox, {
      mode: 'auto',
      uid: 10002,
      gid: 10002,
    });
  });

  test('bad-values-are-errors-naming-the-field', () => {
    assert.throws(
      () => compileRenderConfig({ render: { helmpath: 'x' } }, 'hub.yaml'),
      /render\.helmpath.*unknown field/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { toolTimeout: 'soon' } }, 'hub.yaml'),
      /render\.toolTimeout/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { maxClusterBytes: -1 } }, 'hub.yaml'),
      /render\.maxClusterBytes/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { kustomizePath: '' } }, 'hub.yaml'),
      /render\.kustomizePath/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { maxBundleObjects: 0 } }, 'hub.yaml'),
      /render\.maxBundleObjects: must be a positive whole number/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { toolMaxMemoryBytes: 1_000_000 } }, 'hub.yaml'),
      /render\.toolMaxMemoryBytes: must be at least 134217728 \(128 MiB\)/,
    );
    assert.throws(
      () =>
        compileRenderConfig({ render: { sopsAgeKeyFile: '/nonexistent/keys.txt' } }, 'hub.yaml'),
      /render\.sopsAgeKeyFile: cannot read "\/nonexistent\/keys.txt" \(ENOENT\)/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { toolMaxCpuTime: '10ms' } }, 'hub.yaml'),
      /render\.toolMaxCpuTime: must be at least 1s/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { defaultKubeVersion: 'latest' } }, 'hub.yaml'),
      /hub\.yaml: render\.defaultKubeVersion: "latest" is not a Kubernetes version/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { defaultApiVersions: ['apps/v1', 'a b'] } }, 'hub.yaml'),
      /render\.defaultApiVersions\[1\]: must be group\/version/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { sandbox: 'strict' } }, 'hub.yaml'),
      /render\.sandbox: must be one of auto, user, network, none/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { sandboxUser: 'nobody' } }, 'hub.yaml'),
      /render\.sandboxUser: must be a numeric user id/,
    );
    assert.throws(
      () => compileRenderConfig({ render: { sandboxUser: '0:0' } }, 'hub.yaml'),
      /render\.sandboxUser: must not be root/,
    );
  });
});
