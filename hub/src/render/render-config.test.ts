import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { compileRenderConfig, renderOptionsOf } from './render-config.js';

describe('render config', () => {
  test('defaults-mean-path-lookup-60s-and-16MiB', () => {
    const cfg = compileRenderConfig({}, 'hub.yaml');
    assert.deepEqual(cfg, {
      kustomizePath: undefined,
      helmPath: undefined,
      toolTimeoutMs: 60_000,
      maxClusterBytes: 16 * 1024 * 1024,
    });
    assert.deepEqual(renderOptionsOf(cfg), {
      maxClusterBytes: 16 * 1024 * 1024,
      toolTimeoutMs: 60_000,
    });
  });

  test('program-paths-timeout-and-limit-are-read', () => {
    const cfg = compileRenderConfig(
      {
        render: {
          kustomizePath: '/opt/kustomize',
          helmPath: 'helm3',
          toolTimeout: '2m',
          maxClusterBytes: 1000,
        },
      },
      'hub.yaml',
    );
    assert.deepEqual(cfg, {
      kustomizePath: '/opt/kustomize',
      helmPath: 'helm3',
      toolTimeoutMs: 120_000,
      maxClusterBytes: 1000,
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
  });
});
