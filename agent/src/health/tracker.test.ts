// The tracker's publication rule: a health-changed event when a bundle's state changes or
// when a new revision (or digest) was applied since its last event, never more, each
// coalesced over the debounce window. Timers are node:test's mock timers, so no test
// waits on the clock.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, it, mock } from 'node:test';
import { silentLogger } from '@flotilla/common';
import type { EventKind, HealthChangedData, KubeObject } from '@flotilla/common';
import { HealthTracker } from './tracker.js';
import type { HealthReporter } from './tracker.js';

const DEBOUNCE_MS = 200;

// Records what would go to NATS.
class FakeReporter implements HealthReporter {
  readonly events: HealthChangedData[] = [];
  publish<T>(kind: EventKind, data: T): { id: string } {
    assert.equal(kind, 'health-changed');
    this.events.push(data as HealthChangedData);
    return { id: String(this.events.length) };
  }
}

const configMap: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'settings', namespace: 'apps' },
  data: { a: '1' },
};
const deployment = (available: number): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'apps', generation: 1 },
  spec: { replicas: 1 },
  status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: available },
});
const CM_KEY = '/ConfigMap/apps/settings';
const DEPLOY_KEY = 'apps/Deployment/apps/web';

let reporter: FakeReporter;
let tracker: HealthTracker;

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout'] });
  reporter = new FakeReporter();
  tracker = new HealthTracker(reporter, { logger: silentLogger(), debounceMs: DEBOUNCE_MS });
});

afterEach(() => {
  tracker.stop();
  mock.timers.reset();
});

function manage(members: Record<string, string>, revision: string, digest?: string): void {
  tracker.setManaged(new Map(Object.entries(members)), new Map(), revision, digest);
}

it('health-is-republished-once-per-applied-revision', () => {
  manage({ [CM_KEY]: 'config' }, 'rev-1', 'sha256:d1');
  tracker.observe({ type: 'ADDED', object: configMap });
  mock.timers.tick(DEBOUNCE_MS);
  assert.deepEqual(
    reporter.events.map((e) => [e.bundle, e.revision, e.digest, e.state, e.previous]),
    [['config', 'rev-1', 'sha256:d1', 'Ready', '']],
  );
  // A new commit: the state stays Ready, and is said again for the new revision.
  manage({ [CM_KEY]: 'config' }, 'rev-2', 'sha256:d2');
  mock.timers.tick(DEBOUNCE_MS - 1);
  assert.equal(reporter.events.length, 1, 'the debounce still holds it');
  mock.timers.tick(1);
  assert.deepEqual(
    reporter.events.slice(1).map((e) => [e.revision, e.digest, e.state, e.previous]),
    [['rev-2', 'sha256:d2', 'Ready', 'Ready']],
  );
  // A retry or resync of the same state, and watch events that change nothing: silence.
  manage({ [CM_KEY]: 'config' }, 'rev-2', 'sha256:d2');
  tracker.observe({ type: 'MODIFIED', object: configMap });
  mock.timers.tick(DEBOUNCE_MS * 5);
  assert.equal(reporter.events.length, 2);
});

it('a-new-digest-at-the-same-revision-is-published', () => {
  manage({ [CM_KEY]: 'config' }, 'rev-1', 'sha256:d1');
  tracker.observe({ type: 'ADDED', object: configMap });
  mock.timers.tick(DEBOUNCE_MS);
  manage({ [CM_KEY]: 'config' }, 'rev-1', 'sha256:d1-relabelled');
  mock.timers.tick(DEBOUNCE_MS);
  assert.deepEqual(
    reporter.events.map((e) => e.digest),
    ['sha256:d1', 'sha256:d1-relabelled'],
  );
});

it('a-burst-of-changes-is-one-event-per-window', () => {
  manage({ [DEPLOY_KEY]: 'web' }, 'rev-1', 'sha256:d1');
  tracker.observe({ type: 'ADDED', object: deployment(0) });
  tracker.observe({ type: 'MODIFIED', object: deployment(0) });
  mock.timers.tick(DEBOUNCE_MS);
  assert.deepEqual(
    reporter.events.map((e) => [e.state, e.reasons]),
    [['Progressing', [`${DEPLOY_KEY}: 0 of 1 replicas available`]]],
  );
  // Available, then back to unavailable and available again within one window: no change.
  tracker.observe({ type: 'MODIFIED', object: deployment(1) });
  tracker.observe({ type: 'MODIFIED', object: deployment(0) });
  tracker.observe({ type: 'MODIFIED', object: deployment(1) });
  mock.timers.tick(DEBOUNCE_MS);
  assert.deepEqual(
    reporter.events.map((e) => [e.revision, e.state, e.previous]),
    [
      ['rev-1', 'Progressing', ''],
      ['rev-1', 'Ready', 'Progressing'],
    ],
  );
  tracker.observe({ type: 'MODIFIED', object: deployment(1) });
  mock.timers.tick(DEBOUNCE_MS * 5);
  assert.equal(reporter.events.length, 2);
});

it('every-bundle-gets-its-own-event-at-a-new-revision', () => {
  manage({ [CM_KEY]: 'config', [DEPLOY_KEY]: 'web' }, 'rev-1', 'sha256:d1');
  tracker.observe({ type: 'ADDED', object: configMap });
  tracker.observe({ type: 'ADDED', object: deployment(1) });
  mock.timers.tick(DEBOUNCE_MS);
  manage({ [CM_KEY]: 'config', [DEPLOY_KEY]: 'web' }, 'rev-2', 'sha256:d2');
  mock.timers.tick(DEBOUNCE_MS);
  assert.deepEqual(reporter.events.map((e) => `${e.bundle}@${e.revision}:${e.state}`).sort(), [
    'config@rev-1:Ready',
    'config@rev-2:Ready',
    'web@rev-1:Ready',
    'web@rev-2:Ready',
  ]);
});

it('events-carry-no-digest-when-none-was-applied', () => {
  manage({ [CM_KEY]: 'config' }, 'rev-1');
  tracker.observe({ type: 'ADDED', object: configMap });
  mock.timers.tick(DEBOUNCE_MS);
  assert.equal(reporter.events.length, 1);
  assert.equal('digest' in (reporter.events[0] as object), false);
});

it('an-object-reported-before-it-became-managed-keeps-its-health', () => {
  // The apply creates the object and its watch reports it before the apply ends and makes
  // it managed: that event must count, or the bundle would stay Progressing ("not found").
  tracker.observe({ type: 'ADDED', object: deployment(1) });
  tracker.setManaged(
    new Map([[DEPLOY_KEY, 'web']]),
    new Map(),
    'rev-1',
    'sha256:d1',
    new Map([['web', 'sha256:web1']]),
  );
  assert.deepEqual(tracker.readyAt('web', 'sha256:web1'), { ready: true });
});

it('ready-at-needs-the-bundle-tracked-at-that-digest-and-every-object-ready', () => {
  const states: string[] = [];
  tracker = new HealthTracker(reporter, {
    logger: silentLogger(),
    debounceMs: DEBOUNCE_MS,
    onState: (b, s) => states.push(`${b}:${s}`),
  });
  tracker.setManaged(
    new Map([[DEPLOY_KEY, 'web']]),
    new Map(),
    'rev-1',
    'sha256:d1',
    new Map([
      ['web', 'sha256:web1'],
      ['empty', 'sha256:e1'],
    ]),
  );
  tracker.observe({ type: 'ADDED', object: deployment(0) });
  assert.deepEqual(tracker.readyAt('web', 'sha256:web1'), {
    ready: false,
    reason: `Progressing (${DEPLOY_KEY}: 0 of 1 replicas available)`,
  });
  assert.deepEqual(tracker.readyAt('web', 'sha256:web2'), {
    ready: false,
    reason: 'it is not applied at its current version yet',
  });
  // A bundle applied with no objects to watch is ready at its digest.
  assert.deepEqual(tracker.readyAt('empty', 'sha256:e1'), { ready: true });
  tracker.observe({ type: 'MODIFIED', object: deployment(1) });
  assert.deepEqual(tracker.readyAt('web', 'sha256:web1'), { ready: true });
  mock.timers.tick(DEBOUNCE_MS);
  assert.deepEqual(states, ['web:Ready']);
});
