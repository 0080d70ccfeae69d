// Identity records of hub replicas in JetStream KV, against a real nats-server: two
// authorities (two replicas) over one bucket.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import { FlotillaError, createLogger, silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';
import { NatsLink } from '../status/nats-link.js';
import { IdentityAuthority } from './authority.js';
import type { PeerCertificateLike } from './authority.js';
import { BootstrapTokenError, IdentityRefusedError, RenewalTooSoonError } from './errors.js';
import { initIdentityDir, newFirstAdmin } from './init-dir.js';
import { KvIdentityRecords } from './kv-records.js';
import { createCsr, generateKeyPem } from './pki.js';

const skip = await requireEnv(['nats']);
let nats: TestNats | undefined;
const dirs: string[] = [];
const links: NatsLink[] = [];
const authorities: IdentityAuthority[] = [];
const recordsOf = new Map<IdentityAuthority, KvIdentityRecords>();

before(async () => {
  if (!skip) nats = await startNats();
});
after(async () => {
  for (const a of authorities) await a.stop().catch(() => undefined);
  for (const l of links) await l.stop();
  await nats?.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-identity-kv-'));
  dirs.push(dir);
  return dir;
}

/** One hub replica's authority: its own NATS connection, the shared bucket of `hubId`. */
async function replica(
  dir: string,
  hubId: string,
  importFrom?: string,
): Promise<IdentityAuthority> {
  const link = new NatsLink({ url: (nats as TestNats).url, logger: silentLogger() });
  link.start();
  links.push(link);
  const records = new KvIdentityRecords({
    connection: () => link.connection(),
    hubId,
    logger: silentLogger(),
    ...(importFrom ? { importFrom } : {}),
  });
  const a = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
    records,
  });
  authorities.push(a);
  recordsOf.set(a, records);
  await a.start();
  return a;
}

/** What node's tls reports for a certificate. */
function peer(certPem: string): PeerCertificateLike {
  const c = new X509Certificate(certPem);
  const field = (k: string): string | undefined =>
    new RegExp(`(?:^|\\n)${k}=([^\\n]+)`).exec(c.subject)?.[1];
  return {
    subject: { CN: field('CN') as string, O: field('O') as string },
    serialNumber: c.serialNumber,
    valid_to: c.validTo,
  };
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<number> {
  const start = performance.now();
  while (!cond()) {
    if (performance.now() - start > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
  return performance.now() - start;
}

const key = generateKeyPem();
const csrOf = (cluster: string): string => createCsr(key, cluster);

test(
  'two-replicas-spending-one-bootstrap-token-at-the-same-moment-exactly-one-wins-50-times',
  { skip, timeout: 180_000 },
  async () => {
    const dir = await stateDir();
    const a = await replica(dir, 'race');
    const b = await replica(dir, 'race');
    for (let i = 0; i < 50; i++) {
      const name = `edge-${i}`;
      const { token } = await a.addCluster(name, {});
      // Both replicas know the unused token before the race: only compare-and-set decides.
      const id = token.split('.')[1] as string;
      await until(() => recordsOf.get(b)?.view.tokens[id] !== undefined, `replica b sees ${name}`);
      const csr = csrOf(name);
      const outcomes = await Promise.allSettled([
        a.register(name, token, csr),
        b.register(name, token, csr),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o) => o.status === 'rejected');
      assert.equal(won.length, 1, `round ${i}: exactly one registration succeeds`);
      const err = lost[0]?.reason as unknown;
      assert.ok(err instanceof BootstrapTokenError, `round ${i}: ${String(err)}`);
      assert.equal(err.details?.reason, 'used');
      // One certificate was issued for the cluster, on both replicas.
      for (const r of [a, b])
        await until(
          () => Object.keys(r.list().find((c) => c.name === name)?.serials ?? {}).length === 1,
          `round ${i}: one live certificate`,
        );
    }
  },
);

test(
  'a-cluster-revoked-on-one-replica-is-refused-and-its-streams-closed-on-the-other',
  { skip, timeout: 60_000 },
  async () => {
    const dir = await stateDir();
    const a = await replica(dir, 'revoke');
    const b = await replica(dir, 'revoke');
    const { token } = await a.addCluster('edge', {});
    const cert = peer((await a.register('edge', token, csrOf('edge'))).certPem);
    await until(() => {
      try {
        return b.verifyPeer(cert).name === 'edge';
      } catch {
        return false;
      }
    }, 'replica b accepts the certificate');
    const closedOnB: string[] = [];
    b.onRevoke((cluster) => {
      closedOnB.push(cluster);
      return 1;
    });
    await a.revoke('edge');
    // Seen through the KV watch (about 1 s is the promise; tests do not fail on
    // wall-clock time on a loaded machine, so the figure is printed and 10 s is the limit).
    const ms = await until(() => closedOnB.length > 0, 'replica b closes the stream', 10_000);
    console.log(`# seen by replica b ${Math.round(ms)} ms after the revocation`);
    assert.deepEqual(closedOnB, ['edge']);
    assert.throws(() => b.verifyPeer(cert), IdentityRefusedError);
    assert.throws(() => a.verifyPeer(cert), IdentityRefusedError);
  },
);

test(
  'an-api-token-or-person-revoked-on-one-replica-loses-its-watches-on-the-other',
  { skip, timeout: 60_000 },
  async () => {
    const dir = await stateDir();
    const a = await replica(dir, 'people');
    const b = await replica(dir, 'people');
    const { token } = await a.apiTokens.create('dashboard', 0, ['read']);
    await until(() => b.apiTokens.check(token).ok, 'replica b accepts the token');
    const closed: string[] = [];
    b.apiTokens.onRevoke((name) => {
      closed.push(`token ${name}`);
      return 1;
    });
    b.admins.onRevoke((name) => {
      closed.push(`admin ${name}`);
      return 1;
    });
    const alice = createCsr(key, 'alice');
    const issued = await a.admins.add('alice', alice, 0, 'admin flotilla-admin');
    await until(() => {
      try {
        return b.verifyPeer(peer(issued.certPem)).name === 'alice';
      } catch {
        return false;
      }
    }, 'replica b accepts alice');
    await a.apiTokens.revoke('dashboard');
    await a.admins.revoke('alice');
    await until(() => closed.length === 2, 'replica b closes the watches');
    assert.deepEqual(closed, ['token dashboard', 'admin alice']);
    assert.deepEqual(b.apiTokens.check(token), { ok: false, reason: 'revoked', name: 'dashboard' });
    assert.throws(() => b.verifyPeer(peer(issued.certPem)), IdentityRefusedError);
  },
);

test('identity-records-survive-a-restart-of-every-replica', { skip, timeout: 60_000 }, async () => {
  const dir = await stateDir();
  const a = await replica(dir, 'restart');
  await a.addCluster('gone', {});
  const { token } = await a.addCluster('kept', { env: 'prod' });
  const cert = peer((await a.register('kept', token, csrOf('kept'))).certPem);
  await a.revoke('gone');
  const api = await a.apiTokens.create('dashboard', 0, ['read']);
  await a.stop();

  const b = await replica(dir, 'restart');
  assert.deepEqual(
    b.list().map((c) => [c.name, c.labels, c.revokedAtMs !== undefined]),
    [
      ['gone', {}, true],
      ['kept', { env: 'prod' }, false],
    ],
  );
  assert.equal(b.verifyPeer(cert).name, 'kept');
  await assert.rejects(b.register('kept', token, csrOf('kept')), (e: unknown) => {
    return e instanceof BootstrapTokenError && e.details?.reason === 'used';
  });
  assert.equal(b.apiTokens.check(api.token).ok, true);
  assert.ok(b.admins.list().some((p) => p.name === 'flotilla-admin' && p.certificates === 1));
});

test('a-replica-with-another-ca-is-refused-at-start', { skip, timeout: 60_000 }, async () => {
  await replica(await stateDir(), 'two-cas');
  await assert.rejects(replica(await stateDir(), 'two-cas'), (e: unknown) => {
    assert.ok(e instanceof FlotillaError && e.code === 'CONFIG_INVALID');
    assert.match(e.message, /mount the same ca\.crt and ca\.key in every replica/);
    return true;
  });
});

test(
  'a-single-hubs-state-file-is-imported-when-it-becomes-replicated',
  { skip, timeout: 60_000 },
  async () => {
    const dir = await stateDir();
    const single = new IdentityAuthority({ stateDir: dir, hosts: [], logger: silentLogger() });
    await single.start();
    const { token } = await single.addCluster('old', { tier: 'a' });
    await single.stop();
    const file = join(dir, 'identity-state.json');
    const a = await replica(dir, 'imported', file);
    assert.deepEqual(
      a.list().map((c) => c.name),
      ['old'],
    );
    // The token issued by the single hub still works once, through the replicas.
    const b = await replica(dir, 'imported', file);
    await b.register('old', token, csrOf('old'));
    await assert.rejects(a.register('old', token, csrOf('old')), BootstrapTokenError);
  },
);

/** People with a live certificate, as one replica sees them. */
function liveAdmins(a: IdentityAuthority): string[] {
  return a.admins
    .list()
    .filter((p) => p.revokedAtMs === 0 && p.certificates > 0)
    .map((p) => p.name);
}

test(
  'two-replicas-revoking-the-last-two-administrators-at-the-same-moment-leave-one-20-times',
  { skip, timeout: 180_000 },
  async () => {
    const dir = await stateDir();
    const a = await replica(dir, 'last-admin');
    const b = await replica(dir, 'last-admin');
    const csr = (name: string): string => createCsr(key, name);
    await a.admins.add('alice', csr('alice'), 0, 'admin flotilla-admin');
    await a.admins.add('bob', csr('bob'), 0, 'admin flotilla-admin');
    await until(() => liveAdmins(b).length === 3, 'replica b sees alice and bob');
    await b.admins.revoke('flotilla-admin');
    for (let i = 0; i < 20; i++) {
      await until(
        () => liveAdmins(a).join() === 'alice,bob' && liveAdmins(b).join() === 'alice,bob',
        `round ${i}: both replicas see alice and bob, and only them`,
      );
      // Each replica revokes a different person: each alone would be allowed.
      const [onA, onB] = i % 2 === 0 ? ['alice', 'bob'] : ['bob', 'alice'];
      const outcomes = await Promise.allSettled([
        a.admins.revoke(onA as string),
        b.admins.revoke(onB as string),
      ]);
      const won = outcomes.filter((o) => o.status === 'fulfilled');
      const lost = outcomes.filter((o) => o.status === 'rejected');
      assert.equal(won.length, 1, `round ${i}: exactly one revocation succeeds`);
      const err = lost[0]?.reason as unknown;
      assert.ok(err instanceof FlotillaError, `round ${i}: ${String(err)}`);
      assert.equal(err.code, 'CONFLICT');
      assert.equal(err.details?.reason, 'last-admin');
      assert.match(err.message, /is the last one with a valid certificate: add another first/);
      const left = outcomes[0]?.status === 'rejected' ? onA : onB;
      const gone = left === 'alice' ? 'bob' : 'alice';
      for (const r of [a, b])
        await until(
          () => liveAdmins(r).join() === left,
          `round ${i}: ${left} is the one administrator left on both replicas`,
        );
      // The revoked person is added back for the next round, on either replica.
      await (i % 3 === 0 ? a : b).admins.add(gone, csr(gone), 0, `admin ${left}`);
    }
  },
);

test(
  'renewals-are-rate-limited-across-replicas-an-agent-hopping-between-them-gains-nothing',
  { skip, timeout: 60_000 },
  async () => {
    const dir = await stateDir();
    const a = await replica(dir, 'renew');
    const b = await replica(dir, 'renew');
    const { token } = await a.addCluster('hopper', {});
    let current = await a.register('hopper', token, csrOf('hopper'));
    await until(() => {
      try {
        return b.verifyPeer(peer(current.certPem)).name === 'hopper';
      } catch {
        return false;
      }
    }, 'replica b accepts the certificate');
    current = await a.renew(a.verifyPeer(peer(current.certPem)), csrOf('hopper'));
    // The renewal is in the shared record: replica b refuses the next one.
    const renewed = current;
    await until(() => {
      try {
        return b.verifyPeer(peer(renewed.certPem)).name === 'hopper';
      } catch {
        return false;
      }
    }, 'replica b sees the renewed certificate');
    await assert.rejects(
      b.renew(b.verifyPeer(peer(current.certPem)), csrOf('hopper')),
      (e: unknown) => {
        assert.ok(e instanceof RenewalTooSoonError, String(e));
        assert.match(e.message, /renewed its certificate moments ago: retry in \d+ s/);
        return true;
      },
    );
    // Two renewals at the same moment on two replicas of a cluster that may renew: one wins.
    const { token: t2 } = await a.addCluster('racer', {});
    const first = await a.register('racer', t2, csrOf('racer'));
    await until(() => {
      try {
        return b.verifyPeer(peer(first.certPem)).name === 'racer';
      } catch {
        return false;
      }
    }, 'replica b accepts racer');
    const outcomes = await Promise.allSettled([
      a.renew(a.verifyPeer(peer(first.certPem)), csrOf('racer')),
      b.renew(b.verifyPeer(peer(first.certPem)), csrOf('racer')),
    ]);
    assert.equal(outcomes.filter((o) => o.status === 'fulfilled').length, 1);
    const lost = outcomes.find((o) => o.status === 'rejected');
    assert.ok(lost?.reason instanceof RenewalTooSoonError, String(lost?.reason));
  },
);

/** Every file of a directory with its size and modification time. */
async function snapshot(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(
    names.map(async (n) => {
      const s = await stat(join(dir, n));
      return `${n} ${s.size} ${s.mtimeMs}`;
    }),
  );
}

test(
  'replicas-start-from-an-identity-directory-made-by-hub-init-and-never-write-to-it',
  { skip, timeout: 60_000 },
  async () => {
    // What a Secret mounted read-only in every pod holds: no shared writable volume.
    const dir = await stateDir();
    await initIdentityDir(dir);
    const before = await snapshot(dir);
    const a = await replica(dir, 'from-secret');
    const b = await replica(dir, 'from-secret');
    const admin = peer(await readFile(join(dir, 'admin.crt'), 'utf8'));
    assert.equal(a.verifyPeer(admin).name, 'flotilla-admin');
    assert.equal(b.verifyPeer(admin).name, 'flotilla-admin');
    const { token } = await a.addCluster('edge', {});
    const id = token.split('.')[1] as string;
    await until(() => recordsOf.get(b)?.view.tokens[id] !== undefined, 'replica b sees the token');
    const cert = peer((await b.register('edge', token, csrOf('edge'))).certPem);
    await until(() => {
      try {
        return a.verifyPeer(cert).name === 'edge';
      } catch {
        return false;
      }
    }, 'replica a accepts the certificate replica b issued');
    await a.stop();
    await b.stop();
    assert.deepEqual(await snapshot(dir), before, 'nothing written into the identity directory');
  },
);

test(
  'a-replica-started-while-nats-is-down-waits-saying-why-and-starts-once-nats-is-back',
  { skip, timeout: 90_000 },
  async () => {
    const own = await startNats();
    const dir = await stateDir();
    let link: NatsLink | undefined;
    let b: IdentityAuthority | undefined;
    try {
      // Records exist: a cluster registered through a first replica.
      const firstLink = new NatsLink({ url: own.url, logger: silentLogger() });
      firstLink.start();
      const firstRecords = new KvIdentityRecords({
        connection: () => firstLink.connection(),
        hubId: 'waits',
        logger: silentLogger(),
      });
      const a = new IdentityAuthority({
        stateDir: dir,
        hosts: [],
        logger: silentLogger(),
        records: firstRecords,
      });
      await a.start();
      await a.addCluster('kept', {});
      await a.stop();
      await firstLink.stop();
      await own.stop();

      // A replica starting now cannot read them: it waits, and says why.
      const lines: string[] = [];
      const logger = createLogger({
        name: 'test',
        destination: new Writable({
          write(chunk: Buffer, _enc, done) {
            lines.push(chunk.toString());
            done();
          },
        }),
      });
      link = new NatsLink({ url: own.url, logger: silentLogger() });
      link.start();
      const records = new KvIdentityRecords({
        connection: () => (link as NatsLink).connection(),
        hubId: 'waits',
        logger,
        waitLogMs: 200,
      });
      b = new IdentityAuthority({ stateDir: dir, hosts: [], logger: silentLogger(), records });
      let started = false;
      const starting = b.start().then(() => {
        started = true;
      });
      await until(
        () => lines.some((l) => /identity records cannot be read yet \(NATS unreachable\)/.test(l)),
        'the replica saying it waits for NATS',
      );
      assert.equal(started, false, 'not started (not serving) without its records');
      assert.match(lines.join(''), /flotilla-identity-waits/);

      await own.start();
      await starting;
      assert.deepEqual(
        b.list().map((c) => c.name),
        ['kept'],
      );
    } finally {
      await b?.stop().catch(() => undefined);
      await link?.stop();
      await own.stop();
    }
  },
);

test(
  'replicas-re-admit-the-first-administrator-from-a-new-admin-crt-made-with-the-ca',
  { skip, timeout: 60_000 },
  async () => {
    const dir = await stateDir();
    await initIdentityDir(dir);
    const a = await replica(dir, 'recovery');
    const old = peer(await readFile(join(dir, 'admin.crt'), 'utf8'));
    await a.admins.add('alice', createCsr(key, 'alice'), 0, 'admin flotilla-admin');
    await a.admins.revoke('flotilla-admin');
    assert.throws(() => a.verifyPeer(old), /has been revoked/);
    // A replica restarted with the same files keeps it revoked.
    await a.stop();
    const again = await replica(dir, 'recovery');
    assert.throws(() => again.verifyPeer(old), /has been revoked/);
    // `flotilla hub init --new-admin`: a new admin.crt from the CA, then a restart.
    // Certificates hold whole seconds: one made in the second of the revocation cannot be
    // told from one made before it, so the new one is made in a later second.
    await new Promise((r) => setTimeout(r, 1_100 - (Date.now() % 1_000)));
    await newFirstAdmin(dir);
    const fresh = peer(await readFile(join(dir, 'admin.crt'), 'utf8'));
    const b = await replica(dir, 'recovery');
    assert.equal(b.verifyPeer(fresh).name, 'flotilla-admin');
    await until(() => {
      try {
        return again.verifyPeer(fresh).name === 'flotilla-admin';
      } catch {
        return false;
      }
    }, 'the other replica accepting the new certificate');
    assert.throws(() => b.verifyPeer(old), IdentityRefusedError, 'the old one stays refused');
  },
);
