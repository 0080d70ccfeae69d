// DriftDetector with a fake of our own KubeApi surface: debouncing and pausing.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import type { ApplyRequestOptions } from '../kube/types.js';
import { DriftDetector } from './detector.js';
import type { ManagedObject } from './managed.js';

const desired: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'c', namespace: 'd', labels: { 'flotilla.dev/bundle': 'b' } },
  data: { a: '1' },
};
const live = (a: string, rv: string): KubeObject => ({
  ...desired,
  metadata: { ...desired.metadata, resourceVersion: rv },
  data: { a },
});

class FakeKube {
  dryRuns = 0;
  writes = 0;
  current = live('1', '1');
  async apply(obj: KubeObject, opts?: ApplyRequestOptions): Promise<KubeObject> {
    if (opts?.dryRun) {
      this.dryRuns++;
      return {
        ...obj,
        metadata: { ...obj.metadata, resourceVersion: this.current.metadata.resourceVersion },
      };
    }
    this.writes++;
    this.current = live(
      String((obj.data as { a: string }).a),
      String(Number(this.current.metadata.resourceVersion) + 1),
    );
    return this.current;
  }
}

function setup(): { kube: FakeKube; det: DriftDetector; published: string[] } {
  const kube = new FakeKube();
  const published: string[] = [];
  const det = new DriftDetector(
    kube,
    { publish: (kind) => (published.push(kind), { id: String(published.length) }) },
    { logger: silentLogger(), debounceMs: 20 },
  );
  const m: ManagedObject = {
    bundle: 'b',
    mode: 'enforce',
    force: true,
    ignore: [],
    object: desired,
  };
  det.setManaged(new Map([['/ConfigMap/d/c', m]]), 'rev');
  return { kube, det, published };
}

async function idle(det: DriftDetector): Promise<void> {
  while (det.backlog > 0) await new Promise((r) => setTimeout(r, 5));
}

it('a-burst-of-events-for-one-object-is-checked-once-and-healed-once', async () => {
  const { kube, det, published } = setup();
  for (let i = 2; i <= 10; i++) {
    kube.current = live(`x${i}`, String(i));
    det.onEvent({ type: 'MODIFIED', object: kube.current });
  }
  await idle(det);
  assert.equal(kube.dryRuns, 1);
  assert.equal(kube.writes, 1);
  assert.deepEqual(published, ['drift-detected', 'drift-corrected']);
  // The event of our own heal matches what we wrote: no dry-run at all.
  det.onEvent({ type: 'MODIFIED', object: kube.current });
  await idle(det);
  assert.equal(kube.dryRuns, 1);
  det.stop();
});

it('events-during-an-apply-wait-and-are-checked-after-it', async () => {
  const { kube, det, published } = setup();
  det.pause();
  kube.current = live('changed', '2');
  det.onEvent({ type: 'MODIFIED', object: kube.current });
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(kube.dryRuns, 0);
  det.resume();
  await idle(det);
  assert.deepEqual(published, ['drift-detected', 'drift-corrected']);
  det.stop();
});

it('events-of-unmanaged-objects-are-ignored', async () => {
  const { kube, det } = setup();
  det.onEvent({
    type: 'MODIFIED',
    object: {
      ...live('z', '5'),
      metadata: { name: 'other', namespace: 'd', resourceVersion: '5' },
    },
  });
  await idle(det);
  assert.equal(kube.dryRuns, 0);
  det.stop();
});
