import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { AGENT_V8_FLAGS as AGENT_PACKAGE_FLAGS } from '@flotilla/agent';
import { HUB_V8_FLAGS } from '../v8-flags.js';
import { AGENT_V8_FLAGS } from './process-flags.js';

// Each case runs in a fresh node process: V8 flags are per process, and the young
// generation must start at its initial size.
const FLAGS_MODULE = new URL('./process-flags.js', import.meta.url).href;

// Limited: usually 2 (two 1 MiB semi-spaces), but Node 24 now and then adds a few 256 KiB
// pages (seen 3 for the hub, up to 5.25 for the agent). Grown: 16-32 (Node 20), 64 (Node 24).
const LIMITED_MIB = 8;

/** Young-generation size (MiB) after a workload whose objects survive scavenges, as `flotilla <command>`. */
function youngGenerationMiB(
  command: string,
  env: NodeJS.ProcessEnv = {},
): { mib: number; stderr: string } {
  const script = `
    import v8 from 'node:v8';
    process.argv[2] = ${JSON.stringify(command)};
    await import(${JSON.stringify(FLAGS_MODULE)});
    const keep = [];
    for (let i = 0; i < 300000; i++) keep[i % 100000] = { i, s: 'x' + i, a: [i, i + 1] };
    const ns = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
    console.log(ns.space_size / 1048576, keep.length);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return { mib: Number(r.stdout.split(' ')[0]), stderr: r.stderr + r.stdout };
}

test('the-cli-sets-the-same-agent-flags-as-the-agent-package', () => {
  assert.deepEqual(AGENT_V8_FLAGS, AGENT_PACKAGE_FLAGS);
});

test('young-generation-grows-for-other-commands', () => {
  // The control: the workload does grow V8's young generation, so the next test can fail.
  assert.ok(youngGenerationMiB('get').mib > LIMITED_MIB);
});

test('flotilla-agent-keeps-the-young-generation-at-its-initial-size', () => {
  const { mib, stderr } = youngGenerationMiB('agent');
  assert.ok(mib <= LIMITED_MIB, `young generation ${mib} MiB, expected at most ${LIMITED_MIB}`);
  assert.doesNotMatch(stderr, /unrecognized flag|Error/i, 'this V8 still knows the flags');
});

// The hub limits the young generation only on V8 12+ (Node 22 and later): v8-flags.ts says why.
const hubLimitsYoung = HUB_V8_FLAGS.includes('--semi-space-growth-factor=1');

test(`flotilla-hub-${hubLimitsYoung ? 'keeps' : 'leaves'}-the-young-generation-${hubLimitsYoung ? 'at-its-initial-size' : 'to-v8'}-on-v8-${process.versions.v8.split('.')[0]}`, () => {
  const { mib, stderr } = youngGenerationMiB('hub');
  if (hubLimitsYoung)
    assert.ok(mib <= LIMITED_MIB, `young generation ${mib} MiB, expected at most ${LIMITED_MIB}`);
  else assert.ok(mib > LIMITED_MIB, `young generation ${mib} MiB, expected V8's own growth`);
  assert.doesNotMatch(stderr, /unrecognized flag|Error/i, 'this V8 still knows the flags');
});

test('hub-flags-can-be-switched-off', () => {
  assert.ok(youngGenerationMiB('hub', { FLOTILLA_HUB_V8_FLAGS: 'off' }).mib > LIMITED_MIB);
});
