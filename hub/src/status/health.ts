// Health facts per bundle: how a health-changed event folds into them, and when a
// deployment counts as healthy at what its cluster runs now. The agent states a bundle's
// health again for every applied revision, with the desired-state digest it applied
// (HealthChangedData in common/src/events.ts), so "healthy at this content" can be told
// apart from "healthy before it".
import type { HealthFacts } from './event-data.js';
import type { BundleFacts, ClusterRecord, ClusterStatus } from './model.js';
import type { BundleDeployment } from './deployments.js';
import { shared } from './shared-strings.js';

/** The content a health fact or event is about. */
interface Content {
  revision: string;
  digest: string;
}

// By digest when both sides carry one (two commits that render the same content are the
// same state), else by commit; unknown content matches nothing.
function sameContent(a: Content, b: Content): boolean {
  if (a.digest !== '' && b.digest !== '') return a.digest === b.digest;
  return a.revision !== '' && a.revision === b.revision;
}

/**
 * Folds a health event (at atMs) into a bundle's facts; false when it is stale. A later
 * event wins, except that a fact about the cluster's desired content is never replaced
 * by one about other content (an event from an agent's previous instance, or delivered
 * late): any order of delivery ends at the health of what the cluster should run. An
 * event that does not say what it is about (no revision, no digest) is ordered by time.
 */
export function foldHealthFacts(
  rec: ClusterRecord,
  f: BundleFacts,
  h: HealthFacts,
  atMs: number,
): boolean {
  if (atMs < f.lastHealthMs) return false;
  const desired = { revision: rec.desiredRevision, digest: rec.desiredDigest };
  const fact = { revision: f.healthRevision ?? '', digest: f.healthDigest ?? '' };
  const known = h.revision !== '' || h.digest !== '';
  if (known && sameContent(fact, desired) && !sameContent(h, desired)) return false;
  f.lastHealthMs = atMs;
  if (f.health !== h.health) f.lastTransitionMs = atMs;
  f.health = h.health;
  f.healthReason = h.health === 'Ready' ? '' : h.reason;
  f.healthRevision = shared(h.revision);
  f.healthDigest = shared(h.digest);
  return true;
}

/**
 * True when a deployment's health is Ready and about what its cluster has applied: the
 * same desired-state digest (whichever commit brought it) or, from agents that send no
 * digest, the same commit.
 */
export function healthyAtApplied(
  d: Pick<BundleDeployment, 'health' | 'healthRevision' | 'healthDigest'>,
  cluster: Pick<ClusterStatus, 'appliedRevision' | 'appliedDigest'>,
): boolean {
  if (d.health !== 'Ready') return false;
  return sameContent(
    { revision: d.healthRevision, digest: d.healthDigest },
    { revision: cluster.appliedRevision, digest: cluster.appliedDigest },
  );
}
