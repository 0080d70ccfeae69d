import assert from 'node:assert/strict';
import test from 'node:test';
import { ConfigError } from '@flotilla/common';
import { compileStatusConfig } from './status-config.js';

test('status-config-defaults-and-webhooks', () => {
  assert.deepEqual(compileStatusConfig({}, 'hub.yaml'), {
    hubId: 'main',
    peers: [],
    history: { retentionMs: 7 * 86_400_000 },
    notify: { webhooks: [], dedupeWindowMs: 600_000 },
  });
  const cfg = compileStatusConfig(
    {
      hubId: 'hub-b',
      history: { retention: '24h' },
      notify: {
        webhooks: [{ name: 'ops', urlEnv: 'SLACK_URL', format: 'slack', events: ['offline'] }],
      },
    },
    'hub.yaml',
  );
  assert.equal(cfg.history.retentionMs, 86_400_000);
  assert.deepEqual(cfg.notify.webhooks[0], {
    name: 'ops',
    url: undefined,
    urlEnv: 'SLACK_URL',
    format: 'slack',
    events: ['offline'],
  });
});

test('status-config-errors-name-the-field-and-never-the-url', () => {
  const cases: [unknown, string][] = [
    [{ hubId: 'Hub_1' }, 'hubId'],
    [{ history: { retention: 'forever' } }, 'history.retention'],
    [{ history: { keep: 1 } }, 'history.keep'],
    [
      { notify: { webhooks: [{ name: 'a', url: 'ftp://secret-token@x' }] } },
      'notify.webhooks[0].url',
    ],
    [{ notify: { webhooks: [{ name: 'a' }] } }, 'notify.webhooks[0].url'],
    [
      { notify: { webhooks: [{ name: 'a', url: 'https://x', format: 'teams' }] } },
      'notify.webhooks[0].format',
    ],
    [
      { notify: { webhooks: [{ name: 'a', url: 'https://x', events: ['exploded'] }] } },
      'notify.webhooks[0].events',
    ],
  ];
  for (const [raw, field] of cases) {
    assert.throws(
      () => compileStatusConfig(raw as Record<string, unknown>, 'hub.yaml'),
      (err: unknown) =>
        err instanceof ConfigError && err.field === field && !err.message.includes('secret-token'),
      field,
    );
  }
});
