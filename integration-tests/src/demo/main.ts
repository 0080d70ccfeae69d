// `npm run demo`: a whole Flotilla fleet on this machine — NATS, a Git server holding
// deploy/examples/fleet, two Kubernetes API servers, the hub and two agents. It shows
// a commit reaching both clusters, prints fleet status, then keeps running until Ctrl-C.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readTree, startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const EXAMPLE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'deploy',
  'examples',
  'fleet',
);
const say = (message: string): void => console.log(`demo: ${message}`);

async function main(): Promise<number> {
  let fleet: Fleet | undefined;
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) {
      say('already stopping; please wait');
      return;
    }
    stopping = true;
    say('stopping agents, hub, NATS, Git server and API servers…');
    await fleet?.stop();
    say('stopped.');
  };
  const stopped = new Promise<void>((resolve) => {
    // `on`, not `once`: a dependency (signal-exit) re-raises a signal that has no other
    // listener left, which would kill the demo halfway through its cleanup.
    for (const sig of ['SIGINT', 'SIGTERM'] as const)
      process.on(sig, () => void shutdown().then(resolve));
  });

  try {
    const started = Date.now();
    fleet = await startFleet({
      clusters: ['edge-eu', 'edge-us'],
      repoFiles: await readTree(EXAMPLE),
      onProgress: say,
    });
    say(`waiting for both clusters to apply ${fleet.firstCommit.slice(0, 12)}…`);
    await fleet.waitForRevision(fleet.firstCommit, 120_000);
    say(
      `fleet converged in ${((Date.now() - started) / 1000).toFixed(1)} s (logs in ${fleet.logDir})`,
    );
    console.log(await fleet.cli(['status']));

    say('pushing a second commit: podinfo gets a new greeting in every cluster');
    const deployment = join('bundles', 'podinfo', 'manifests', 'deployment.yaml');
    const text = (await readTree(EXAMPLE))[deployment] ?? '';
    await fleet.repo.writeFiles({
      [deployment]: text.replace('${vars.greeting}', '${vars.greeting} (updated)'),
    });
    const second = await fleet.repo.commitAndPush('podinfo: update the greeting');
    const t0 = Date.now();
    await fleet.waitForRevision(second, 120_000);
    say(
      `commit ${second.slice(0, 12)} reached both clusters in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
    console.log(await fleet.cli(['status']));
  } catch (err) {
    console.error(`demo: failed: ${(err as Error).message}`);
    await shutdown();
    return 1;
  }
  if (process.env.FLOTILLA_DEMO_EXIT === '1') {
    await shutdown();
    return 0;
  }
  // The hub serves HTTPS with its own CA (the agents registered with `flotilla cluster add`);
  // reading the fleet needs the admin certificate (the CLI finds it in the admin directory)
  // or an API token (the page and curl), written to a file so it is never printed.
  const admin = fleet.adminDir ? `FLOTILLA_ADMIN_DIR=${fleet.adminDir} ` : '';
  const cliBin = join('hub', 'dist', 'cli', 'main.js');
  say(`running. Try: ${admin}node ${cliBin} status --hub-url ${fleet.hubHttpUrl}`);
  let tokenFile = '';
  if (fleet.adminDir) {
    tokenFile = join(fleet.adminDir, '..', 'demo-api.token');
    await fleet.cli(['token', 'create', 'demo', '--output-file', tokenFile]).catch((err: Error) => {
      say(`could not create an API token for the page: ${err.message}`);
    });
    say(`and: FLOTILLA_HUB=${fleet.hubGrpcAddress} ${admin}node ${cliBin} cluster list`);
    say(
      `and: curl --cacert ${join(fleet.adminDir, 'ca.crt')} -H "Authorization: Bearer $(cat ${tokenFile})" ${fleet.hubHttpUrl}/api/v1/clusters`,
    );
  }
  say(
    `the fleet page (read-only): ${fleet.hubHttpUrl}/` +
      (fleet.adminDir
        ? ` — paste the API token from ${tokenFile} when it asks; the hub's certificate is from its own CA, ${join(fleet.adminDir, 'ca.crt')}: trust it or accept the browser's warning`
        : ''),
  );
  say(`the fleet repo is ${fleet.repoUrl} — clone it, commit, push, and watch the status change.`);
  say('press Ctrl-C to stop.');
  await stopped;
  return 0;
}

process.exitCode = await main();
