// A bundle's `spec.rollout`: the stages a new revision goes through, cluster group by
// cluster group, with their limits, soak times, approvals and time windows. Parsed and
// checked once per bundle.yaml version (a bad strategy is the bundle's render error, at
// its line), and turned into a plan per render: which stage each targeted cluster is in.
// Format documented in docs/rollouts.md.
import { durations, isDnsLabel, parseDuration } from '@flotilla/common';
import type { Selector } from '@flotilla/common';
import type { ClusterDef, ClusterGroupDef } from './spec.js';
import { inGroup } from './spec.js';
import { readSelector } from './target-spec.js';
import type { FieldReader } from './yaml-spec.js';
import type { Amount, RolloutStrategy, StagePolicy, TimeWindow } from './types.js';

/** Name of the implicit last stage, for targeted clusters no declared stage selects. */
export const IMPLICIT_STAGE = 'remaining';

/** One declared stage: who it selects, and its policy. */
export interface StageDef extends StagePolicy {
  selector: Selector | undefined;
  clusterGroup: string | undefined;
  clusterNames: string[];
  /** Line of the stage in bundle.yaml. */
  line: number;
}

/** spec.rollout as parsed. */
export interface RolloutDef {
  stages: StageDef[];
  progressDeadlineMs: number;
  onFailure: 'halt' | 'rollback';
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** Parses spec.rollout; throws ValidationError at the line of the offending field. */
export function parseRollout(r: FieldReader): RolloutDef {
  r.only(['stages', 'progressDeadline', 'onFailure']);
  const stages = r.list('stages').map((s, i) => parseStage(s, i));
  if (stages.length === 0)
    r.fail(
      ['stages'],
      `${r.at('stages')} needs at least one stage (a rollout of nobody is a typo)`,
    );
  const seen = new Set<string>();
  stages.forEach((s, i) => {
    if (seen.has(s.name))
      r.fail(['stages', i, 'name'], `${r.at('stages')}[${i}].name "${s.name}" is used twice`);
    seen.add(s.name);
  });
  const onFailure = r.str('onFailure') ?? 'halt';
  if (onFailure !== 'halt' && onFailure !== 'rollback')
    r.fail(['onFailure'], `${r.at('onFailure')} must be "halt" or "rollback", not "${onFailure}"`);
  const deadline = duration(r, 'progressDeadline', durations.rolloutProgressDeadline);
  if (deadline <= 0) r.fail(['progressDeadline'], `${r.at('progressDeadline')} must be positive`);
  return { stages, progressDeadlineMs: deadline, onFailure: onFailure as 'halt' | 'rollback' };
}

function parseStage(s: FieldReader, index: number): StageDef {
  s.only([
    'name',
    'clusterSelector',
    'clusterGroup',
    'clusterNames',
    'maxConcurrent',
    'maxFailures',
    'soak',
    'approval',
    'windows',
  ]);
  const name = s.str('name') ?? `stage-${index + 1}`;
  if (!isDnsLabel(name)) s.fail(['name'], `${s.at('name')} "${name}" must be a DNS label`);
  if (name === IMPLICIT_STAGE)
    s.fail(['name'], `${s.at('name')} "${name}" is reserved for clusters no stage selects`);
  const clusterGroup = s.str('clusterGroup');
  if (clusterGroup !== undefined && !isDnsLabel(clusterGroup))
    s.fail(['clusterGroup'], `invalid cluster group name "${clusterGroup}"`);
  const names = s.raw('clusterNames') ?? [];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string' && isDnsLabel(n)))
    s.fail(['clusterNames'], `${s.at('clusterNames')} must be a list of cluster names`);
  const selector = readSelector(s, 'clusterSelector');
  if (!selector && clusterGroup === undefined && (names as string[]).length === 0)
    s.fail(
      [],
      `${s.at()} needs clusterSelector, clusterGroup or clusterNames (use "clusterSelector: {}" for every cluster)`,
    );
  const approval = s.str('approval') ?? 'none';
  if (approval !== 'required' && approval !== 'none')
    s.fail(['approval'], `${s.at('approval')} must be "required" or "none", not "${approval}"`);
  const maxConcurrent = amount(s, 'maxConcurrent', { percent: 100 });
  if ('count' in maxConcurrent ? maxConcurrent.count < 1 : maxConcurrent.percent <= 0)
    s.fail(['maxConcurrent'], `${s.at('maxConcurrent')} must let at least one cluster update`);
  return {
    name,
    line: s.lineOf([]),
    selector,
    clusterGroup,
    clusterNames: names as string[],
    maxConcurrent,
    maxFailures: amount(s, 'maxFailures', { count: 0 }),
    soakMs: duration(s, 'soak', 0),
    approval: approval === 'required',
    windows: s.list('windows').map((w) => parseWindow(w)),
  };
}

// A count (3) or a share of the stage's clusters ("25%").
function amount(r: FieldReader, key: string, fallback: Amount): Amount {
  const v = r.raw(key);
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return { count: v };
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)%$/.exec(v.trim()) : null;
  if (!m)
    r.fail([key], `${r.at(key)} must be a count (3) or a percentage ("25%"), not ${String(v)}`);
  const percent = Number(m[1]);
  if (percent > 100) r.fail([key], `${r.at(key)} "${String(v)}" is over 100%`);
  return { percent };
}

function duration(r: FieldReader, key: string, fallback: number): number {
  const v = r.raw(key);
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'string' && typeof v !== 'number')
    r.fail([key], `${r.at(key)} must be a duration such as "5m"`);
  try {
    return parseDuration(v);
  } catch (err) {
    return r.fail([key], `${r.at(key)}: ${(err as Error).message}`, err);
  }
}

// { days: [mon, tue], start: "09:00", end: "17:00" }, in UTC.
function parseWindow(w: FieldReader): TimeWindow {
  w.only(['days', 'start', 'end']);
  const raw = w.raw('days') ?? DAYS;
  if (!Array.isArray(raw) || raw.length === 0)
    w.fail(['days'], `${w.at('days')} must be a list of days (mon, tue, …)`);
  const days = (raw as unknown[]).map((d) => {
    const i = typeof d === 'string' ? DAYS.indexOf(d.slice(0, 3).toLowerCase()) : -1;
    if (i < 0) w.fail(['days'], `${w.at('days')}: "${String(d)}" is not a day (mon … sun)`);
    return i;
  });
  const minute = (key: string): number => {
    const t = w.str(key) ?? w.fail([], `${w.at(key)} is required ("HH:MM", UTC)`);
    const m = /^([01]\d|2[0-4]):([0-5]\d)$/.exec(t);
    const v = m ? Number(m[1]) * 60 + Number(m[2]) : -1;
    if (v < 0 || v > 24 * 60) w.fail([key], `${w.at(key)} "${t}" is not a time "HH:MM" (UTC)`);
    return v;
  };
  const startMinute = minute('start');
  const endMinute = minute('end');
  if (endMinute <= startMinute)
    w.fail(
      ['end'],
      `${w.at('end')} must be after ${w.at('start')} (windows do not cross midnight)`,
    );
  return { days: [...new Set(days)].sort(), startMinute, endMinute };
}

/** The cluster groups a rollout's stages name, with the line of each, for checking they exist. */
export function stageGroups(
  def: RolloutDef | undefined,
): { group: string; index: number; line: number }[] {
  return (def?.stages ?? [])
    .map((s, index) => ({ group: s.clusterGroup, index, line: s.line }))
    .filter((g): g is { group: string; index: number; line: number } => g.group !== undefined);
}

/** True when the stage selects the cluster: named, or matching its selector and group. */
export function stageSelects(
  stage: StageDef,
  cluster: ClusterDef,
  groups: ReadonlyMap<string, ClusterGroupDef>,
): boolean {
  if (stage.clusterNames.includes(cluster.name)) return true;
  if (!stage.selector && stage.clusterGroup === undefined) return false;
  if (stage.selector && !stage.selector.matches(cluster.labels)) return false;
  if (stage.clusterGroup === undefined) return true;
  const g = groups.get(stage.clusterGroup);
  return g !== undefined && inGroup(g, cluster);
}

/** The policies the controller runs (selectors dropped), with the implicit stage when used. */
export function strategyOf(def: RolloutDef, implicitUsed: boolean): RolloutStrategy {
  const stages: StagePolicy[] = def.stages.map((s) => ({
    name: s.name,
    maxConcurrent: s.maxConcurrent,
    maxFailures: s.maxFailures,
    soakMs: s.soakMs,
    approval: s.approval,
    windows: s.windows,
  }));
  if (implicitUsed)
    stages.push({
      name: IMPLICIT_STAGE,
      maxConcurrent: { percent: 100 },
      maxFailures: { count: 0 },
      soakMs: 0,
      approval: false,
      windows: [],
      implicit: true,
    });
  return { stages, progressDeadlineMs: def.progressDeadlineMs, onFailure: def.onFailure };
}
