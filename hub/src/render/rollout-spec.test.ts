import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';

const clusters = {
  'clusters/canary-1.yaml': clusterYaml('canary-1', { ring: 'canary' }),
  'clusters/prod-1.yaml': clusterYaml('prod-1', { ring: 'prod' }),
  'clusters/prod-2.yaml': clusterYaml('prod-2', { ring: 'prod' }, '  paused: true\n'),
  'clusters/lab-1.yaml': clusterYaml('lab-1', { ring: 'lab' }),
  'clusterGroups/prod.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: ClusterGroup
metadata:
  name: prod
spec:
  selector: { matchLabels: { ring: prod } }
`,
};

function withRollout(rollout: string): Record<string, string> {
  return {
    ...clusters,
    'bundles/web/bundle.yaml': bundleYaml(
      'web',
      `  namespace: web
  targets:
    - clusterSelector: {}
  rollout:
${rollout}`,
    ),
    'bundles/web/manifests/cm.yaml': configMap('web'),
    'bundles/other/bundle.yaml': bundleYaml('other', '  targets:\n    - clusterSelector: {}\n'),
    'bundles/other/manifests/cm.yaml': configMap('other'),
  };
}

async function renderErrors(rollout: string): Promise<string[]> {
  const out = await renderFleet(repo(withRollout(rollout)), 'rev1');
  return out.errors.map((e) => e.message);
}

describe('rollout plans', () => {
  test('stages-assign-each-targeted-cluster-to-the-first-stage-that-selects-it', async () => {
    const out = await renderFleet(
      repo(
        withRollout(`    progressDeadline: 2m
    onFailure: rollback
    stages:
      - name: canary
        clusterNames: [canary-1]
        soak: 30s
      - name: prod
        clusterGroup: prod
        maxConcurrent: 50%
        maxFailures: 1
        approval: required
        windows:
          - { days: [mon, tue], start: "09:00", end: "17:30" }
`),
      ),
      'rev1',
    );
    assert.deepEqual(out.errors, []);
    const plan = out.rollouts.get('web');
    assert.deepEqual(Object.fromEntries(plan?.stageOf ?? []), {
      'canary-1': 0,
      'prod-1': 1,
      'prod-2': 1,
      'lab-1': 2,
    });
    assert.deepEqual(plan?.paused, ['prod-2']);
    assert.deepEqual(
      plan?.strategy?.stages.map((s) => [s.name, s.approval, s.soakMs, s.implicit ?? false]),
      [
        ['canary', false, 30_000, false],
        ['prod', true, 0, false],
        ['remaining', false, 0, true],
      ],
    );
    assert.deepEqual(plan?.strategy?.stages[1]?.maxConcurrent, { percent: 50 });
    assert.deepEqual(plan?.strategy?.stages[1]?.maxFailures, { count: 1 });
    assert.deepEqual(plan?.strategy?.stages[1]?.windows, [
      { days: [1, 2], startMinute: 540, endMinute: 1050 },
    ]);
    assert.equal(plan?.strategy?.progressDeadlineMs, 120_000);
    assert.equal(plan?.strategy?.onFailure, 'rollback');
    // A bundle without spec.rollout has a plan without a strategy: it goes out at once.
    assert.equal(out.rollouts.get('other')?.strategy, undefined);
  });

  test('no-implicit-stage-when-every-targeted-cluster-is-selected', async () => {
    const out = await renderFleet(
      repo(withRollout('    stages:\n      - clusterSelector: {}\n')),
      'rev1',
    );
    const plan = out.rollouts.get('web');
    assert.deepEqual(
      plan?.strategy?.stages.map((s) => s.name),
      ['stage-1'],
    );
    assert.equal(plan?.strategy?.onFailure, 'halt');
    assert.equal(plan?.strategy?.progressDeadlineMs, 600_000);
  });
});

describe('bad rollout strategies are render errors with file:line', () => {
  test('zero-stages', async () => {
    assert.deepEqual(await renderErrors('    stages: []\n'), [
      'bundles/web/bundle.yaml:10: spec.rollout.stages needs at least one stage (a rollout of nobody is a typo)',
    ]);
  });

  test('unknown-cluster-group', async () => {
    assert.deepEqual(
      await renderErrors(
        '    stages:\n      - clusterNames: [canary-1]\n      - clusterGroup: nope\n',
      ),
      [
        'bundles/web/bundle.yaml:12: spec.rollout.stages[1].clusterGroup "nope" is not a valid cluster group (no readable clusterGroups/nope.yaml)',
      ],
    );
  });

  test('percentage-over-100', async () => {
    assert.deepEqual(
      await renderErrors('    stages:\n      - clusterSelector: {}\n        maxConcurrent: 150%\n'),
      ['bundles/web/bundle.yaml:12: spec.rollout.stages[0].maxConcurrent "150%" is over 100%'],
    );
    assert.deepEqual(
      await renderErrors('    stages:\n      - clusterSelector: {}\n        maxFailures: 101%\n'),
      ['bundles/web/bundle.yaml:12: spec.rollout.stages[0].maxFailures "101%" is over 100%'],
    );
  });

  test('other-mistakes-name-their-field', async () => {
    const cases: [string, RegExp][] = [
      ['    stages:\n      - {}\n', /:11: spec\.rollout\.stages\[0\] needs clusterSelector/],
      [
        '    stages:\n      - clusterSelector: {}\n        maxConcurrent: 0\n',
        /:12: .*maxConcurrent must let at least one cluster update/,
      ],
      [
        '    stages:\n      - clusterSelector: {}\n        soak: soon\n',
        /:12: spec\.rollout\.stages\[0\]\.soak: invalid duration "soon"/,
      ],
      [
        '    stages:\n      - clusterSelector: {}\n        approval: maybe\n',
        /:12: .*approval must be "required" or "none"/,
      ],
      [
        '    onFailure: panic\n    stages:\n      - clusterSelector: {}\n',
        /:10: spec\.rollout\.onFailure must be "halt" or "rollback"/,
      ],
      [
        '    stages:\n      - { name: a, clusterSelector: {} }\n      - { name: a, clusterNames: [x] }\n',
        /:12: spec\.rollout\.stages\[1\]\.name "a" is used twice/,
      ],
      [
        '    stages:\n      - clusterSelector: {}\n        windows: [{ days: [mon], start: "18:00", end: "09:00" }]\n',
        /:12: .*end must be after .*start/,
      ],
      ['    stagez: []\n', /:10: unknown field "spec\.rollout\.stagez"/],
    ];
    for (const [rollout, want] of cases) {
      const errors = await renderErrors(rollout);
      assert.equal(errors.length, 1, `${rollout}: ${errors.join('; ')}`);
      assert.match(errors[0] as string, want);
      assert.match(errors[0] as string, /^bundles\/web\/bundle\.yaml:\d+: /);
    }
  });

  test('a-bad-strategy-holds-the-bundle-and-keeps-the-rest-of-the-fleet-rendering', async () => {
    const out = await renderFleet(repo(withRollout('    stages: []\n')), 'rev1');
    for (const state of out.clusters.values())
      assert.deepEqual(
        state.bundles.map((b) => b.name),
        ['other'],
      );
    assert.equal(out.rollouts.has('web'), false, 'no plan: the last one holds');
    assert.deepEqual(
      out.failures.get('canary-1')?.map((f) => f.bundle),
      ['web'],
    );
  });
});
