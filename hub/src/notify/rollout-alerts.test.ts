// A rollout halting, waiting for approval, rolling back or completing alerts once per
// rollout and phase; every other transition (a cluster starting, a stage completing) does not.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { Notifier, alertText } from './notifier.js';
import type { Alert } from './notifier.js';
import { rolloutAlerts } from './rollout-alerts.js';

const REV = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const ID = 'web@2222222bbbbb-3';

function t(to: string, from: string, message: string, cluster = '') {
  return {
    id: `web.${to}${cluster}`,
    atMs: 1_000,
    cluster,
    bundle: 'web',
    rollout: ID,
    revision: REV,
    stage: -1,
    from,
    to,
    message,
  };
}

test('rollout-alerts-on-halt-approval-rollback-and-completion-only', () => {
  const alerts = rolloutAlerts([
    t('Progressing', '', 'started at 2222222bbbbb'),
    t('Updating', 'Waiting', 'admitted by stage 1/2 (canary)', 'canary'),
    t('StageCompleted', '', 'stage 1/2 (canary) completed'),
    t('AwaitingApproval', 'Progressing', 'stage 2/2 (prod) waits for approval'),
    t(
      'Halted',
      'Progressing',
      'halted: stage 2/2 (prod): 1 of 2 clusters failed (0 tolerated); eu-1: bundle web not healthy',
    ),
    t('RolledBack', 'Progressing', 'rolled back: stage 1/2 (canary): 1 of 1 clusters failed'),
    t('Completed', 'Progressing', 'every stage completed at 2222222bbbbb'),
  ]);
  assert.deepEqual(
    alerts.map((a) => [a.kind, a.bundle, a.rollout?.phase]),
    [
      ['rollout', 'web', 'AwaitingApproval'],
      ['rollout', 'web', 'Halted'],
      ['rollout', 'web', 'RolledBack'],
      ['rollout', 'web', 'Completed'],
    ],
  );
  assert.equal(
    alertText(alerts[1] as Alert),
    `:octagonal_sign: Rollout halted: bundle web at 2222222bbbbb (${ID})\nhalted: stage 2/2 (prod): 1 of 2 clusters failed (0 tolerated); eu-1: bundle web not healthy`,
  );
  assert.match(
    alertText(alerts[0] as Alert),
    /^:raised_hand: Rollout waits for approval: bundle web/,
  );
});

test('each-stage-approval-alerts-on-its-own-and-repeats-are-deduplicated', async () => {
  const outcomes: string[] = [];
  const n = new Notifier({
    webhooks: [{ name: 'ops', url: 'http://127.0.0.1:9/', format: 'json', events: ['rollout'] }],
    logger: silentLogger(),
    onOutcome: (_w, o) => outcomes.push(o),
    rateBurst: 0,
  });
  const [stage2] = rolloutAlerts([
    t('AwaitingApproval', 'Progressing', 'stage 2/3 (eu) waits for approval'),
  ]);
  const [stage3] = rolloutAlerts([
    t('AwaitingApproval', 'Progressing', 'stage 3/3 (us) waits for approval'),
  ]);
  n.alert(stage2 as Alert);
  n.alert(stage3 as Alert);
  n.alert(stage2 as Alert);
  // Burst 0: the first two reach the rate limiter (not deduplicated), the repeat does not.
  assert.deepEqual(outcomes, ['rate_limited', 'rate_limited', 'deduplicated']);
  await n.stop();
});
