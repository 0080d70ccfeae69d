// Choosing the render sandbox: what is asked for and what the host gives. The runs
// themselves (no network, no access to the hub's files) are tested with the real
// kustomize and sops in integration-tests/src/render/sandbox.test.ts.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { resolveSandbox } from './sandbox.js';

const user = { uid: 65534, gid: 65534 };

describe('resolveSandbox', () => {
  test('none-uses-no-wrapper-and-says-why', () => {
    const s = resolveSandbox({ mode: 'none', ...user });
    assert.deepEqual(s, { level: 'none', wrapper: [], weaker: 'render.sandbox is "none"' });
  });

  test('auto-never-fails-and-a-weaker-level-says-why', () => {
    const s = resolveSandbox({ mode: 'auto', ...user }, ['sh']);
    assert.ok(['user', 'network', 'none'].includes(s.level));
    if (s.level === 'user') {
      assert.equal(s.uid, 65534);
      assert.equal(s.weaker, undefined);
    } else assert.ok((s.weaker ?? '').length > 0, 'a reason for the weaker level');
    if (s.level !== 'none') assert.match(s.wrapper[0] ?? '', /unshare$/);
  });

  test('user-refuses-a-program-the-sandbox-user-cannot-run-and-names-it', async () => {
    // A program inside a directory only its owner may enter, like one under /root.
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-sandbox-unit-'));
    try {
      await mkdir(join(dir, 'private'), { mode: 0o700 });
      const program = join(dir, 'private', 'kustomize');
      await writeFile(program, '#!/bin/sh\n');
      await chmod(program, 0o755);
      assert.throws(
        () => resolveSandbox({ mode: 'user', ...user }, [program]),
        (err: Error) => {
          assert.match(err.message, /^render\.sandbox is "user" but this host does not allow it: /);
          // As root the program is the reason; otherwise switching users is.
          if (process.getuid?.() === 0)
            assert.ok(err.message.includes(`cannot run ${program} as that user`), err.message);
          else assert.match(err.message, /not running as root/);
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
