import assert from 'node:assert/strict';
import test from 'node:test';
import { createUser } from '@nats-io/nkeys';
import { EVENT_LIMITS } from '@flotilla/common';
import { agentUserJwt, createNatsAuthSetup } from './nats-jwt.js';
import { clusterOfAgentJwt, violationOf } from './nats-violations.js';

const setup = createNatsAuthSetup();
const claims = (jwt: string) =>
  JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
    name: string;
    nats: Record<string, unknown> & { pub: { allow: string[] }; sub: { allow: string[] } };
  };

test('an-agent-jwt-allows-exactly-its-clusters-event-subjects-within-limits', () => {
  const jwt = agentUserJwt(setup.accountSeed, 'edge-eu', createUser().getPublicKey());
  const { nats } = claims(jwt);
  assert.deepEqual(nats.pub.allow.sort(), [
    'flotilla.events.edge-eu.applied',
    'flotilla.events.edge-eu.apply-failed',
    'flotilla.events.edge-eu.drift-corrected',
    'flotilla.events.edge-eu.drift-detected',
    'flotilla.events.edge-eu.events-dropped',
    'flotilla.events.edge-eu.health-changed',
  ]);
  assert.deepEqual(nats.sub.allow, ['_INBOX_edge-eu.>']);
  assert.equal(nats.payload, EVENT_LIMITS.eventBytes);
  assert.equal(nats.subs, 10);
  assert.deepEqual(nats.allowed_connection_types, ['STANDARD']);
});

test('a-disconnect-over-the-payload-limit-names-the-agents-cluster', () => {
  const jwt = agentUserJwt(setup.accountSeed, 'rogue', createUser().getPublicKey());
  assert.equal(clusterOfAgentJwt(jwt), 'rogue');
  assert.deepEqual(violationOf({ reason: 'Maximum Message Payload Exceeded', client: { jwt } }), {
    cluster: 'rogue',
    what: 'nats.payload',
    reason: `NATS closed the agent's connection: Maximum Message Payload Exceeded (a message over ${EVENT_LIMITS.eventBytes} bytes)`,
  });
  // Ordinary disconnects, and users that are not agents, are not violations.
  assert.equal(violationOf({ reason: 'Client Closed', client: { jwt } }), undefined);
  const hubJwt = setup.hubCreds.split('\n')[1] as string;
  assert.equal(
    violationOf({ reason: 'Maximum Message Payload Exceeded', client: { jwt: hubJwt } }),
    undefined,
  );
  assert.equal(violationOf({ reason: 'Maximum Message Payload Exceeded' }), undefined);
  assert.equal(clusterOfAgentJwt('not.a.jwt'), undefined);
});
