// Render failures in the status model: a bundle that failed to render for a cluster at a
// revision makes that deployment Failed and the cluster not Ready, with the reason and the
// revision of the rendering still served ("serving <old>; <new> failed to render: …").
// The same text reaches the CLI, the HTTP and gRPC APIs, the page and alerts.

/** A bundle (bundle "": the cluster's whole desired state) that failed to render for a cluster. */
export interface RenderFailureRecord {
  /** The bundle; "" when the cluster's whole desired state failed (its file, the size limit). */
  bundle: string;
  /** The commit that failed to render. */
  revision: string;
  /** What went wrong, "file:line: message" when known (several joined by "; "). */
  message: string;
  /** Commit whose rendering the cluster keeps getting instead; "" when it gets none. */
  servingRevision: string;
}

/** Failures kept per cluster (100, sorted by bundle): a commit breaking more says enough. */
export const MAX_RENDER_FAILURES = 100;
/** Longest message kept per failure (2,000 characters); a tool's output can be long. */
export const MAX_RENDER_FAILURE_MESSAGE = 2_000;
/** Messages joined into one failure (3); the rest are counted. */
const MAX_MESSAGES = 3;
/** Revisions in reasons are shown with this many characters (12, as the CLI does). */
const SHORT = 12;

function bound(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** A renderer's messages for one failure, joined and bounded. */
export function renderFailureMessage(messages: readonly string[]): string {
  const shown = messages.slice(0, MAX_MESSAGES).join('; ');
  const more =
    messages.length > MAX_MESSAGES ? ` (and ${messages.length - MAX_MESSAGES} more)` : '';
  return bound(`${shown}${more}`, MAX_RENDER_FAILURE_MESSAGE);
}

/** A renderer's failure (messages, served revision) as status keeps it. */
export function renderFailureRecord(
  bundle: string,
  revision: string,
  messages: readonly string[],
  servingRevision: string,
): RenderFailureRecord {
  return { bundle, revision, message: renderFailureMessage(messages), servingRevision };
}

/** "serving <old>; <new> failed to render: <message>", or "<new> failed to render: …" when nothing is served. */
export function renderFailureReason(f: RenderFailureRecord): string {
  const failed = `${f.revision.slice(0, SHORT)} failed to render: ${f.message}`;
  return f.servingRevision ? `serving ${f.servingRevision.slice(0, SHORT)}; ${failed}` : failed;
}

/** A cluster's message for its failures, naming the bundles. */
export function clusterRenderMessage(failures: readonly RenderFailureRecord[]): string {
  const first = failures[0];
  if (!first) return '';
  const what = (f: RenderFailureRecord): string =>
    f.bundle ? `bundle ${f.bundle}: ${renderFailureReason(f)}` : renderFailureReason(f);
  if (failures.length === 1) return what(first);
  const names = failures.map((f) => f.bundle || '(cluster)').join(', ');
  return `${failures.length} bundles failed to render (${names}); ${what(first)}`;
}

/** The failure a deployment shows: its bundle's own, else the cluster's whole-state one. */
export function renderFailureFor(
  failures: readonly RenderFailureRecord[] | undefined,
  bundle: string,
): RenderFailureRecord | undefined {
  if (!failures) return undefined;
  return failures.find((f) => f.bundle === bundle) ?? failures.find((f) => f.bundle === '');
}

/** True when both lists hold the same failures (in the same order). */
export function sameRenderFailures(
  a: readonly RenderFailureRecord[] | undefined,
  b: readonly RenderFailureRecord[] | undefined,
): boolean {
  const x = a ?? [];
  const y = b ?? [];
  return (
    x.length === y.length &&
    x.every((f, i) => {
      const g = y[i] as RenderFailureRecord;
      return (
        f.bundle === g.bundle &&
        f.revision === g.revision &&
        f.message === g.message &&
        f.servingRevision === g.servingRevision
      );
    })
  );
}

/** A failure a cluster did not hold before (same bundle at the same revision): worth an alert. */
export interface NewRenderFailure {
  cluster: string;
  failure: RenderFailureRecord;
}

/** The failures in `next` that `before` did not hold (by bundle and revision). */
export function newRenderFailures(
  cluster: string,
  before: readonly RenderFailureRecord[] | undefined,
  next: readonly RenderFailureRecord[],
): NewRenderFailure[] {
  return next
    .filter((f) => !before?.some((b) => b.bundle === f.bundle && b.revision === f.revision))
    .map((failure) => ({ cluster, failure }));
}
