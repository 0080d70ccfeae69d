import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { mayHaveContainerEngine } from './runtime.js';

test('docker-host-or-testcontainers-settings-point-at-an-engine', () => {
  assert.equal(mayHaveContainerEngine({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }), true);
  assert.equal(mayHaveContainerEngine({ TESTCONTAINERS_HOST_OVERRIDE: 'host' }), true);
});

test('a-rootless-engine-socket-in-the-runtime-dir-points-at-an-engine', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-runtime-'));
  try {
    await writeFile(join(dir, 'docker.sock'), '');
    assert.equal(mayHaveContainerEngine({ XDG_RUNTIME_DIR: dir }), true);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
