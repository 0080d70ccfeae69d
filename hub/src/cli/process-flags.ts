// Imported first by main.ts, for its side effect: `flotilla hub` and `flotilla agent` set
// their V8 flags before any other module is evaluated (hub/src/v8-flags.ts and
// agent/src/node-flags.ts say why). Other commands are short-lived and left as started.
// The agent's flags are repeated here because the hub's CLI must not import the agent
// eagerly; process-flags.test.ts checks the two lists agree.
import { setFlagsFromString } from 'node:v8';
import { applyHubV8Flags } from '../v8-flags.js';

/** The V8 flags the agent process runs with (same as @flotilla/agent AGENT_V8_FLAGS). */
export const AGENT_V8_FLAGS: readonly string[] = [
  '--semi-space-growth-factor=1',
  '--no-maglev',
  '--no-turbofan',
  '--optimize-for-size',
];

const command = process.argv[2];
if (command === 'agent' && process.env.FLOTILLA_AGENT_V8_FLAGS !== 'off')
  for (const flag of AGENT_V8_FLAGS) setFlagsFromString(flag);
if (command === 'hub') applyHubV8Flags();
