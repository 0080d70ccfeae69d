import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { HistoryLog } from '../history/history-log.js';
import { AuditLog } from './audit-log.js';
import type { AuditRecord } from './audit-log.js';

test('audit-records-show-at-once-and-are-stored-once-after-nats-comes-back', async () => {
  const history = new HistoryLog({ retentionMs: 86_400_000 });
  const stored: AuditRecord[] = [];
  let up = false;
  const log = new AuditLog({
    writer: {
      publish: async (r) => {
        if (!up) throw new Error('NATS unavailable');
        stored.push(r);
      },
    },
    history,
    logger: silentLogger(),
  });
  log.record({
    actor: 'admin alice',
    action: 'token.create',
    target: 'ci',
    result: 'ok',
    message: 'API token ci created',
  });
  log.record({
    actor: 'token ci',
    action: 'rollout.approve',
    target: 'web',
    result: 'denied',
    message: 'x'.repeat(5_000),
  });
  await log.flush();
  const entries = history.query({ kinds: ['audit'] });
  assert.deepEqual(
    entries.map((e) => [e.audit?.actor, e.audit?.action, e.audit?.target, e.result]),
    [
      ['token ci', 'rollout.approve', 'web', 'denied'],
      ['admin alice', 'token.create', 'ci', 'ok'],
    ],
  );
  assert.deepEqual(entries[0]?.bundles, ['web']);
  assert.ok((entries[0]?.message.length ?? 0) <= 1_024, 'messages are bounded');
  assert.equal(log.pendingCount, 2);
  up = true;
  await log.flush();
  assert.equal(log.pendingCount, 0);
  assert.deepEqual(
    stored.map((r) => r.action),
    ['token.create', 'rollout.approve'],
  );
  // A replayed record (same id) is not shown twice.
  assert.equal(history.addAudit(stored[0] as AuditRecord), false);
  log.stop();
});
