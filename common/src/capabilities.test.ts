import assert from 'node:assert/strict';
import test from 'node:test';
import {
  CAPABILITIES_LIMITS,
  capabilitiesDigest,
  checkCapabilities,
  isApiVersionEntry,
  isKubeVersion,
} from './capabilities.js';

test('kube-versions-helm-accepts-pass-and-source-build-placeholders-do-not', () => {
  for (const v of ['v1.35.4', '1.29', 'v1.30.2-gke.1587003', 'v1.28.3+k3s1', 'v1.31.0-eks-a1b2'])
    assert.ok(isKubeVersion(v), v);
  for (const v of [
    'v0.0.0-master+$Format:%H$',
    'latest',
    'v1',
    '',
    'v1.2.3 ',
    `v1.2.${'9'.repeat(70)}`,
  ])
    assert.ok(!isKubeVersion(v), v);
});

test('api-version-entries-are-group-versions-or-resource-entries', () => {
  for (const e of ['v1', 'v1/Pod', 'apps/v1', 'apps/v1/Deployment', 'monitoring.coreos.com/v1'])
    assert.ok(isApiVersionEntry(e), e);
  for (const e of [
    '',
    'apps/v1,policy/v1',
    '-apps/v1',
    'apps/v1/Deploy ment',
    'Apps/v1',
    'a/b/C/d',
  ])
    assert.ok(!isApiVersionEntry(e), e);
});

test('checked-capabilities-are-sorted-and-deduplicated-with-the-same-digest', () => {
  const a = checkCapabilities(
    { kubeVersion: 'v1.35.4', apiVersions: ['v1', 'apps/v1', 'v1', 'apps/v1/Deployment'] },
    'test',
  );
  assert.deepEqual(a.apiVersions, ['apps/v1', 'apps/v1/Deployment', 'v1']);
  const b = checkCapabilities(
    { kubeVersion: 'v1.35.4', apiVersions: ['apps/v1/Deployment', 'v1', 'apps/v1'] },
    'test',
  );
  assert.equal(capabilitiesDigest(a), capabilitiesDigest(b));
  assert.notEqual(capabilitiesDigest(a), capabilitiesDigest({ ...a, kubeVersion: 'v1.35.5' }));
});

test('capabilities-over-the-limits-or-malformed-are-refused-naming-the-problem', () => {
  const many = Array.from(
    { length: CAPABILITIES_LIMITS.maxApiVersions + 1 },
    (_, i) => `g${i}.io/v1`,
  );
  assert.throws(
    () => checkCapabilities({ kubeVersion: '', apiVersions: many }, 'cluster "x"'),
    /cluster "x": 5001 API versions, more than the limit of 5000/,
  );
  assert.throws(
    () => checkCapabilities({ kubeVersion: 'v1.2.3', apiVersions: ['apps/v1,x/v1'] }, 'flag'),
    /flag: API version "apps\/v1,x\/v1" is not/,
  );
  assert.throws(
    () => checkCapabilities({ kubeVersion: 'v0.0.0-master+$Format:%H$', apiVersions: [] }, 'hello'),
    /hello: Kubernetes version "v0\.0\.0-master\+\$Format:%H\$" is not a version/,
  );
  const long = `${'a'.repeat(300)}.io/v1`;
  const heavy = Array.from({ length: 200 }, (_, i) => `${long}/K${i}`);
  assert.throws(
    () => checkCapabilities({ kubeVersion: '', apiVersions: heavy }, 'big'),
    /big: API versions take \d+ bytes, more than the limit of 57344/,
  );
});
