// What a source follows (a branch, a tag, an exact commit or a semver tag range) and how
// that choice picks one commit out of the refs a Git server advertises.
import semver from 'semver';
import { ConfigError, FlotillaError } from '@flotilla/common';

/** The revision a source follows; exactly one kind per source. */
export type SourceRef =
  | { kind: 'branch'; name: string }
  | { kind: 'tag'; name: string }
  | { kind: 'commit'; sha: string }
  | { kind: 'semver'; range: string };

/** One ref as the server lists it; `peeled` is the commit of an annotated tag. */
export interface ServerRef {
  ref: string;
  oid: string;
  peeled?: string | undefined;
}

/** The ref a source resolved to on the server: what to fetch and the commit it names. */
export interface ResolvedRef {
  /** Full ref name to fetch (refs/heads/x, refs/tags/x), or the commit SHA itself. */
  fetchRef: string;
  /** Commit the ref points at (tags peeled); undefined when the server does not advertise it. */
  commit: string | undefined;
  /** Human form for logs and status: "branch main", "tag v1.2.3 (^1.2.0)". */
  describe: string;
}

const SHA_RE = /^[0-9a-f]{40}$/;

/** Checks a ref chosen in config; throws ConfigError naming `field`. */
export function validateSourceRef(ref: SourceRef, field: string): SourceRef {
  switch (ref.kind) {
    case 'branch':
    case 'tag':
      if (!/^[^\s~^:?*[\\]+$/.test(ref.name) || ref.name.startsWith('refs/')) {
        throw new ConfigError(
          `${field}.${ref.kind}`,
          `"${ref.name}" is not a valid short ${ref.kind} name`,
        );
      }
      return ref;
    case 'commit':
      if (!SHA_RE.test(ref.sha))
        throw new ConfigError(
          `${field}.commit`,
          'must be a full 40-character lower-case commit SHA',
        );
      return ref;
    case 'semver':
      if (semver.validRange(ref.range) === null) {
        throw new ConfigError(
          `${field}.semver`,
          `"${ref.range}" is not a semver range (e.g. "v1.2.x", "^1.2.0", ">=1.0.0 <2.0.0")`,
        );
      }
      return ref;
  }
}

/** "branch main", "tag v1", "commit abc…", "semver ^1.2.0": for logs and status. */
export function describeRef(ref: SourceRef): string {
  switch (ref.kind) {
    case 'branch':
      return `branch ${ref.name}`;
    case 'tag':
      return `tag ${ref.name}`;
    case 'commit':
      return `commit ${ref.sha}`;
    case 'semver':
      return `semver ${ref.range}`;
  }
}

/**
 * Picks the ref to fetch from the server's list. A semver range takes the highest
 * matching tag (a leading "v" is allowed; pre-releases only when the range names one).
 * Throws NOT_FOUND (retryable: it may appear later) naming what was looked for.
 */
export function resolveRef(ref: SourceRef, refs: readonly ServerRef[]): ResolvedRef {
  const byName = new Map(refs.map((r) => [r.ref, r]));
  const commitOf = (r: ServerRef): string => r.peeled ?? r.oid;
  switch (ref.kind) {
    case 'branch': {
      const r = byName.get(`refs/heads/${ref.name}`);
      if (!r) throw notFound(`branch "${ref.name}" not found`);
      return { fetchRef: r.ref, commit: commitOf(r), describe: describeRef(ref) };
    }
    case 'tag': {
      const r = byName.get(`refs/tags/${ref.name}`);
      if (!r) throw notFound(`tag "${ref.name}" not found`);
      return { fetchRef: r.ref, commit: commitOf(r), describe: describeRef(ref) };
    }
    case 'commit': {
      // Prefer a ref that points at the commit: every server lets us fetch a ref tip.
      const r = refs.find((x) => commitOf(x) === ref.sha && x.ref !== 'HEAD');
      return { fetchRef: r?.ref ?? ref.sha, commit: ref.sha, describe: describeRef(ref) };
    }
    case 'semver': {
      const tags = refs
        .filter((r) => r.ref.startsWith('refs/tags/'))
        .map((r) => r.ref.slice('refs/tags/'.length));
      const best = semver.maxSatisfying(
        tags.filter((t) => semver.valid(t) !== null),
        ref.range,
      );
      if (best === null)
        throw notFound(
          `no tag matches semver range "${ref.range}" (${tags.length} tags on the server)`,
        );
      const r = byName.get(`refs/tags/${best}`) as ServerRef;
      return {
        fetchRef: r.ref,
        commit: commitOf(r),
        describe: `tag ${best} (semver ${ref.range})`,
      };
    }
  }
}

/** True when a pushed ref (refs/heads/x or refs/tags/x) can change what this source follows. */
export function refMayMove(ref: SourceRef, pushedRef: string): boolean {
  switch (ref.kind) {
    case 'branch':
      return pushedRef === `refs/heads/${ref.name}`;
    case 'tag':
      return pushedRef === `refs/tags/${ref.name}`;
    case 'semver':
      return pushedRef.startsWith('refs/tags/');
    case 'commit':
      return false; // a pinned commit never moves
  }
}

function notFound(message: string): FlotillaError {
  return new FlotillaError('NOT_FOUND', message, { retryable: true });
}
