import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import test from 'node:test';

// Each case runs in a fresh node process: process warnings print once per process.
const MODULE = new URL('./warnings.js', import.meta.url).href;

function warningsPrinted(quiet: boolean): string {
  const script = `
    import tls from 'node:tls';
    const { quietDependencyWarnings } = await import(${JSON.stringify(MODULE)});
    if (${quiet}) quietDependencyWarnings();
    // What grpc-js does when the hub address is an IP: the IP as the TLS server name.
    const socket = tls.connect({ host: '127.0.0.1', port: 9, servername: '127.0.0.1' });
    socket.on('error', () => {});
    process.emitWarning('another deprecation', 'DeprecationWarning', 'DEP0999');
    process.emitWarning(new Error('a plain warning'));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

test('without-the-filter-node-prints-dep0123-for-an-ip-server-name', () => {
  // The control: the real trigger does raise the warning, so the next test can fail.
  assert.match(warningsPrinted(false), /DEP0123/);
});

test('the-filter-drops-dep0123-and-keeps-every-other-warning', () => {
  const stderr = warningsPrinted(true);
  assert.doesNotMatch(stderr, /DEP0123/);
  assert.match(stderr, /\[DEP0999\] DeprecationWarning: another deprecation/);
  assert.match(stderr, /Error: a plain warning/);
});
