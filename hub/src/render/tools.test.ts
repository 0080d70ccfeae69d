// What a failed tool run says, through the real runner (a child process): the program's
// own error, with repo paths, and nothing that only makes sense to someone running it.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ExecToolRunner } from './tools.js';

test('a-helm-error-drops-helms-advice-about-its-own-flags', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-tools-'));
  try {
    // Prints what helm v3.19 prints for a chart whose kubeVersion excludes the cluster.
    const helm = join(dir, 'helm');
    await writeFile(
      helm,
      [
        '#!/bin/sh',
        "echo 'Error: chart requires kubeVersion: >=1.22.0-0 <1.30.0-0 which is incompatible with Kubernetes v1.35.0' >&2",
        "echo 'Use --debug flag to render out invalid YAML' >&2",
        'exit 1',
        '',
      ].join('\n'),
    );
    await chmod(helm, 0o755);
    const runner = new ExecToolRunner({ helmPath: helm });
    await assert.rejects(
      runner.run({
        tool: 'helm',
        files: new Map([['bundles/legacy/chart/Chart.yaml', Buffer.from('name: legacy\n')]]),
        args: () => ['template', 'x', 'bundles/legacy/chart'],
        errorFile: 'bundles/legacy/chart/Chart.yaml',
      }),
      (err: Error) => {
        assert.equal(
          err.message.replace(/^.*?helm failed/, 'helm failed'),
          'helm failed (exit 1): Error: chart requires kubeVersion: >=1.22.0-0 <1.30.0-0 which is incompatible with Kubernetes v1.35.0',
        );
        return true;
      },
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
