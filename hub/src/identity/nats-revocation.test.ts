// Unit tests of NATS revocation: what the authority records and what the publisher
// signs and sends. The NATS request is our own ClaimsSender interface, faked here; the
// real server is exercised in integration-tests/src/identity/nats-revocation.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { createUser } from '@nats-io/nkeys';
import { silentLogger } from '@flotilla/common';
import { IdentityAuthority } from './authority.js';
import { createNatsAuthSetup } from './nats-jwt.js';
import { NatsRevocationPublisher } from './nats-revocation.js';
import { createCsr, generateKeyPem } from './pki.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function claimsOf(jwt: string): {
  iss: string;
  sub: string;
  iat: number;
  nats: { revocations?: Record<string, number>; limits: Record<string, unknown> };
} {
  return JSON.parse(
    Buffer.from(jwt.split('.')[1] as string, 'base64url').toString('utf8'),
  ) as ReturnType<typeof claimsOf>;
}

async function registered(now: () => number): Promise<{ a: IdentityAuthority; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-nats-revocation-test-'));
  dirs.push(dir);
  const a = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
    now,
  });
  await a.start();
  for (const name of ['edge-eu', 'edge-us']) {
    const { token } = await a.addCluster(name, {});
    await a.register(name, token, createCsr(generateKeyPem(), name));
  }
  return { a, dir };
}

test('revoke-lists-every-nats-key-of-the-cluster-persists-them-and-drops-them-once-expired', async () => {
  let t = 1_800_000_000_000;
  const { a, dir } = await registered(() => t);
  const [k1, k2, other] = [
    createUser().getPublicKey(),
    createUser().getPublicKey(),
    createUser().getPublicKey(),
  ];
  await a.recordNatsKey('edge-eu', k1, t + 10_000);
  await a.recordNatsKey('edge-eu', k2, t + 20_000);
  await a.recordNatsKey('edge-us', other, t + 20_000);
  let pushed = 0;
  a.setNatsRevoker(async () => {
    pushed += 1;
    return true;
  });
  await a.revoke('edge-eu');
  assert.equal(pushed, 1, 'revoke pushes the revocations');
  assert.deepEqual(
    a.natsRevocations(),
    { [k1]: t / 1000, [k2]: t / 1000 },
    'both keys of edge-eu, none of edge-us',
  );

  // A restarted hub knows them (identity-state.json) and pushes them again.
  const restarted = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
    now: () => t,
  });
  await restarted.start();
  assert.deepEqual(Object.keys(restarted.natsRevocations()).sort(), [k1, k2].sort());

  t += 15_000;
  assert.deepEqual(
    Object.keys(a.natsRevocations()),
    [k2],
    'the JWT of k1 has expired: no need to list it',
  );
});

test('the-publisher-signs-the-account-with-the-operator-signing-key-and-lists-the-revocations', async () => {
  const setup = createNatsAuthSetup({ resolverDir: '/tmp/x' });
  const sent: string[] = [];
  const p = new NatsRevocationPublisher({
    url: 'nats://127.0.0.1:1',
    systemCreds: new Uint8Array(),
    operatorSigningSeed: setup.operatorSigningSeed,
    accountSeed: setup.accountSeed,
    logger: silentLogger(),
    send: async (jwt) => {
      sent.push(jwt);
      return JSON.stringify({ data: { code: 200, message: 'jwt updated' } });
    },
  });
  const key = createUser().getPublicKey();
  p.start(() => ({ [key]: 1_800_000_000 }));
  assert.equal(await p.push(), true);
  p.stop();
  const claims = claimsOf(sent.at(-1) as string);
  assert.deepEqual(claims.nats.revocations, { [key]: 1_800_000_000 });
  assert.match(setup.serverConfig, new RegExp(claims.sub), 'the account the server knows');
  const operatorClaims = claimsOf(
    /^operator: (\S+)$/m.exec(setup.serverConfig)?.[1] as string,
  ) as unknown as { nats: { signing_keys: string[] } };
  assert.deepEqual(
    operatorClaims.nats.signing_keys,
    [claims.iss],
    'signed by the operator signing key the server trusts',
  );
  assert.match(setup.serverConfig, /type: full/);
});

test('a-refused-or-failed-push-is-retried-until-it-lands', async () => {
  const setup = createNatsAuthSetup();
  const replies = [
    () => Promise.reject(new Error('connect ECONNREFUSED')),
    () => Promise.resolve(JSON.stringify({ error: { code: 500, description: 'jwt is older' } })),
    () => Promise.resolve(JSON.stringify({ data: { code: 200 } })),
  ];
  let calls = 0;
  let landed!: () => void;
  const done = new Promise<void>((r) => (landed = r));
  const p = new NatsRevocationPublisher({
    url: 'nats://127.0.0.1:1',
    systemCreds: new Uint8Array(),
    operatorSigningSeed: setup.operatorSigningSeed,
    accountSeed: setup.accountSeed,
    logger: silentLogger(),
    retryMs: 5,
    send: async () => {
      const reply = await (replies[calls++] as () => Promise<string>)();
      if (calls === replies.length) landed();
      return reply;
    },
  });
  // The retry timer is unref'd (it must not keep a stopping hub alive): hold the loop open here.
  const keepAlive = setInterval(() => undefined, 1_000);
  p.start(() => ({}));
  await done;
  clearInterval(keepAlive);
  p.stop();
  assert.equal(calls, 3, 'one failure, one refusal, then the push that landed');
});
