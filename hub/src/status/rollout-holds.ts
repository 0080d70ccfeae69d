// Rollout holds in the status model: a bundle whose rollout has not admitted a cluster
// (or rolled it back) keeps an older rendering there than the fleet head. Such a
// deployment, and a cluster otherwise Ready, is Waiting — never OutOfSync or Failed — and
// says which rollout holds it, why, and which commit it runs instead.

/** A bundle a rollout keeps from its head rendering on one cluster. */
export interface RolloutHoldRecord {
  bundle: string;
  /** The rollout holding it ("" before rollout state is restored). */
  rollout: string;
  /** "held by rollout web@1a2b3c4d5e6f-2: waits for stage 2/3 (prod); stage 1/3 (canary) runs". */
  reason: string;
  /** Commit of the rendering the cluster runs instead; "" when it gets none of the bundle. */
  servingRevision: string;
  /** Commit of the head rendering it does not get yet. */
  targetRevision: string;
}

/** Holds kept per cluster (100); a cluster held by more says enough. */
export const MAX_ROLLOUT_HOLDS = 100;

/** A hold's reason with what runs instead: "…; serving 1a2b3c4d5e6f" or "…; not deployed yet". */
export function holdText(h: RolloutHoldRecord): string {
  const serving = h.servingRevision
    ? `serving ${h.servingRevision.slice(0, 12)}`
    : 'not deployed here yet';
  return `${h.reason}; ${serving}`;
}

/** A cluster's message for its holds, naming the bundles. */
export function clusterHoldMessage(holds: readonly RolloutHoldRecord[]): string {
  const first = holds[0];
  if (!first) return '';
  if (holds.length === 1) return `bundle ${first.bundle} ${holdText(first)}`;
  const names = holds.map((h) => h.bundle).join(', ');
  return `${holds.length} bundles held by rollouts (${names}); bundle ${first.bundle} ${holdText(first)}`;
}

/** True when both lists hold the same holds, in the same order. */
export function sameHolds(
  a: readonly RolloutHoldRecord[] | undefined,
  b: readonly RolloutHoldRecord[] | undefined,
): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return (
    x.length === y.length &&
    x.every((h, i) => {
      const g = y[i] as RolloutHoldRecord;
      return (
        h.bundle === g.bundle &&
        h.rollout === g.rollout &&
        h.reason === g.reason &&
        h.servingRevision === g.servingRevision &&
        h.targetRevision === g.targetRevision
      );
    })
  );
}
