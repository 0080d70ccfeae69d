#!/usr/bin/env node
// flotilla-agent: see cli.ts. The V8 flags are set before anything else is loaded (see
// node-flags.ts). Exits explicitly: a pending reconnect timer must not keep a stopped
// agent alive.
import { applyAgentV8Flags } from './node-flags.js';

applyAgentV8Flags();
const { runAgentCli } = await import('./cli.js');
process.exit(await runAgentCli(process.argv.slice(2)));
