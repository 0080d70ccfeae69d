// The files of a hub's identity directory (identity.stateDir) made ahead of time, for hub
// replicas that mount them read-only from one Kubernetes Secret: the CA (ca.crt, ca.key)
// every replica signs with, and the first administrator's certificate (admin.crt,
// admin.key). A single hub still makes them itself at first start; replicas must share
// one CA, so they are made once, here, by `flotilla hub init`.
import { constants } from 'node:fs';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FlotillaError } from '@flotilla/common';
import { BOOTSTRAP_ADMIN } from './admins.js';
import { ADMIN_ORG, CertificateAuthority, createCa } from './pki.js';

/** The files an identity directory holds; keys are written mode 0600, certificates 0644. */
export const IDENTITY_FILES = ['ca.crt', 'ca.key', 'admin.crt', 'admin.key'] as const;

/** Lifetime of the first administrator's certificate (1 year, as the hub makes it). */
export const FIRST_ADMIN_VALIDITY_MS = 365 * 86_400_000;

/**
 * Writes a new CA and the first administrator's certificate into dir (created 0700 when
 * missing). Refuses (CONFLICT) when any of the files exists: a second CA would split the
 * fleet into agents trusting one or the other. Returns the paths written.
 */
export async function initIdentityDir(dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const f of IDENTITY_FILES) {
    const exists = await access(join(dir, f), constants.F_OK).then(
      () => true,
      () => false,
    );
    if (exists)
      throw new FlotillaError(
        'CONFLICT',
        `${join(dir, f)} exists already: the hub's identity is made once (a new CA would cut off every registered cluster); choose an empty directory`,
      );
  }
  const caPair = createCa();
  const admin = new CertificateAuthority(caPair).issueKeyPair(
    BOOTSTRAP_ADMIN,
    ADMIN_ORG,
    FIRST_ADMIN_VALIDITY_MS,
  );
  const files: Array<[string, string, number]> = [
    ['ca.key', caPair.keyPem, 0o600],
    ['ca.crt', caPair.certPem, 0o644],
    ['admin.key', admin.keyPem, 0o600],
    ['admin.crt', admin.certPem, 0o644],
  ];
  // Exclusive creation: two runs into one directory cannot mix their files.
  for (const [name, text, mode] of files)
    await writeFile(join(dir, name), text, { mode, flag: 'wx' });
  return files.map(([name]) => join(dir, name));
}

/**
 * Issues a new certificate for the first administrator from the CA in dir, replacing
 * admin.crt and admin.key: the recovery path when nobody holds a valid administrator
 * certificate and the hub's directory is read-only (replicas). A hub re-admits
 * flotilla-admin at its next start, since the certificate is newer than the person's
 * record. Returns the paths written.
 */
export async function newFirstAdmin(dir: string): Promise<string[]> {
  let caPair: { certPem: string; keyPem: string };
  try {
    caPair = {
      certPem: await readFile(join(dir, 'ca.crt'), 'utf8'),
      keyPem: await readFile(join(dir, 'ca.key'), 'utf8'),
    };
  } catch (err) {
    throw new FlotillaError(
      'NOT_FOUND',
      `${dir} holds no CA (ca.crt and ca.key): --new-admin needs the directory \`flotilla hub init\` made (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`,
      { cause: err },
    );
  }
  const admin = new CertificateAuthority(caPair).issueKeyPair(
    BOOTSTRAP_ADMIN,
    ADMIN_ORG,
    FIRST_ADMIN_VALIDITY_MS,
  );
  await writeFile(join(dir, 'admin.key'), admin.keyPem, { mode: 0o600 });
  await writeFile(join(dir, 'admin.crt'), admin.certPem, { mode: 0o644 });
  return [join(dir, 'admin.key'), join(dir, 'admin.crt')];
}
