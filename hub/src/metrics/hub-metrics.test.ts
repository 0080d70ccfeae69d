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

test('rollouts-by-phase-transitions-and-stage-durations', () => {
  const m = new HubMetrics({ list: () => [] }, () => NOW);
  const phases = [{ phase: 'Progressing' }, { phase: 'Completed' }, { phase: 'Completed' }];
  m.observeRollouts(() => phases);
  const at = (s: number) => NOW + s * 1000;
  const tr = (to: string, atMs: number, stage = 0, cluster = '') => ({
    atMs,
    cluster,
    rollout: 'web@abc-1',
    stage,
    to,
  });
  m.rolloutTransitions([
    tr('StageStarted', at(0)),
    tr('Updating', at(0), 0, 'canary'),
    tr('StageCompleted', at(42)),
    tr('StageStarted', at(42), 1),
  ]);
  const text = m.render();
  assert.match(text, /\nflotilla_rollouts\{phase="Completed"\} 2\n/);
  assert.match(text, /\nflotilla_rollouts\{phase="Progressing"\} 1\n/);
  assert.match(text, /\nflotilla_rollout_transitions_total\{scope="cluster",to="Updating"\} 1\n/);
  assert.match(
    text,
    /\nflotilla_rollout_transitions_total\{scope="rollout",to="StageStarted"\} 2\n/,
  );
  assert.match(text, /\nflotilla_rollout_stage_duration_seconds_bucket\{stage="0",le="15"\} 0\n/);
  assert.match(text, /\nflotilla_rollout_stage_duration_seconds_bucket\{stage="0",le="60"\} 1\n/);
  assert.match(text, /\nflotilla_rollout_stage_duration_seconds_sum\{stage="0"\} 42\n/);
  assert.doesNotMatch(
    text,
    /stage_duration_seconds_count\{stage="1"\}/,
    'a running stage has no duration yet',
  );
});

test('the-render-sandbox-level-is-one-series-set-to-1', () => {
  const m = new HubMetrics({ list: () => [] }, () => NOW);
  assert.doesNotMatch(m.render(), /flotilla_render_sandbox\{/, 'nothing before the hub found it');
  m.renderSandbox('network');
  const text = m.render();
  assert.match(text, /\nflotilla_render_sandbox\{level="network"\} 1\n/);
  assert.match(text, /\nflotilla_render_sandbox\{level="user"\} 0\n/);
  assert.match(text, /\nflotilla_render_sandbox\{level="none"\} 0\n/);
});

test('memory-is-split-into-heap-and-history-so-growth-can-be-attributed', () => {
  const m = new HubMetrics({ list: () => [] }, () => NOW);
  assert.doesNotMatch(m.render(), /\nflotilla_history_entries /, 'no history wired: no series');
  m.historyFrom(() => ({ entries: 1_234, bytes: 567_890 }));
  const text = m.render();
  const value = (name: string) => Number(new RegExp(`\\n${name} (\\d+)\\n`).exec(text)?.[1]);
  assert.ok(value('process_resident_memory_bytes') > 0);
  assert.ok(value('nodejs_heap_size_used_bytes') > 0);
  assert.ok(value('nodejs_heap_size_used_bytes') <= value('nodejs_heap_size_total_bytes'));
  assert.equal(value('flotilla_history_entries'), 1_234);
  assert.equal(value('flotilla_history_bytes'), 567_890);
});
