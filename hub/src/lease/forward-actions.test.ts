// Rollout actions forwarded to the lease holder over a real nats-server: the holder's
// answer (the rollout, or its typed error) is the caller's; with no holder, or a holder
// that does not answer, the caller is told UNAVAILABLE at once or after the timeout.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { FlotillaError, NotFoundError, silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';
import { NatsLink } from '../status/nats-link.js';
import type { RolloutAction } from '../rollout/machine.js';
import type { RolloutView } from '../rollout/view.js';
import {
  MAX_ACTION_BYTES,
  RolloutActionForwarding,
  decodeAction,
  decodeReply,
  encodeAction,
  encodeReply,
} from './forward-actions.js';
import type { ActAsHolder } from './forward-actions.js';

const skip = await requireEnv(['nats']);
const servers: TestNats[] = [];
const links: NatsLink[] = [];
after(async () => {
  await Promise.all(links.map((l) => l.stop()));
  await Promise.all(servers.map((s) => s.stop()));
});

const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

function view(bundle: string, phase: string, clusters = 1): RolloutView {
  return {
    bundle,
    id: 'r1',
    revision: 'abc',
    phase,
    reason: '',
    stage: 0,
    onFailure: 'halt',
    progressDeadlineMs: 0,
    counts: {},
    stages: [],
    clusters: Array.from({ length: clusters }, (_, i) => ({ name: `c${i}` })),
    startedAt: '',
    updatedAt: '',
    endedAt: null,
  } as unknown as RolloutView;
}

/** A lease whose holding the test decides. */
class FakeLease {
  leading = false;
  private readonly listeners = new Set<(l: boolean) => void>();
  onChange(l: (leading: boolean) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(leading: boolean): void {
    this.leading = leading;
    for (const l of this.listeners) l(leading);
  }
}

test('forwarded-actions-and-answers-are-bounded-checked-and-keep-the-error-code', () => {
  const a = { bundle: 'web', action: 'approve' as RolloutAction, by: 'alice', from: 'hub-a' };
  assert.deepEqual(decodeAction(encodeAction({ ...a, revision: 'abc' })), {
    ...a,
    revision: 'abc',
  });
  assert.deepEqual(decodeAction(encodeAction(a)), a);
  assert.throws(() => decodeAction(new Uint8Array(MAX_ACTION_BYTES + 1)), /over the limit/);
  assert.throws(() => decodeAction(bytes({ ...a, action: 'explode' })), /unknown action "explode"/);
  assert.throws(() => decodeAction(bytes({ ...a, by: '' })), /"by" must be a non-empty string/);
  assert.throws(() => decodeAction(bytes({ ...a, revision: 3 })), /"revision" must be a string/);
  assert.equal(decodeReply(encodeReply({ view: view('web', 'Paused') })).view.phase, 'Paused');
  assert.throws(
    () =>
      decodeReply(
        encodeReply({ error: { code: 'NOT_FOUND', message: 'no rollout', retryable: false } }),
      ),
    (err: unknown) => err instanceof FlotillaError && err.code === 'NOT_FOUND',
  );
  // A rollout too large for one NATS message goes without its clusters.
  const big = encodeReply({ view: view('web', 'Progressing', 10_000) }, 50_000);
  assert.ok(big.length < 50_000);
  assert.deepEqual(decodeReply(big).clustersOmitted, true);
});

test(
  'a-rollout-action-on-a-follower-is-answered-by-the-lease-holder-only',
  { skip, timeout: 60_000 },
  async () => {
    const nats = await startNats({ jetstream: false });
    servers.push(nats);
    const acted: string[] = [];
    const make = (replicaId: string, act?: ActAsHolder, timeoutMs = 5_000) => {
      const link = new NatsLink({ url: nats.url, logger: silentLogger() });
      links.push(link);
      link.start();
      const lease = new FakeLease();
      const fwd = new RolloutActionForwarding({
        connection: () => link.connection(),
        hubId: 'fleet-hub',
        replicaId,
        lease,
        act:
          act ??
          (async (bundle, action, by) => {
            acted.push(`${replicaId}:${bundle}:${action}:${by}`);
            if (bundle === 'missing') throw new NotFoundError('rollout of bundle', bundle);
            return view(bundle, action === 'pause' ? 'Paused' : 'Progressing');
          }),
        local: () => view('web', 'Progressing', 3),
        logger: silentLogger(),
        timeoutMs,
      });
      fwd.start();
      return { fwd, lease };
    };
    const a = make('hub-a');
    const b = make('hub-b');
    const c = make('hub-c');
    await Promise.all(links.map((l) => l.connection()));

    // Nobody holds the lease: told at once, not after the timeout.
    let start = Date.now();
    await assert.rejects(b.fwd.forward('web', 'pause', 'alice'), (err: unknown) => {
      assert.ok(err instanceof FlotillaError && err.code === 'UNAVAILABLE' && err.retryable);
      assert.match(err.message, /no hub replica holds the once-only work lease right now/);
      return true;
    });
    assert.ok(Date.now() - start < 2_000, `no responders took ${Date.now() - start} ms`);

    a.lease.set(true);
    await sleep(300); // the holder's subscription reaches the server
    assert.equal((await b.fwd.forward('web', 'pause', 'alice')).phase, 'Paused');
    assert.equal((await c.fwd.forward('web', 'resume', 'bob', 'abc')).phase, 'Progressing');
    assert.deepEqual(acted, ['hub-a:web:pause:alice', 'hub-a:web:resume:bob']);
    // The holder's error is the caller's, with its code.
    await assert.rejects(
      b.fwd.forward('missing', 'approve', 'alice'),
      (err: unknown) => err instanceof FlotillaError && err.code === 'NOT_FOUND',
    );

    // The lease moves: only the new holder answers.
    a.lease.set(false);
    c.lease.set(true);
    await sleep(300);
    await b.fwd.forward('web', 'pause', 'carol');
    assert.equal(acted.at(-1), 'hub-c:web:pause:carol');

    // A holder that never answers: UNAVAILABLE after the timeout, saying so.
    c.lease.set(false);
    const d = make('hub-d', () => new Promise(() => undefined));
    const e = make('hub-e', undefined, 500);
    await Promise.all(links.map((l) => l.connection()));
    d.lease.set(true);
    await sleep(300);
    start = Date.now();
    await assert.rejects(
      e.fwd.forward('web', 'abort', 'alice'),
      /did not answer within 500 ms; retry/,
    );
    assert.ok(Date.now() - start >= 450);
    for (const r of [a, b, c, d, e]) await r.fwd.stop();
  },
);
