// Readers for the data of drift and health events. The agent owns their schema
// (DriftDetectedData, DriftCorrectedData, HealthChangedData in common/src/events.ts:
// one object per drift event, changed fields as `changes[].path`, the field manager as
// `manager`). These normalize it, and also accept a list of objects and a few
// alternative names, so a slightly different event still folds instead of being
// dropped. Anything without the essentials is a ValidationError.
import { ValidationError } from '@flotilla/common';

/** One drifted object as the hub keeps it. */
export interface DriftedObject {
  bundle: string;
  kind: string;
  namespace: string;
  name: string;
  /** JSON pointers of the fields that differ. */
  fields: string[];
  /** Field managers that changed the object, when the agent could tell. */
  changedBy: string[];
}

/** data of drift-detected and drift-corrected, normalized. */
export interface DriftFacts {
  revision: string;
  objects: DriftedObject[];
  /** Bundles the event is about (from its objects, or its own bundle field). */
  bundles: string[];
}

/** data of health-changed, normalized. */
export interface HealthFacts {
  bundle: string;
  /** Ready, Progressing, Degraded or Failed. */
  health: string;
  message: string;
  /** The first reason the health is not Ready ("" when none was given). */
  reason: string;
  /** Commit the health is about ("" when the event does not say). */
  revision: string;
  /** Desired-state digest the health is about ("" from agents that predate it). */
  digest: string;
}

type Obj = Record<string, unknown>;

const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const strs = (v: unknown): string[] =>
  Array.isArray(v)
    ? v.filter((x): x is string => typeof x === 'string')
    : typeof v === 'string' && v !== ''
      ? [v]
      : [];

function readObject(o: Obj, fallbackBundle: string): DriftedObject {
  const ref = (o.object && typeof o.object === 'object' ? o.object : o) as Obj;
  const changes = Array.isArray(o.changes)
    ? o.changes.map((c) => str((c as Obj | null)?.path)).filter((p) => p !== '')
    : undefined;
  const fields = changes ?? strs(o.fields ?? o.paths);
  return {
    bundle: str(o.bundle) || fallbackBundle,
    kind: str(ref.kind),
    namespace: str(ref.namespace),
    name: str(ref.name),
    fields: o.deleted === true ? ['<deleted>', ...fields] : fields,
    changedBy: strs(o.changedBy ?? o.managers ?? o.manager),
  };
}

/** Identity of a drifted object within its bundle: "Kind/namespace/name". */
export function objectKeyOf(o: DriftedObject): string {
  return `${o.kind}/${o.namespace}/${o.name}`;
}

/** Normalizes a drift event's data; throws ValidationError when it names no bundle. */
export function readDrift(data: unknown): DriftFacts {
  const d = data as Obj;
  const bundle = str(d.bundle);
  const list = d.objects ?? d.drifted;
  if (list !== undefined && !Array.isArray(list))
    throw new ValidationError('drift event: objects must be a list');
  // The agent's schema: one object per event, at data.object.
  const single = d.object && typeof d.object === 'object' ? [d] : [];
  const objects = [...single, ...((list as unknown[] | undefined) ?? [])]
    .filter((o): o is Obj => !!o && typeof o === 'object')
    .map((o) => readObject(o, bundle));
  const bundles = [
    ...new Set([
      ...(bundle ? [bundle] : []),
      ...objects.map((o) => o.bundle).filter((b) => b !== ''),
    ]),
  ].sort();
  if (bundles.length === 0)
    throw new ValidationError('drift event names no bundle (data.bundle or objects[].bundle)');
  return { revision: str(d.revision), objects, bundles };
}

/** Normalizes a health event's data; throws ValidationError without a bundle or health. */
export function readHealth(data: unknown): HealthFacts {
  const d = data as Obj;
  const bundle = str(d.bundle);
  const health = str(d.health) || str(d.state) || str(d.status);
  if (!bundle) throw new ValidationError('health event names no bundle (data.bundle)');
  if (!health) throw new ValidationError('health event has no health (data.health)');
  return {
    bundle,
    health,
    message: str(d.message) || strs(d.reasons).slice(0, 3).join('; '),
    reason: strs(d.reasons)[0] ?? str(d.message),
    revision: str(d.revision),
    digest: str(d.digest),
  };
}
