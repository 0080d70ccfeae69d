// NATS decentralized auth (operator → account → user JWTs, ed25519 nkeys), written by
// hand: the format is small and stable, and the only npm package for it is a 0.0.x
// pre-release. The hub holds the FLOTILLA account's seed and signs one user JWT per
// agent, allowed to publish only its own cluster's event subjects, one per kind
// (flotilla.events.<cluster>.<kind>), and to receive replies on its own inbox prefix,
// within per-user limits nats-server enforces (AGENT_NATS_LIMITS). The seed of each
// user stays in its agent. Session events (flotilla.hub.sessions.<cluster>) are the
// hub's alone: no agent JWT allows them.
import { createHash, randomBytes } from 'node:crypto';
import { createAccount, createOperator, createUser, fromPublic, fromSeed } from '@nats-io/nkeys';
import type { KeyPair } from '@nats-io/nkeys';
import { EVENT_LIMITS, EVENT_TYPES, ValidationError, eventSubject } from '@flotilla/common';
import type { EventKind } from '@flotilla/common';
import { isSessionKind } from '../status/session-events.js';
import { base32Encode } from './base32.js';

/** Subject prefix agents publish events under (`flotilla.events.<cluster>.<kind>`). */
export const EVENTS_PREFIX = 'flotilla.events';

/** The inbox prefix an agent of `cluster` must use (connect option inboxPrefix), so its replies are its own. */
export function agentInboxPrefix(cluster: string): string {
  return `_INBOX_${cluster}`;
}

const b64url = (data: string | Uint8Array): string => Buffer.from(data).toString('base64url');

/** Signs claims as a NATS JWT (v2) with the issuer's key pair. */
export function encodeJwt(
  claims: Record<string, unknown>,
  issuer: KeyPair,
  subject: string,
  name: string,
  expiresAtMs?: number,
  issuedAtMs = Date.now(),
): string {
  const body: Record<string, unknown> = {
    jti: '',
    iat: Math.floor(issuedAtMs / 1000),
    iss: issuer.getPublicKey(),
    name,
    sub: subject,
    ...(expiresAtMs ? { exp: Math.floor(expiresAtMs / 1000) } : {}),
    nats: { ...claims, version: 2 },
  };
  // jti as nats-io/jwt computes it: base32 of sha512/256 over the claims without jti.
  body.jti = base32Encode(
    createHash('sha512-256')
      .update(JSON.stringify({ ...body, jti: randomBytes(8).toString('hex') }))
      .digest(),
  );
  const head = b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const payload = b64url(JSON.stringify(body));
  const sig = b64url(issuer.sign(new TextEncoder().encode(`${head}.${payload}`)));
  return `${head}.${payload}.${sig}`;
}

/** The event kinds agents publish (every kind but the hub's session events). */
export const AGENT_EVENT_KINDS: readonly EventKind[] = (
  Object.keys(EVENT_TYPES) as EventKind[]
).filter((k) => !isSessionKind(k));

/**
 * What nats-server enforces on each agent's connection (user JWT claims, checked on
 * nats-server 2.12): at most 10 subscriptions (the client needs one, for replies), a
 * message (headers included) of at most EVENT_LIMITS.eventBytes — a bigger one closes the
 * connection ("Maximum Message Payload Exceeded", which the hub reports) — and plain
 * client connections only (no leaf node, websocket or MQTT). The JWT's `data` limit is
 * not enforced by nats-server 2.12 (nor is any rate): the hub limits each cluster's
 * event rate itself (status/event-rate.ts), and the stream bounds what one cluster
 * keeps (events-consumer.ts).
 */
export const AGENT_NATS_LIMITS = {
  subs: 10,
  payload: EVENT_LIMITS.eventBytes,
  data: -1,
  allowedConnectionTypes: ['STANDARD'],
} as const;

/** Subjects an agent of `cluster` may publish on: flotilla.events.<cluster>.<kind>, one per agent kind. */
export function agentPublishSubjects(cluster: string): string[] {
  return AGENT_EVENT_KINDS.map((k) => eventSubject(cluster, k));
}

/**
 * The user JWT of an agent: publish only its own event subjects (exact, so a flood cannot
 * spread over made-up subjects and escape the stream's per-subject limits), within
 * AGENT_NATS_LIMITS.
 */
export function agentUserJwt(
  accountSeed: string,
  cluster: string,
  userPublicKey: string,
  expiresAtMs?: number,
): string {
  let user: KeyPair;
  try {
    user = fromPublic(userPublicKey);
  } catch {
    throw new ValidationError('NATS public key is not a valid nkey');
  }
  if (!userPublicKey.startsWith('U'))
    throw new ValidationError('NATS public key must be a user key (U...)');
  const account = fromSeed(new TextEncoder().encode(accountSeed));
  const inbox = agentInboxPrefix(cluster);
  return encodeJwt(
    {
      pub: { allow: agentPublishSubjects(cluster) },
      sub: { allow: [`${inbox}.>`] },
      subs: AGENT_NATS_LIMITS.subs,
      data: AGENT_NATS_LIMITS.data,
      payload: AGENT_NATS_LIMITS.payload,
      allowed_connection_types: [...AGENT_NATS_LIMITS.allowedConnectionTypes],
      type: 'user',
    },
    account,
    user.getPublicKey(),
    `agent-${cluster}`,
    expiresAtMs,
  );
}

/** A creds file (what `nsc` writes) for a user JWT and seed. */
export function credsFile(jwt: string, seed: string): string {
  return `-----BEGIN NATS USER JWT-----\n${jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n${seed}\n------END USER NKEY SEED------\n`;
}

/** Everything a new NATS installation for Flotilla needs: server config lines and the hub's secrets. */
export interface NatsAuthSetup {
  /** nats-server config lines (operator, system account, `full` resolver with both accounts preloaded). */
  serverConfig: string;
  /** Seed of the FLOTILLA account: the hub signs agents' user JWTs with it (nats.accountSeedFile). */
  accountSeed: string;
  /** The hub's own credentials (all subjects of the account) (nats.credsFile). */
  hubCreds: string;
  /** A system-account user: the hub pushes account updates (revocations) with it (nats.systemCredsFile). */
  systemCreds: string;
  /** Seed of an operator signing key: the hub re-signs the FLOTILLA account JWT with it (nats.operatorSigningKeyFile). */
  operatorSigningSeed: string;
}

/** Options of createNatsAuthSetup. */
export interface NatsAuthSetupOptions {
  /** Where nats-server's `full` resolver keeps account JWTs (default /data/jwt, next to the JetStream store). */
  resolverDir?: string;
}

const ACCOUNT_LIMITS = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
};

/**
 * The FLOTILLA account JWT (JetStream enabled). `revocations` maps a user public key to
 * a time (s): the server refuses that user's JWTs issued at or before it, and closes
 * its connections when this JWT reaches it. init and the hub's revocations both sign it
 * here, so every version carries the same limits.
 */
export function flotillaAccountJwt(
  signer: KeyPair,
  accountPublicKey: string,
  revocations: Record<string, number> = {},
  issuedAtMs = Date.now(),
): string {
  return encodeJwt(
    {
      type: 'account',
      limits: { ...ACCOUNT_LIMITS, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 },
      default_permissions: { pub: {}, sub: {} },
      ...(Object.keys(revocations).length > 0 ? { revocations } : {}),
    },
    signer,
    accountPublicKey,
    'FLOTILLA',
    undefined,
    issuedAtMs,
  );
}

/** Generates operator (with a signing key), system and FLOTILLA accounts, and the hub's users. Run once per installation. */
export function createNatsAuthSetup(opts: NatsAuthSetupOptions = {}): NatsAuthSetup {
  const operator = createOperator();
  const signing = createOperator();
  const sys = createAccount();
  const account = createAccount();
  const hub = createUser();
  const sysUser = createUser();
  const dec = (b: Uint8Array): string => new TextDecoder().decode(b);
  // The operator's identity seed is dropped here: the hub only ever needs the signing
  // key, which the operator JWT lists and which could be replaced by a new init.
  const operatorJwt = encodeJwt(
    {
      type: 'operator',
      system_account: sys.getPublicKey(),
      signing_keys: [signing.getPublicKey()],
    },
    operator,
    operator.getPublicKey(),
    'flotilla',
  );
  const sysJwt = encodeJwt(
    { type: 'account', limits: ACCOUNT_LIMITS },
    operator,
    sys.getPublicKey(),
    'SYS',
  );
  // Back-dated 1 s: nats-server keeps a stored account JWT over the preload only when it
  // was issued strictly later, and the hub may push one within the same second.
  const accountJwt = flotillaAccountJwt(operator, account.getPublicKey(), {}, Date.now() - 1_000);
  const hubJwt = encodeJwt(
    { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user' },
    account,
    hub.getPublicKey(),
    'flotilla-hub',
  );
  const sysUserJwt = encodeJwt(
    { pub: {}, sub: {}, subs: -1, data: -1, payload: -1, type: 'user' },
    sys,
    sysUser.getPublicKey(),
    'flotilla-hub-system',
  );
  const serverConfig = [
    `operator: ${operatorJwt}`,
    `system_account: ${sys.getPublicKey()}`,
    // A `full` resolver takes account updates at run time ($SYS.REQ.CLAIMS.UPDATE) and
    // keeps them in its directory across restarts; the preload only seeds an empty one
    // (a stored JWT issued later wins over it).
    'resolver: {',
    '  type: full',
    `  dir: ${JSON.stringify(opts.resolverDir ?? '/data/jwt')}`,
    '  allow_delete: false',
    '}',
    'resolver_preload: {',
    `  ${sys.getPublicKey()}: ${sysJwt}`,
    `  ${account.getPublicKey()}: ${accountJwt}`,
    '}',
    '',
  ].join('\n');
  return {
    serverConfig,
    accountSeed: dec(account.getSeed()),
    hubCreds: credsFile(hubJwt, dec(hub.getSeed())),
    systemCreds: credsFile(sysUserJwt, dec(sysUser.getSeed())),
    operatorSigningSeed: dec(signing.getSeed()),
  };
}
