// The simulator's configuration and hub lists, without servers.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { compileSimConfig } from './config.js';
import { hubListFor } from './sim-agent.js';

const base = { nats: 'nats://127.0.0.1:4222', agents: 3, auth: { kind: 'token' as const } };

describe('simulator hub addresses', () => {
  test('several-hub-replicas-are-accepted-comma-separated', () => {
    const cfg = compileSimConfig({ ...base, hub: '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3' }, '/tmp');
    assert.equal(cfg.hub, '127.0.0.1:1,127.0.0.1:2,127.0.0.1:3');
  });

  test('a-hub-list-entry-without-a-port-is-refused-naming-the-field', () => {
    assert.throws(
      () => compileSimConfig({ ...base, hub: '127.0.0.1:1,127.0.0.1' }, '/tmp'),
      (err: unknown) => err instanceof ConfigError && /hub/.test(err.message),
    );
  });

  test('agents-start-at-different-replicas-by-the-index-their-name-ends-with', () => {
    const hubs = 'a:1,b:2,c:3';
    assert.equal(hubListFor(hubs, 'sim-00000'), 'a:1,b:2,c:3');
    assert.equal(hubListFor(hubs, 'sim-00001'), 'b:2,c:3,a:1');
    assert.equal(hubListFor(hubs, 'sim-00005'), 'c:3,a:1,b:2');
    assert.equal(hubListFor('a:1', 'sim-00007'), 'a:1');
  });
});
