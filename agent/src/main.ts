#!/usr/bin/env node
// flotilla-agent: see cli.ts. The V8 flags are set before anything else is loaded (see
// node-flags.ts). Exits explicitly: a pending reconnect timer must not keep a stopped
// agent alive.
import { applyAgentV8Flags } from './node-flags.js';

applyAgentV8Flags();
// grpc-js passes an IP hub address as the TLS server name (DEP0123 on every dial): not
// something an operator can act on, so it stays out of the agent's output.
const { quietDependencyWarnings } = await import('@flotilla/common');
quietDependencyWarnings();
const { runAgentCli } = await import('./cli.js');
process.exit(await runAgentCli(process.argv.slice(2)));
