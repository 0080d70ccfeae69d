import assert from 'node:assert/strict';
import test from 'node:test';
import { EVENT_LIMITS, silentLogger } from '@flotilla/common';
import type { Ack__Output } from '@flotilla/proto';
import { HubMetrics } from '../metrics/hub-metrics.js';
import { SessionEventPublisher } from '../status/session-publisher.js';
import { boundedObserver } from './bounded-observer.js';
import { nullObserver } from './types.js';
import type { HelloSummary } from './types.js';

test('an-ack-message-is-cut-before-status-and-session-events-see-it', () => {
  const seen: { hello?: HelloSummary; ack?: Ack__Output } = {};
  const cuts: string[] = [];
  const observer = boundedObserver(
    {
      ...nullObserver,
      connected: (_c, _s, hello) => (seen.hello = hello),
      acked: (_c, ack) => (seen.ack = ack),
    },
    (cluster, what) => cuts.push(`${cluster}:${what}`),
  );
  observer.connected('edge-1', 's1', {
    cluster: 'edge-1',
    agentVersion: 'v'.repeat(60_000),
    appliedDigest: 'sha256:d1',
    appliedRevision: 'r1',
    protocolVersion: 1,
  });
  observer.acked('edge-1', {
    generation: 1,
    digest: 'sha256:d1',
    revision: 'r1',
    result: 'ACK_RESULT_FAILED',
    message: 'm'.repeat(3_900_000),
    objectsApplied: 0,
    objectsFailed: 1,
  });
  assert.equal(seen.hello?.agentVersion.length, EVENT_LIMITS.tokenChars);
  assert.equal(seen.hello?.appliedDigest, 'sha256:d1', 'short fields pass as they are');
  assert.equal(seen.ack?.message.length, EVENT_LIMITS.textChars);
  assert.equal(seen.ack?.objectsFailed, 1);
  assert.deepEqual(cuts, ['edge-1:hello.agentVersion', 'edge-1:ack.message']);
});

test('a-heartbeats-agent-clock-reaches-status-through-every-observer-on-the-way', () => {
  // The chain the hub builds (app.ts): edge bounds → session events → metrics → status.
  const clocks: (number | undefined)[] = [];
  const status = {
    ...nullObserver,
    seen: (_c: string, _s: string, ms?: number) => clocks.push(ms),
  };
  const events = new SessionEventPublisher({
    publish: () => Promise.resolve(),
    hubId: 'hub-a',
    logger: silentLogger(),
  });
  const metrics = new HubMetrics({ list: () => [] }, () => 0);
  const observer = boundedObserver(events.observe(metrics.observeSessions(status)), () => {});
  observer.seen('edge-1', 's1', 1_700_000_000_123);
  observer.seen('edge-1', 's1');
  assert.deepEqual(clocks, [1_700_000_000_123, undefined]);
});
