// An agent whose event buffer overflowed says so with an events-dropped event: the
// cluster's status shows the loss, /metrics counts it, and the history keeps the report.
import assert from 'node:assert/strict';
import test from 'node:test';
import { createEvent, silentLogger } from '@flotilla/common';
import type { EventsDroppedData } from '@flotilla/common';
import { HistoryLog } from '../history/history-log.js';
import { FleetStatus } from './fleet-status.js';

const data: EventsDroppedData = { dropped: 3, total: 7, capacity: 10_000, capacityBytes: 16 << 20 };

test('dropped-events-reported-by-an-agent-mark-its-cluster-and-are-counted', () => {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const cuts: string[] = [];
  status.onCut((cluster, what) => cuts.push(`${cluster}:${what}`));
  const event = createEvent('edge-1', 'events-dropped', data);
  assert.equal(status.foldEvent('events-dropped', event), 'folded');
  assert.deepEqual(cuts, ['edge-1:agent.events']);
  assert.match(
    status.get('edge-1')?.degraded ?? '',
    /^the agent dropped 3 events \(7 in all\): its buffer of 10000 events was full while NATS was unavailable/,
  );
  const history = new HistoryLog({ retentionMs: 86_400_000 });
  assert.equal(history.add('events-dropped', event), true);
  const [entry] = history.query({ cluster: 'edge-1', kinds: ['events-dropped'] });
  assert.match(entry?.message ?? '', /dropped 3 events/);
  assert.throws(
    () =>
      status.foldEvent('events-dropped', createEvent('edge-1', 'events-dropped', { dropped: -1 })),
    /no valid count/,
  );
});
