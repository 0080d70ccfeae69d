import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { it } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { compileConfig } from '../config/config.js';
import { AgentMetrics, serveMetrics } from './metrics.js';

it('metrics-endpoint-serves-apply-drift-and-event-counters', async () => {
  const drift = { checks: 7, dryRuns: 5, detected: 3, healed: 2, healFailed: 1 };
  const m = new AgentMetrics({ drift: () => drift, events: () => ({ pending: 4, dropped: 0 }) });
  m.observeApply('applied', 1500);
  m.observeApply('partial', 500);
  const server = await serveMetrics('127.0.0.1:0', m);
  try {
    const port = (server.address() as AddressInfo).port;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const line of [
      'flotilla_agent_applies_total{result="applied"} 1',
      'flotilla_agent_applies_total{result="partial"} 1',
      'flotilla_agent_apply_seconds_sum 2',
      'flotilla_agent_drift_detected_total 3',
      'flotilla_agent_drift_heals_total{outcome="failed"} 1',
      'flotilla_agent_events_pending 4',
    ])
      assert.ok(text.includes(`${line}\n`), line);
    assert.equal((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
  } finally {
    server.close();
  }
});

it('a-bad-metrics-addr-is-a-config-error-naming-the-flag', () => {
  const base = { cluster: 'east', hub: 'hub:443', nats: 'tls://n:4222' };
  assert.equal(compileConfig({ ...base, metricsAddr: ':9090' }, 'v').metricsAddr, ':9090');
  assert.equal(compileConfig(base, 'v').metricsAddr, undefined);
  assert.throws(
    () => compileConfig({ ...base, metricsAddr: 'nine' }, 'v'),
    (e: unknown) => e instanceof ConfigError && /metrics-addr/.test(e.message),
  );
});
