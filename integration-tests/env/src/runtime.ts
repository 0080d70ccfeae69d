// Chooses between containers (testcontainers) and local binaries. Without a container
// engine getContainerRuntimeClient() rejects within milliseconds, so probing is cheap;
// the answer is cached for the life of the test process.

/** Where servers run: containers through testcontainers, or cached local binaries. */
export type Runtime = 'containers' | 'binaries';

let probe: Promise<boolean> | undefined;

/** Whether testcontainers can reach a container runtime (cached after the first call). */
export function hasContainerRuntime(): Promise<boolean> {
  probe ??= import('testcontainers')
    .then(({ getContainerRuntimeClient }) => getContainerRuntimeClient())
    .then(
      () => true,
      () => false,
    );
  return probe;
}

/**
 * FLOTILLA_TEST_RUNTIME=binaries|containers forces a runtime (e.g. binaries on a laptop
 * that has Docker but should run fast); otherwise containers when a runtime answers.
 */
export async function chooseRuntime(env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const forced = env.FLOTILLA_TEST_RUNTIME;
  if (forced === 'binaries' || forced === 'containers') return forced;
  if (forced && forced !== 'auto') {
    throw new Error(`FLOTILLA_TEST_RUNTIME must be binaries, containers or auto, got "${forced}"`);
  }
  return (await hasContainerRuntime()) ? 'containers' : 'binaries';
}
