// `flotilla rollout list|status|history|approve|pause|resume|abort|retry`: progressive
// rollouts through the hub's HTTP API. Reads need what every read needs; actions need
// the administrator certificate (admin directory) or a token with the write scope.
import { parseArgs } from 'node:util';
import { isDnsLabel } from '@flotilla/common';
import type { HistoryEntry } from '../history/history-log.js';
import { ROLLOUT_ACTIONS } from '../rollout/machine.js';
import type { RolloutAction } from '../rollout/machine.js';
import type { RolloutSummary, RolloutView } from '../rollout/view.js';
import { OPTIONS, outputFormat } from './fleet.js';
import { DEFAULT_HUB_URL, getJson, hubBase, postJson, queryString } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { CA_FILE_USAGE, hubFetch } from './hub-tls.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';
import { formatRollout, formatRolloutHistory, formatRolloutList } from './rollout-format.js';

/** Usage text of `flotilla rollout`. */
export const ROLLOUT_USAGE = `Usage:
  flotilla rollout list [-o FMT]
  flotilla rollout status BUNDLE [-o FMT]
  flotilla rollout history BUNDLE [--limit N] [-o FMT]
  flotilla rollout approve|pause|resume|abort|retry BUNDLE [--revision SHA]

A bundle with spec.rollout gets each new revision stage by stage (docs/rollouts.md).
"status" shows its latest rollout: stages with clusters per phase, soak time left, and
why it halted or rolled back. "history" lists its transitions, newest first.

  approve   let the stage that waits for approval start
  pause     stop starting clusters (health is still watched; failures still halt)
  resume    continue a paused rollout
  abort     stop, and put back what was healthy on every cluster that got the revision
  retry     a halted rollout: give failed clusters a new deadline; a rolled back or
            aborted one: run its stages again from the first

Actions need the administrator certificate (the admin directory) or an API token
created with --scope write; read-only tokens are refused.

Options:
  --revision SHA      act only if the rollout is of this commit (7+ hex characters)
  --limit N           history entries (default 1000)
  --hub-url URL       hub HTTP API (default $FLOTILLA_HUB_URL or ${DEFAULT_HUB_URL})
  -o, --output FMT    table (default), wide, json or yaml
${CA_FILE_USAGE}
`;

const VERBS = ['list', 'status', 'history', ...ROLLOUT_ACTIONS];

/** Runs `flotilla rollout ...`; returns the exit code. */
export async function rolloutCommand(
  argv: string[],
  io: CliIo,
  fetchFn: Fetch = fetch,
  now = Date.now,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...OPTIONS,
      revision: { type: 'string' },
      limit: { type: 'string' },
    },
  });
  const [verb, bundle, ...extra] = positionals;
  if (values.help || verb === undefined) {
    (values.help ? io.stdout : io.stderr).write(ROLLOUT_USAGE);
    return values.help ? ExitCode.ok : ExitCode.usage;
  }
  if (!VERBS.includes(verb))
    throw new UsageError(`unknown rollout command "${verb}" (use ${VERBS.join(', ')})`);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (verb === 'list' && bundle) throw new UsageError(`unexpected arguments: ${bundle}`);
  if (verb !== 'list' && !bundle) throw new UsageError(`rollout ${verb} needs a BUNDLE`);
  if (bundle && !isDnsLabel(bundle)) throw new UsageError(`"${bundle}" is not a bundle name`);
  if (values.revision !== undefined && !/^[0-9a-f]{7,64}$/.test(values.revision))
    throw new UsageError(
      `--revision: "${values.revision}" is not a commit SHA (7+ hex characters)`,
    );
  const format = outputFormat(values.output);
  const base = hubBase(values['hub-url'], io);
  fetchFn = hubFetch(fetchFn, values['ca-file'], io, values['token-file']);
  const at = `${base}/api/v1/rollouts`;
  if (verb === 'list') {
    const { rollouts } = (await getJson(fetchFn, at)) as { rollouts: RolloutSummary[] };
    io.stdout.write(formatRolloutList(rollouts, format, now()));
    return ExitCode.ok;
  }
  const b = encodeURIComponent(bundle as string);
  if (verb === 'status') {
    const v = (await getJson(fetchFn, `${at}/${b}`)) as RolloutView;
    io.stdout.write(formatRollout(v, format, now()));
    return ExitCode.ok;
  }
  if (verb === 'history') {
    const { entries } = (await getJson(
      fetchFn,
      `${at}/${b}/history${queryString({ limit: values.limit })}`,
    )) as { entries: HistoryEntry[] };
    io.stdout.write(formatRolloutHistory(entries, format, now()));
    return ExitCode.ok;
  }
  const action = verb as RolloutAction;
  const v = (await postJson(
    fetchFn,
    `${at}/${b}/${action}${queryString({ revision: values.revision })}`,
  )) as RolloutView;
  if (format === 'json' || format === 'yaml') io.stdout.write(formatRollout(v, format, now()));
  else
    io.stdout.write(
      `rollout ${v.id}: ${action} done; now ${v.phase}${v.reason ? ` (${v.reason})` : ''}\n`,
    );
  return ExitCode.ok;
}
