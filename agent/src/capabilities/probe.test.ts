import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CAPABILITIES_LIMITS, apiVersionsSize } from '@flotilla/common';
import type { KubeHttpRequest } from '../kube/http.js';
import { boundCapabilities, kubeVersionOf, readServedApis } from './probe.js';

const VERSION = { major: '1', minor: '35', gitVersion: 'v1.35.4' };

// Shapes as kube-apiserver 1.35 answers them (aggregated discovery, apidiscovery.k8s.io/v2).
const AGG_CORE = {
  kind: 'APIGroupDiscoveryList',
  items: [
    {
      metadata: {},
      versions: [
        {
          version: 'v1',
          resources: [
            {
              resource: 'pods',
              responseKind: { group: '', version: '', kind: 'Pod' },
              subresources: [
                {
                  subresource: 'eviction',
                  responseKind: { group: 'policy', version: 'v1', kind: 'Eviction' },
                },
              ],
            },
            { resource: 'configmaps', responseKind: { group: '', version: '', kind: 'ConfigMap' } },
          ],
        },
      ],
    },
  ],
};
const AGG_GROUPS = {
  kind: 'APIGroupDiscoveryList',
  items: [
    {
      metadata: { name: 'apps' },
      versions: [
        {
          version: 'v1',
          resources: [
            {
              resource: 'deployments',
              responseKind: { kind: 'Deployment' },
              subresources: [
                {
                  subresource: 'scale',
                  responseKind: { group: 'autoscaling', version: 'v1', kind: 'Scale' },
                },
              ],
            },
          ],
        },
      ],
    },
    {
      metadata: { name: 'monitoring.coreos.com' },
      versions: [
        {
          version: 'v1',
          resources: [{ resource: 'servicemonitors', responseKind: { kind: 'ServiceMonitor' } }],
        },
      ],
    },
  ],
};

function server(routes: Record<string, (req: KubeHttpRequest) => unknown>) {
  const asked: string[] = [];
  const get = async (req: KubeHttpRequest): Promise<unknown> => {
    asked.push(req.path);
    const route = routes[req.path];
    if (!route) throw new Error(`404 ${req.path}`);
    return route(req);
  };
  return { get, asked };
}

describe('reading what the cluster serves', () => {
  test('aggregated-discovery-gives-group-versions-and-kind-entries-like-helm-in-two-requests', async () => {
    const { get, asked } = server({
      '/version': () => VERSION,
      '/api': (r) => (r.accept?.includes('apidiscovery.k8s.io') ? AGG_CORE : { versions: ['v1'] }),
      '/apis': (r) => (r.accept?.includes('apidiscovery.k8s.io') ? AGG_GROUPS : {}),
    });
    const served = await readServedApis(get);
    const { capabilities, dropped } = boundCapabilities(served);
    assert.equal(dropped, 'nothing');
    assert.deepEqual(capabilities, {
      kubeVersion: 'v1.35.4',
      apiVersions: [
        'apps/v1',
        'apps/v1/Deployment',
        'apps/v1/Scale',
        'monitoring.coreos.com/v1',
        'monitoring.coreos.com/v1/ServiceMonitor',
        'v1',
        'v1/ConfigMap',
        'v1/Eviction',
        'v1/Pod',
      ],
    });
    assert.deepEqual(asked.sort(), ['/api', '/apis', '/version']);
  });

  test('without-aggregated-discovery-each-group-version-is-read-and-an-unavailable-one-keeps-its-entry', async () => {
    const { get } = server({
      '/version': () => VERSION,
      '/api': () => ({ kind: 'APIVersions', versions: ['v1'] }),
      '/apis': () => ({
        kind: 'APIGroupList',
        groups: [
          { name: 'apps', versions: [{ groupVersion: 'apps/v1' }] },
          { name: 'metrics.k8s.io', versions: [{ groupVersion: 'metrics.k8s.io/v1beta1' }] },
        ],
      }),
      '/api/v1': () => ({
        resources: [
          { name: 'pods', kind: 'Pod' },
          { name: 'pods/log', kind: 'Pod' },
        ],
      }),
      '/apis/apps/v1': () => ({ resources: [{ name: 'deployments', kind: 'Deployment' }] }),
      // metrics.k8s.io/v1beta1 is an aggregated API whose backend is down: 503 in life.
    });
    const { capabilities } = boundCapabilities(await readServedApis(get));
    assert.deepEqual(capabilities.apiVersions, [
      'apps/v1',
      'apps/v1/Deployment',
      'metrics.k8s.io/v1beta1',
      'v1',
      'v1/Pod',
    ]);
  });

  test('a-source-built-api-server-reports-its-major-and-minor-version', () => {
    assert.equal(kubeVersionOf(VERSION), 'v1.35.4');
    assert.equal(
      kubeVersionOf({ gitVersion: 'v0.0.0-master+$Format:%H$', major: '1', minor: '35' }),
      'v1.35.0',
    );
    assert.equal(kubeVersionOf({ gitVersion: 'x', major: '1', minor: '27+' }), 'v1.27.0');
    assert.equal(
      kubeVersionOf({
        gitVersion: 'x',
        major: '',
        minor: '',
        emulationMajor: '1',
        emulationMinor: '34',
      }),
      'v1.34.0',
    );
    assert.equal(kubeVersionOf({ gitVersion: 'x' }), '');
  });

  test('too-many-entries-drop-custom-kinds-then-all-kinds-then-everything-and-malformed-ones-are-left-out', () => {
    const gvs = new Set(['v1', 'apps/v1', 'crossplane.example.io/v1', 'bad group/v1']);
    const builtin = new Set(['v1/Pod', 'apps/v1/Deployment']);
    // A cluster with a thousand custom kinds (a Crossplane provider, say).
    const custom = Array.from({ length: 1500 }, (_, i) => `crossplane.example.io/v1/Resource${i}`);
    const r = boundCapabilities({
      kubeVersion: 'v1.35.4',
      groupVersions: gvs,
      kinds: new Set([...builtin, ...custom]),
    });
    assert.equal(r.dropped, 'custom kinds');
    assert.equal(r.malformed, 1);
    assert.deepEqual(r.capabilities.apiVersions, [
      'apps/v1',
      'apps/v1/Deployment',
      'crossplane.example.io/v1',
      'v1',
      'v1/Pod',
    ]);
    const manyBuiltin = new Set(Array.from({ length: 4000 }, (_, i) => `apps/v1/Kind${i}`));
    assert.equal(
      boundCapabilities({ kubeVersion: '', groupVersions: gvs, kinds: manyBuiltin }).dropped,
      'kinds',
    );
    const huge = new Set(
      Array.from({ length: CAPABILITIES_LIMITS.maxApiVersions + 1 }, (_, i) => `g${i}.io/v1`),
    );
    assert.equal(
      boundCapabilities({ kubeVersion: '', groupVersions: huge, kinds: new Set() }).dropped,
      'everything',
    );
    const fits = boundCapabilities({ kubeVersion: '', groupVersions: gvs, kinds: builtin });
    assert.ok(
      apiVersionsSize(fits.capabilities.apiVersions) <= CAPABILITIES_LIMITS.maxEncodedBytes,
    );
  });
});
