import assert from 'node:assert/strict';
import test from 'node:test';
import { createEvent } from '@flotilla/common';
import { HubMetrics } from './hub-metrics.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

test('event-lag-is-a-histogram-of-every-folded-event', () => {
  const m = new HubMetrics({ list: () => [] }, () => NOW);
  const at = (msAgo: number) =>
    createEvent('edge-1', 'health-changed', { bundle: 'app' }, new Date(NOW - msAgo));
  m.eventConsumed('health-changed', at(5), 'folded');
  m.eventConsumed('health-changed', at(300), 'folded');
  m.eventConsumed('health-changed', at(90_000), 'folded');
  m.eventConsumed('health-changed', at(20), 'stale');
  const text = m.render();
  assert.match(text, /# TYPE flotilla_event_lag_seconds histogram\n/);
  assert.match(text, /\nflotilla_event_lag_seconds_bucket\{le="0.01"\} 1\n/);
  assert.match(text, /\nflotilla_event_lag_seconds_bucket\{le="0.5"\} 2\n/);
  assert.match(text, /\nflotilla_event_lag_seconds_bucket\{le="60"\} 2\n/);
  assert.match(text, /\nflotilla_event_lag_seconds_bucket\{le="\+Inf"\} 3\n/);
  assert.match(text, /\nflotilla_event_lag_seconds_count 3\n/, 'only folded events count');
  assert.match(text, /\nflotilla_event_lag_seconds_sum 90.305\n/);
});

test('session-events-published-and-dropped-are-counted-from-zero', () => {
  const m = new HubMetrics({ list: () => [] }, () => NOW);
  assert.match(m.render(), /\nflotilla_session_events_total\{outcome="dropped"\} 0\n/);
  m.sessionEvent('published');
  m.sessionEvent('published');
  m.sessionEvent('dropped');
  const text = m.render();
  assert.match(text, /\nflotilla_session_events_total\{outcome="published"\} 2\n/);
  assert.match(text, /\nflotilla_session_events_total\{outcome="dropped"\} 1\n/);
});
