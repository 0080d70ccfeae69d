// The V8 setting the agent process runs with, applied by the process itself so it holds
// however the agent is launched (`flotilla-agent`, `node dist/main.js`, `flotilla agent`,
// the container image). Why: under the apply/watch allocation rate V8 grows the young
// generation to 16 MiB per semi-space, ~30 MiB of RSS for no measurable speed
// (agent-bench: 110 → 75 MiB managing 1,000 objects). `--max-semi-space-size` is read
// only when the isolate is created, so setting it at run time does nothing (measured);
// the growth factor is read each time V8 considers growing the young generation, so
// setting it to 1 at start-up keeps the semi-spaces at their initial 1 MiB (measured on
// Node 20 and 24; node-flags.test.ts checks it). The JIT and heap-policy flags below are
// read when V8 decides to optimize or to size the heap, so they too work at run time
// (agent-bench, agent/README.md "Memory").

import { setFlagsFromString } from 'node:v8';

/**
 * The V8 flags the agent sets on itself: the young generation never grows past its
 * initial size (1 MiB per semi-space); no optimizing JIT, neither Maglev nor TurboFan,
 * whose compilers' code and zones cost ~13 MiB (Maglev) and ~7 MiB (TurboFan) of RSS on
 * Node 24 (the agent's hot paths are I/O-bound; Ignition and Sparkplug remain);
 * `--optimize-for-size`, V8's memory-saving heap policy (tighter old-generation growth, a
 * more eager memory reducer): ~8 MiB on Node 24 and 20, apply and heal times unchanged.
 */
export const AGENT_V8_FLAGS: readonly string[] = [
  '--semi-space-growth-factor=1',
  '--no-maglev',
  '--no-turbofan',
  '--optimize-for-size',
];

let applied = false;

/**
 * Applies AGENT_V8_FLAGS to this process; call it first thing, before the heap grows (it
 * stops further growth, it does not shrink a grown young generation). Idempotent.
 * FLOTILLA_AGENT_V8_FLAGS=off leaves V8 as started.
 */
export function applyAgentV8Flags(env: NodeJS.ProcessEnv = process.env): boolean {
  if (applied) return true;
  if (env.FLOTILLA_AGENT_V8_FLAGS === 'off') return false;
  for (const flag of AGENT_V8_FLAGS) setFlagsFromString(flag);
  applied = true;
  return true;
}
