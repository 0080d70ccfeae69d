// Imported first by main.ts, for its side effect: `flotilla agent` sets the agent's V8
// flags before the hub's CLI modules are evaluated, so the young generation stays at its
// initial 1 MiB per semi-space (agent/src/node-flags.ts says why; that module applies the
// same flag, but only once the agent loads, after the heap has grown). Duplicated here
// because the hub's CLI must not import the agent eagerly. Other commands are untouched.
import { setFlagsFromString } from 'node:v8';

/** The V8 flags the agent process runs with (same as @flotilla/agent AGENT_V8_FLAGS). */
export const AGENT_V8_FLAGS: readonly string[] = ['--semi-space-growth-factor=1', '--no-maglev'];

if (process.argv[2] === 'agent' && process.env.FLOTILLA_AGENT_V8_FLAGS !== 'off')
  for (const flag of AGENT_V8_FLAGS) setFlagsFromString(flag);
