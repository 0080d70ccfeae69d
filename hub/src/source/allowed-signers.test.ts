import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { namespaceAllowed, parseAllowedSigners } from './allowed-signers.js';

// Public keys made by ssh-keygen (the private halves were thrown away).
const ED25519 = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJshyw4LQInSRPregPHXQ7XDkU+oSdGVHp0CPpgNbY6I';
const ED25519_FP = 'SHA256:i5xX4aZO2OATsIB3xWdCaK47Mik7TjC5QPfRRE49KwM';
const P256 =
  'ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOBTN7/RRofNPLp5B7adijQEDzmC8W4JVgqAgAhTBCwz0rfSv9rIuu+Tnwdx+/Ath63WNO/2CEXQLKuQ4be9Vzg=';
const FIELD = 'sources[0].verify.sshAllowedSigners[1]';

const problem = (text: string): string => {
  try {
    parseAllowedSigners(text, FIELD);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    assert.equal(err.field, FIELD);
    return err.message.slice(`${FIELD}: `.length);
  }
  return 'no error';
};

test('allowed-signers-lines-with-options-comments-and-quotes-parse', () => {
  const signers = parseAllowedSigners(
    [
      '# platform team',
      '',
      `alice@example.com namespaces="git" ${ED25519} alice's laptop`,
      `  "bob@example.com,ci@example.com" valid-after="20240101",VALID-BEFORE="20991231235959Z" ${P256}`,
      `carol@example.com ${ED25519}`,
    ].join('\n'),
    FIELD,
  );
  assert.equal(signers.length, 3);
  const [alice, bob, carol] = signers;
  assert.equal(alice?.principals, 'alice@example.com');
  assert.equal(alice?.namespaces, 'git');
  assert.equal(alice?.fingerprint, ED25519_FP);
  assert.equal(alice?.origin, `${FIELD} line 3`);
  assert.equal(bob?.principals, 'bob@example.com,ci@example.com');
  assert.equal(bob?.validBefore, Date.UTC(2099, 11, 31, 23, 59, 59) / 1000);
  // Without Z, ssh-keygen reads the time in the local time zone.
  assert.equal(bob?.validAfter, new Date(2024, 0, 1).getTime() / 1000);
  assert.equal(carol?.namespaces, undefined);
});

test('malformed-allowed-signers-lines-are-config-errors-with-line-numbers', () => {
  assert.equal(
    problem(`# ok\n${ED25519}\n`),
    'line 2: expected "principals [options] keytype base64-key [comment]"',
  );
  assert.equal(
    problem(`a ${ED25519.replace('AAAAC3', '!!!')}`),
    'line 1: the ssh-ed25519 key is not base64',
  );
  assert.equal(
    problem(`a ${ED25519.replace('ssh-ed25519', 'ecdsa-sha2-nistp256')}`),
    'line 1: the key is a ssh-ed25519 key, not ecdsa-sha2-nistp256',
  );
  assert.equal(
    problem(`a ssh-ed25519 ${Buffer.from('short').toString('base64')}`),
    'line 1: the ssh-ed25519 key is malformed (truncated data)',
  );
  assert.match(
    problem(`a cert-authority ${ED25519}`),
    /^line 1: cert-authority lines .* not supported/,
  );
  assert.equal(
    problem(`\n\na no-touch-required ${ED25519}`),
    'line 3: unknown option "no-touch-required" (expected namespaces, valid-after, valid-before)',
  );
  assert.equal(
    problem(`a valid-before="tomorrow" ${ED25519}`),
    'line 1: valid-before="tomorrow" is not YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z]',
  );
  assert.equal(
    problem(`a valid-after="20241341" ${ED25519}`),
    'line 1: valid-after="20241341" is not a valid date and time',
  );
  assert.equal(problem(`a namespaces="git ${ED25519}`), 'line 1: unterminated quote');
  assert.equal(problem('# nothing here\n'), 'holds no allowed signers');
});

test('fido-security-keys-are-refused-with-a-clear-reason', () => {
  const wire = (b: Buffer | string): Buffer => {
    const d = Buffer.from(b);
    return Buffer.concat([Buffer.from([0, 0, 0, d.length]), d]);
  };
  const type = 'sk-ssh-ed25519@openssh.com';
  const blob = Buffer.concat([wire(type), wire(Buffer.alloc(32, 1)), wire('ssh:')]);
  assert.equal(
    problem(`a ${type} ${blob.toString('base64')}`),
    `line 1: FIDO security-key keys (${type}) are not supported`,
  );
});

test('namespace-patterns-follow-openssh-pattern-lists', () => {
  assert.equal(namespaceAllowed(undefined, 'git'), true);
  assert.equal(namespaceAllowed('git', 'git'), true);
  assert.equal(namespaceAllowed('file,g?t', 'git'), true);
  assert.equal(namespaceAllowed('*,!git', 'git'), false);
  assert.equal(namespaceAllowed('file', 'git'), false);
});
