// The README's demo, run as a user runs it: it must converge both example clusters,
// show a second commit arriving, print status, and stop cleanly on Ctrl-C (SIGINT).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { requireEnv, waitFor } from '@flotilla/test-env';

const DEMO = fileURLToPath(new URL('./main.js', import.meta.url));
const skip = await requireEnv(['cluster', 'nats', 'git']);

test(
  'demo-converges-both-clusters-and-stops-cleanly-on-ctrl-c',
  { skip, timeout: 240_000 },
  async () => {
    const child = spawn(process.execPath, [DEMO], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) =>
      child.once('exit', (code) => resolve(code)),
    );
    try {
      await waitFor(() => out.includes('press Ctrl-C to stop') || child.exitCode !== null, {
        what: 'the demo to converge and wait for Ctrl-C',
        timeoutMs: 200_000,
        intervalMs: 250,
      });
      assert.equal(child.exitCode, null, `demo exited early:\n${out}`);
      assert.match(out, /fleet converged in/);
      assert.match(out, /reached both clusters/);
      // The status table lists both example clusters as Ready.
      assert.match(out, /edge-eu\s+.*Ready/);
      assert.match(out, /edge-us\s+.*Ready/);
      child.kill('SIGINT');
      assert.equal(await exited, 0, `demo exit code; output:\n${out}`);
      assert.match(out, /demo: stopped\./);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  },
);
