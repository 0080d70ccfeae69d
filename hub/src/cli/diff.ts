// `flotilla diff`: renders two revisions of a local fleet repo and shows which clusters
// and which objects a change touches — what a reviewer needs to judge a pull request
// whose effect is spread over many clusters by selectors, groups and variables.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { canonicalJson, errorMessage, objectKey } from '@flotilla/common';
import type { DesiredState, KubeObject } from '@flotilla/common';
import { formatRenderError, renderFleet } from '../render/index.js';
import type { RenderResult } from '../render/index.js';
import { validateFleetPath } from '../source/index.js';
import { chartSettingsOf, renderOptionsFromEnv } from './render.js';
import type { RenderIo } from './render.js';
import { readRevisionTree, resolveRevision } from './git-revision.js';
import { unifiedDiff } from './line-diff.js';
import { redactSecret } from './secrets.js';

/** Usage of `flotilla diff`. */
export const DIFF_USAGE = `Usage: flotilla diff --from REV --to REV [--repo DIR] [--path PATH] [--cluster NAME] [--show-secrets]
                     [--hub-config FILE]

Renders the fleet repo in the Git repository DIR (default: the current directory) at
two revisions (anything git understands: a branch, a tag, HEAD~1, a SHA) and prints,
per cluster, the objects the change adds (+), removes (-) and changes (~, with a
unified diff). Only committed content is read; the work tree is ignored.
--path is the fleet's root directory inside the repository, as a hub source's
\`path\` (e.g. deploy/fleet; default: the repository root); it must exist at both
revisions. The values of Secrets print as <redacted> (<redacted, changed> where they
differ) unless --show-secrets is given; SOPS keys as for \`flotilla render\`.
revisions. A Helm bundle whose chart comes from a chart repository or registry shows
its chart version change (~ app: chart podinfo 6.5.0 → 6.5.1); --hub-config FILE gives
the credentials and CAs of those repositories (the hub config's charts: section).

Exit codes (as kubectl diff): 0 no differences, 1 differences, 2 or more an error
(bad usage, unknown revision, or render errors at --to, printed to stderr).
`;

interface Args {
  repo: string;
  /** Normalised fleet path inside the repository ("" = its root). */
  path: string;
  from: string;
  to: string;
  cluster: string | undefined;
  showSecrets: boolean;
  /** A hub config whose charts: section gives chart repository credentials. */
  hubConfig: string | undefined;
}

function parse(argv: string[], io: RenderIo): Args | 'help' | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        repo: { type: 'string' },
        path: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        cluster: { type: 'string' },
        'show-secrets': { type: 'boolean' },
        'hub-config': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    return errorMessage(err);
  }
  if (values.help) return 'help';
  if (!values.from || !values.to) return 'missing --from REV or --to REV';
  let path: string;
  try {
    path = validateFleetPath(values.path, '--path');
  } catch (err) {
    return errorMessage(err);
  }
  return {
    repo: resolve(io.cwd ?? process.cwd(), values.repo ?? '.'),
    path,
    from: values.from,
    to: values.to,
    cluster: values.cluster,
    showSecrets: values['show-secrets'] === true,
    hubConfig: values['hub-config'],
  };
}

/** Runs `flotilla diff` with argv (after "diff"); returns the exit code. */
export async function diffCommand(argv: string[], io: RenderIo): Promise<number> {
  const args = parse(argv, io);
  if (args === 'help') {
    io.stdout.write(DIFF_USAGE);
    return 0;
  }
  if (typeof args === 'string') {
    io.stderr.write(`flotilla diff: ${args}\n\n${DIFF_USAGE}`);
    return 2;
  }
  let before: RenderResult;
  let after: RenderResult;
  try {
    const [from, to] = [
      await resolveRevision(args.repo, args.from),
      await resolveRevision(args.repo, args.to),
    ];
    const opts = {
      ...renderOptionsFromEnv(io.env),
      ...(await chartSettingsOf(args.hubConfig, io.env ?? process.env)),
    };
    before = await renderFleet(await readRevisionTree(args.repo, from, args.path), from, opts);
    after = await renderFleet(await readRevisionTree(args.repo, to, args.path), to, opts);
  } catch (err) {
    io.stderr.write(`flotilla diff: ${errorMessage(err)}\n`);
    return 2;
  }
  const errors = after.errors.filter(
    (e) => args.cluster === undefined || e.cluster === undefined || e.cluster === args.cluster,
  );
  for (const e of errors) io.stderr.write(`error at ${args.to}: ${formatRenderError(e)}\n`);
  const names = [...new Set([...before.clusters.keys(), ...after.clusters.keys()])]
    .filter((c) => args.cluster === undefined || c === args.cluster)
    .sort();
  if (args.cluster !== undefined && names.length === 0 && errors.length === 0) {
    io.stderr.write(`flotilla diff: cluster "${args.cluster}" is in neither revision\n`);
    return 2;
  }
  let changed = 0;
  for (const name of names) {
    if (after.pausedClusters.includes(name)) {
      io.stdout.write(`cluster ${name}: paused at ${args.to}; it keeps its desired state\n`);
      continue;
    }
    const text = diffCluster(
      name,
      before.clusters.get(name),
      after.clusters.get(name),
      after.held.get(name) ?? [],
      args.showSecrets,
    );
    if (text === '') continue;
    changed++;
    io.stdout.write(text);
  }
  io.stdout.write(
    changed === 0 ? 'no cluster changes\n' : `${changed} of ${names.length} clusters change\n`,
  );
  if (errors.length > 0) return 2;
  return changed > 0 ? 1 : 0;
}

interface Entry {
  bundle: string;
  object: KubeObject;
}

function entries(state: DesiredState | undefined): Map<string, Entry> {
  const out = new Map<string, Entry>();
  for (const b of state?.bundles ?? [])
    for (const object of [...b.objects, ...(b.hooks ?? []).map((h) => h.object)])
      out.set(objectKey(object), { bundle: b.name, object });
  return out;
}

// A bundle held at --to (broken or paused) keeps what the cluster has: not a removal.
function diffCluster(
  name: string,
  from: DesiredState | undefined,
  to: DesiredState | undefined,
  held: readonly string[],
  showSecrets: boolean,
): string {
  if (from && to && from.digest === to.digest) return '';
  const a = entries(from);
  const b = entries(to);
  const lines: string[] = chartLines(from, to);
  let counts = { added: 0, removed: 0, changed: 0 };
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(key);
    const y = b.get(key);
    if (x && !y) {
      if (held.includes(x.bundle)) continue;
      counts = { ...counts, removed: counts.removed + 1 };
      lines.push(`  - ${x.bundle}: ${describe(x.object)}`);
    } else if (!x && y) {
      counts = { ...counts, added: counts.added + 1 };
      lines.push(`  + ${y.bundle}: ${describe(y.object)}`);
    } else if (x && y && canonicalJson(x.object) !== canonicalJson(y.object)) {
      counts = { ...counts, changed: counts.changed + 1 };
      const owner = x.bundle === y.bundle ? y.bundle : `${x.bundle} → ${y.bundle}`;
      lines.push(`  ~ ${owner}: ${describe(y.object)}`);
      const [old, now] = showSecrets
        ? [x.object, y.object]
        : [redactSecret(x.object), redactSecret(y.object, x.object)];
      for (const l of unifiedDiff(toYaml(old), toYaml(now), 3)) lines.push(`      ${l}`);
    }
  }
  for (const bundle of held)
    lines.push(
      `  ! ${bundle}: not rendered at this revision (error or paused); the cluster keeps what it has`,
    );
  if (lines.length === 0) return '';
  const what = !from ? ' (new cluster)' : !to ? ' (cluster removed or paused)' : '';
  return `cluster ${name}${what}: ${counts.added} added, ${counts.removed} removed, ${counts.changed} changed\n${lines.join('\n')}\n`;
}

// Bundles from chart repositories whose chart version changes (a range admitting a new
// version, or a new pin), before their objects.
function chartLines(from: DesiredState | undefined, to: DesiredState | undefined): string[] {
  const before = new Map((from?.bundles ?? []).map((b) => [b.name, b.chart]));
  const out: string[] = [];
  for (const b of to?.bundles ?? []) {
    const was = before.get(b.name);
    if (!b.chart || (was && was.version === b.chart.version && was.digest === b.chart.digest))
      continue;
    const old = was ? `${was.name} ${was.version}` : 'none';
    out.push(`  ~ ${b.name}: chart ${old} → ${b.chart.name} ${b.chart.version} (${b.chart.repo})`);
  }
  return out;
}

function describe(o: KubeObject): string {
  const ns = o.metadata.namespace !== undefined ? `${o.metadata.namespace}/` : '';
  return `${o.kind} ${ns}${o.metadata.name} (${o.apiVersion})`;
}

// Keys sorted, so a diff shows what changed rather than how a file ordered its keys.
function toYaml(o: KubeObject): string[] {
  return stringify(JSON.parse(canonicalJson(o)), { lineWidth: 0, aliasDuplicateObjects: false })
    .trimEnd()
    .split('\n');
}
