#!/usr/bin/env node
// The fleet simulator on the command line: runs N simulated agents against a hub until
// SIGINT/SIGTERM, printing one summary line every --every, and on exit the records of
// every agent (JSON lines) to --records. Run with --help for the flags.
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { errorMessage, quietDependencyWarnings } from '@flotilla/common';
import { durationOption } from './config.js';
import type { SimAuth, SimOptions } from './config.js';
import { Simulator } from './simulator.js';

const USAGE = `Usage: node integration-tests/dist/sim/main.js --hub HOST:PORT --nats URL --agents N [options]

Simulated agents speaking the real protocol (gRPC stream, NATS events) to a running hub.
Clusters are named <prefix>-00000, <prefix>-00001, ...; declare them in the fleet repo.

Authentication (one of):
  --token-file FILE        shared agent token of an --insecure hub (plaintext)
  --admin-dir DIR          TLS hub: issue a bootstrap token per cluster with the admin
                           certificate in DIR and register, as \`flotilla cluster add\` + agent do;
  --state-dir DIR          with --admin-dir: where the agents keep their identities; a second
                           run against the same hub with the same DIR registers nobody again
  (neither)                an --insecure hub without auth.tokenFile

Options:
  --processes P            child processes to spread the agents over (default 1)
  --prefix NAME            cluster name prefix (default sim); --first-index I (default 0)
  --apply-latency D        apply duration: 20ms | 10ms..200ms | lognormal:50ms,500ms (default 20ms)
  --failure-rate R         share of applies that fail, 0..1 (default 0)
  --unhealthy-rate R       share of bundles reported Degraded after an apply (default 0)
  --drift-per-minute X     drift detections per agent per minute (default 0)
  --churn-per-minute X     disconnects per agent per minute (default 0)
  --churn-downtime D       how long a churned agent stays away (default 1s..5s)
  --clock-skew D           largest clock skew of an agent, e.g. 30s (default 0)
  --retry-after D          retry a failed apply after D, successfully (default: never)
  --seed N                 seed of every random choice (default 1)
  --log-dir DIR            worker logs (default a temporary directory)
  --every D                summary line interval (default 5s)
  --records FILE           write every record (JSON lines) there on exit
`;

async function main(): Promise<number> {
  const { values: v } = parseArgs({
    options: {
      hub: { type: 'string' },
      nats: { type: 'string' },
      agents: { type: 'string' },
      'token-file': { type: 'string' },
      'admin-dir': { type: 'string' },
      'state-dir': { type: 'string' },
      processes: { type: 'string' },
      prefix: { type: 'string' },
      'first-index': { type: 'string' },
      'apply-latency': { type: 'string' },
      'failure-rate': { type: 'string' },
      'unhealthy-rate': { type: 'string' },
      'drift-per-minute': { type: 'string' },
      'churn-per-minute': { type: 'string' },
      'churn-downtime': { type: 'string' },
      'clock-skew': { type: 'string' },
      'retry-after': { type: 'string' },
      seed: { type: 'string' },
      'log-dir': { type: 'string' },
      every: { type: 'string' },
      records: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (v.help || !v.hub || !v.nats || !v.agents) {
    (v.help ? process.stdout : process.stderr).write(USAGE);
    return v.help ? 0 : 2;
  }
  const num = (s: string | undefined): number | undefined =>
    s === undefined ? undefined : Number(s);
  if (v['admin-dir'] && !v['state-dir']) {
    // Identities from another hub's CA would be refused forever: where they live is the caller's choice.
    process.stderr.write(
      '--admin-dir needs --state-dir (where the agents keep their identities)\n',
    );
    return 2;
  }
  const auth: SimAuth =
    v['admin-dir'] && v['state-dir']
      ? { kind: 'bootstrap', adminDir: v['admin-dir'], stateDir: v['state-dir'] }
      : {
          kind: 'token',
          ...(v['token-file'] ? { token: (await readFile(v['token-file'], 'utf8')).trim() } : {}),
        };
  const options: SimOptions = {
    hub: v.hub,
    nats: v.nats,
    agents: Number(v.agents),
    auth,
    ...(v.processes ? { processes: Number(v.processes) } : {}),
    ...(v.prefix ? { prefix: v.prefix } : {}),
    ...(v['first-index'] ? { firstIndex: Number(v['first-index']) } : {}),
    ...(v['apply-latency'] ? { applyLatency: v['apply-latency'] } : {}),
    ...(v['failure-rate'] ? { failureRate: num(v['failure-rate']) as number } : {}),
    ...(v['unhealthy-rate'] ? { unhealthyRate: num(v['unhealthy-rate']) as number } : {}),
    ...(v['drift-per-minute'] ? { driftPerMinute: num(v['drift-per-minute']) as number } : {}),
    ...(v['churn-per-minute'] ? { churnPerMinute: num(v['churn-per-minute']) as number } : {}),
    ...(v['churn-downtime'] ? { churnDowntime: v['churn-downtime'] } : {}),
    ...(v['clock-skew'] ? { clockSkewMs: durationOption(v['clock-skew'], 'clock-skew') } : {}),
    ...(v['retry-after'] ? { retryAfterMs: durationOption(v['retry-after'], 'retry-after') } : {}),
    ...(v.seed ? { seed: Number(v.seed) } : {}),
    ...(v['log-dir'] ? { logDir: v['log-dir'] } : {}),
  };
  const every = durationOption(v.every ?? '5s', 'every');
  const sim = await Simulator.start(options);
  console.log(
    `simulating ${sim.names.length} agents in ${sim.config.processes} processes against ${sim.config.hub}; logs in ${sim.config.logDir}`,
  );
  const t0 = await sim.stats();
  const timer = setInterval(() => {
    void sim.stats().then((s) => {
      const revisions = new Map<string, number>();
      for (const a of sim.agents())
        if (a.appliedRevision)
          revisions.set(a.appliedRevision, (revisions.get(a.appliedRevision) ?? 0) + 1);
      const at = [...revisions].map(([r, n]) => `${r.slice(0, 8)}:${n}`).join(' ');
      console.log(
        `connected ${s.connected}/${sim.names.length}  applied ${at || '-'}  events ${s.published} (pending ${s.pending}, dropped ${s.dropped})  cpu ${Math.round(s.cpuMs - t0.cpuMs)} ms  rss ${Math.round(s.rssBytes / 1048576)} MiB`,
      );
    });
  }, every);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(timer);
  await sim.stop();
  if (v.records)
    await writeFile(
      v.records,
      sim
        .records()
        .map((r) => JSON.stringify(r))
        .join('\n') + '\n',
    );
  return 0;
}

quietDependencyWarnings();
main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`flotilla sim: ${errorMessage(err)}`);
    process.exit(1);
  },
);
