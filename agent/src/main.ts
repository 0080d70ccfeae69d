#!/usr/bin/env node
// flotilla-agent: see cli.ts. Exits explicitly: a pending reconnect timer must not keep a stopped agent alive.
import { runAgentCli } from './cli.js';

process.exit(await runAgentCli(process.argv.slice(2)));
