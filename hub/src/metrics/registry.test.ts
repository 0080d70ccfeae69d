import assert from 'node:assert/strict';
import test from 'node:test';
import { Counter, Gauge, Histogram, Registry } from './registry.js';

test('registry-prints-prometheus-text-format', () => {
  const r = new Registry();
  r.add(new Counter('x_total', 'Xs.')).inc({ kind: 'a"b' }, 2);
  r.add(new Gauge('g', 'G.', () => [[{ state: 'Ready' }, 3]]));
  r.add(new Histogram('h_seconds', 'H.', [0.1, 1])).observe({}, 0.5);
  assert.equal(
    r.render(),
    `# HELP x_total Xs.
# TYPE x_total counter
x_total{kind="a\\"b"} 2
# HELP g G.
# TYPE g gauge
g{state="Ready"} 3
# HELP h_seconds H.
# TYPE h_seconds histogram
h_seconds_bucket{le="0.1"} 0
h_seconds_bucket{le="1"} 1
h_seconds_bucket{le="+Inf"} 1
h_seconds_sum 0.5
h_seconds_count 1
`,
  );
  assert.throws(() => r.add(new Gauge('g', 'again')), /registered twice/);
});
