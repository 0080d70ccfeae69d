// Administrators are people, each with short-lived client certificates from the hub's CA
// (subject O=flotilla-admin, CN=the person), checked by serial like cluster certificates:
// a certificate is accepted only while its serial is in its person's live list, so
// `flotilla admin revoke NAME` stops every certificate of that person at once, and the
// listeners close the person's open streams. The first administrator is the
// certificate the hub writes into its state directory at first start (admin.crt,
// CN=flotilla-admin): it is recorded here like any other, and can be revoked too.
//
// "Never revoke the last administrator" is a rule over every person, while records change
// one at a time (hub replicas share them by compare-and-set per key). So the people not
// revoked are also listed in one record, the roster `admins`: a revocation first removes
// its person there by compare-and-set, checking that someone else on the roster still has
// a live certificate. Two revocations at the same moment on two replicas are then ordered
// by that one write, and the second sees the first.
import type { Logger } from '@flotilla/common';
import { FlotillaError, ValidationError, isDnsLabel } from '@flotilla/common';
import { IdentityRefusedError } from './errors.js';
import { ADMIN_ORG, NOT_BEFORE_SLACK_MS } from './pki.js';
import type { IssuedCert } from './pki.js';
import type { AdminRecord, RosterRecord } from './store.js';
import { UNCHANGED } from './records.js';
import type { IdentityRecords } from './records.js';

/** Lifetimes of administrator certificates (ms). */
export const ADMIN_DEFAULTS = {
  /** A person's certificate when `admin add` names no --ttl (12 h). */
  certValidityMs: 12 * 3_600_000,
  /** The longest a person's certificate may live (7 days). */
  maxCertValidityMs: 7 * 86_400_000,
} as const;

/** The name (CN) of the first administrator, whose certificate the hub writes at first start. */
export const BOOTSTRAP_ADMIN = 'flotilla-admin';

/** What `flotilla admin list` shows of a person: never a key. */
export interface AdminInfo {
  name: string;
  addedAtMs: number;
  addedBy: string;
  revokedAtMs: number;
  /** Live certificates. */
  certificates: number;
  lastIssuedAtMs: number;
  /** When the newest live certificate expires; 0 when none. */
  notAfterMs: number;
}

/** Signs a CSR (CertificateAuthority implements it). */
export interface AdminSigner {
  issueFromCsr(csrPem: string, cn: string, org: string, validityMs: number): IssuedCert;
}

/** The roster (records.ts `rosters`) of the people not revoked. */
export const ADMIN_ROSTER = 'admins';

/** Strips the leading zeros node and forge may disagree on; serials compare upper-case. */
export function normalSerial(serial: string): string {
  return serial.toUpperCase().replace(/^0+/, '');
}

/** Issues, revokes, lists and checks administrators' certificates in the identity state. */
export class Admins {
  private readonly listeners: Array<(name: string) => number> = [];

  constructor(
    private readonly store: IdentityRecords,
    private readonly signer: AdminSigner,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    // A person revoked through another hub replica loses their open streams here too.
    store.onRemoteChange((kind, name, before, after) => {
      if (kind !== 'admins') return;
      const was = before as AdminRecord | undefined;
      const is = after as AdminRecord | undefined;
      if (is?.revokedAtMs !== undefined && was?.revokedAtMs === undefined) {
        const closed = this.closeStreams(name);
        this.logger.warn(
          { admin: name, streamsClosed: closed },
          'administrator revoked on another hub replica',
        );
      }
    });
  }

  private get records(): Record<string, AdminRecord> {
    return this.store.view.admins;
  }

  private closeStreams(name: string): number {
    let closed = 0;
    for (const l of this.listeners) closed += l(name);
    return closed;
  }

  /** Registers a listener told when a person is revoked; it returns how many streams it closed. */
  onRevoke(listener: (name: string) => number): void {
    this.listeners.push(listener);
  }

  /**
   * Records the hub's own admin.crt as the first administrator. A state written before
   * people existed (or a new hub) adopts it; a certificate the hub has just re-created
   * (the file was deleted: the recovery path), or one issued after the person's record
   * last changed (`flotilla hub init --new-admin`, the recovery path of replicas, whose
   * directory is read-only: only a holder of the CA key can make one), re-admits the
   * person; otherwise a revoked bootstrap certificate stays revoked.
   */
  async adoptBootstrap(
    serial: string,
    notAfterMs: number,
    created: boolean,
    notBeforeMs = 0,
  ): Promise<void> {
    const now = this.now();
    let recorded = false;
    await this.store.update('admins', BOOTSTRAP_ADMIN, (existing) => {
      const newer = (r: AdminRecord): boolean =>
        !Object.keys(r.serials).some((s) => normalSerial(s) === normalSerial(serial)) &&
        notBeforeMs + NOT_BEFORE_SLACK_MS > (r.revokedAtMs ?? r.lastIssuedAtMs ?? r.addedAtMs);
      if (existing && !created && !newer(existing)) return UNCHANGED;
      const record: AdminRecord =
        existing && existing.revokedAtMs === undefined
          ? existing
          : { name: BOOTSTRAP_ADMIN, addedAtMs: now, addedBy: 'hub init', serials: {} };
      record.serials[normalSerial(serial)] = notAfterMs;
      record.lastIssuedAtMs = now;
      recorded = true;
      return record;
    });
    if (!recorded) return;
    await this.join(BOOTSTRAP_ADMIN);
    this.logger.info({ admin: BOOTSTRAP_ADMIN }, 'first administrator recorded');
  }

  /** Issues a certificate for `name` from their CSR; adds the person when new (or revoked before). */
  async add(name: string, csrPem: string, ttlMs: number, by: string): Promise<IssuedCert> {
    if (!isDnsLabel(name))
      throw new ValidationError(
        `administrator name "${name}" must be a DNS label (lower-case letters, digits, '-')`,
      );
    if (ttlMs > ADMIN_DEFAULTS.maxCertValidityMs)
      throw new ValidationError(
        `administrator certificates live at most ${ADMIN_DEFAULTS.maxCertValidityMs / 86_400_000} days (--ttl)`,
      );
    const validity = ttlMs > 0 ? ttlMs : ADMIN_DEFAULTS.certValidityMs;
    const issued = this.signer.issueFromCsr(csrPem, name, ADMIN_ORG, validity);
    const now = this.now();
    await this.store.update('admins', name, (existing) => {
      // Re-adding a revoked person starts a new record: no old certificate comes back.
      const record: AdminRecord =
        existing && existing.revokedAtMs === undefined
          ? existing
          : { name, addedAtMs: now, addedBy: by, serials: {} };
      record.serials = Object.fromEntries(
        Object.entries(record.serials).filter(([, notAfter]) => notAfter > now),
      );
      record.serials[issued.serial] = issued.notAfter.getTime();
      record.lastIssuedAtMs = now;
      return record;
    });
    await this.join(name);
    this.logger.info(
      { admin: name, by, serial: issued.serial, notAfter: issued.notAfter.toISOString() },
      'administrator certificate issued',
    );
    return issued;
  }

  /**
   * Revokes every certificate of a person and closes their streams; returns how many.
   * Revoking the last person with a live certificate is a CONFLICT: nobody could add one.
   * The check and the person's leaving the roster are one compare-and-set (file comment).
   */
  async revoke(name: string): Promise<number> {
    if (!this.records[name]) throw new ValidationError(`administrator "${name}" does not exist`);
    const now = this.now();
    await this.store.update('rosters', ADMIN_ROSTER, (roster) => {
      const names = new Set(this.rosterNames(roster));
      // Written even when the person is not on it (revoked already, as this replica sees
      // it): the compare-and-set is what proves that view of the roster was the newest.
      const live = (r: AdminRecord | undefined): boolean =>
        r !== undefined && r.revokedAtMs === undefined && this.liveSerials(r, now) > 0;
      // Off the roster with a live certificate: its joining failed; checked all the same.
      if (!names.delete(name) && !live(this.records[name])) return { names: [...names].sort() };
      const othersLive = [...names].some((o) => live(this.records[o]));
      if (!othersLive)
        throw new FlotillaError(
          'CONFLICT',
          `administrator "${name}" is the last one with a valid certificate: add another first`,
          { details: { reason: 'last-admin' } },
        );
      return { names: [...names].sort() };
    });
    await this.store.update('admins', name, (cur) => {
      if (!cur) throw new ValidationError(`administrator "${name}" does not exist`);
      cur.revokedAtMs ??= now;
      cur.serials = {};
      return cur;
    });
    const closed = this.closeStreams(name);
    this.logger.warn({ admin: name, streamsClosed: closed }, 'administrator revoked');
    return closed;
  }

  /**
   * The roster's names; before the first roster was written (records from an earlier
   * version), the people whose record is not revoked.
   */
  private rosterNames(roster: RosterRecord | undefined): string[] {
    if (roster) return roster.names;
    return Object.values(this.records)
      .filter((r) => r.revokedAtMs === undefined)
      .map((r) => r.name);
  }

  // Puts a person (re-)added on the roster. Joining after the record is written is safe:
  // until then the check does not count the person, which can only refuse a revocation.
  private async join(name: string): Promise<void> {
    await this.store.update('rosters', ADMIN_ROSTER, (roster) => {
      const names = this.rosterNames(roster);
      if (roster && names.includes(name)) return UNCHANGED;
      return { names: [...new Set([...names, name])].sort() };
    });
  }

  private liveSerials(r: AdminRecord, now: number): number {
    return Object.values(r.serials).filter((notAfter) => notAfter > now).length;
  }

  /** Every person, by name. */
  list(): AdminInfo[] {
    const now = this.now();
    return Object.values(this.records)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => {
        const live = Object.values(r.serials).filter((t) => t > now);
        return {
          name: r.name,
          addedAtMs: r.addedAtMs,
          addedBy: r.addedBy,
          revokedAtMs: r.revokedAtMs ?? 0,
          certificates: live.length,
          lastIssuedAtMs: r.lastIssuedAtMs ?? 0,
          notAfterMs: live.length > 0 ? Math.max(...live) : 0,
        };
      });
  }

  /** Checks a TLS-verified administrator certificate; throws IdentityRefusedError. */
  verify(cn: string, serial: string, validToMs: number | undefined): void {
    const r = this.records[cn];
    if (!r) throw new IdentityRefusedError(`administrator "${cn}" is not known to this hub`);
    if (r.revokedAtMs !== undefined)
      throw new IdentityRefusedError(`administrator "${cn}" has been revoked`);
    const wanted = normalSerial(serial);
    const notAfter = Object.entries(r.serials).find(([s]) => normalSerial(s) === wanted)?.[1];
    if (notAfter === undefined)
      throw new IdentityRefusedError(`certificate of administrator "${cn}" has been revoked`);
    // A kept-alive connection may outlive its certificate: the dates are checked on every call.
    if (Math.min(validToMs ?? notAfter, notAfter) <= this.now())
      throw new IdentityRefusedError(`certificate of administrator "${cn}" has expired`);
  }
}
