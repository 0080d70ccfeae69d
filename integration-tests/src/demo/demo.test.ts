// The README's demo, run as a user runs it: it must converge both example clusters,
// show a second commit arriving, print status and commands that work when pasted, and
// stop cleanly on Ctrl-C (SIGINT).
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { requireEnv, waitFor } from '@flotilla/test-env';

const DEMO = fileURLToPath(new URL('./main.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs a command line as a user pastes it into a shell; resolves stdout. */
function shell(line: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('sh', ['-c', `${line} 2>&1`], { cwd: ROOT }, (err, stdout) =>
      err ? reject(new Error(`${line} failed: ${stdout}`)) : resolve(stdout),
    ),
  );
}
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
      // Each agent acts as its own ServiceAccount, with the RBAC `flotilla cluster add` generated.
      assert.match(
        out,
        /starting the agent of edge-eu as ServiceAccount flotilla-system\/flotilla-agent \(token from the TokenRequest API/,
      );
      assert.match(out, /reached both clusters/);
      // The status table lists both example clusters as Ready.
      assert.match(out, /edge-eu\s+.*Ready/);
      assert.match(out, /edge-us\s+.*Ready/);
      // The commands it prints work as pasted (from the repository root, as `npm run demo` runs).
      const pasted = /running\. Try: (.+)$/m.exec(out)?.[1] ?? '';
      assert.match(pasted, /status --hub-url/);
      assert.match(await shell(pasted), /edge-eu\s+.*Ready/);
      const curl = /and: (curl .+)$/m.exec(out)?.[1] ?? '';
      assert.match(curl, /Authorization: Bearer/);
      assert.match(await shell(curl), /"name":"edge-eu"/);
      child.kill('SIGINT');
      assert.equal(await exited, 0, `demo exit code; output:\n${out}`);
      assert.match(out, /demo: stopped\./);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  },
);
