// `flotilla token` refuses bad command lines before it talks to the hub; the calls to a
// real hub are exercised in integration-tests/src/identity/.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from './io.js';
import { captureIo } from './testing.js';
import { TOKEN_USAGE, tokenCommand } from './token.js';

function io() {
  const { out, cli } = captureIo({ HOME: '/nonexistent' });
  return { out, io: cli };
}

test('token-command-rejects-bad-command-lines-with-a-clear-usage-error', async () => {
  for (const [argv, message] of [
    [['create'], /token create needs a token NAME/],
    [['revoke'], /token revoke needs a token NAME/],
    [['rotate', 'ci'], /unknown token command "rotate" \(use create, list or revoke\)/],
    [['create', 'ci', '--ttl', 'soon'], /--ttl: /],
    [['list', 'extra'], /unexpected arguments: extra/],
    [['create', 'ci', 'more'], /unexpected arguments: more/],
  ] as const) {
    const { io: cli } = io();
    await assert.rejects(
      tokenCommand([...argv], cli),
      (err: Error) => err instanceof UsageError && message.test(err.message),
      argv.join(' '),
    );
  }
  const help = io();
  assert.equal(await tokenCommand(['--help'], help.io), 0);
  assert.equal(help.out.stdout, TOKEN_USAGE);
});
