// Where identity records live, behind one small interface: every record (a cluster, a
// bootstrap token, an API token, an administrator, a revoked NATS key) is changed on its
// own by compare-and-set, and read from an in-memory view that certificate checks use
// without any I/O. Two implementations: one JSON file in identity.stateDir (one hub), and
// a JetStream KV bucket shared by hub replicas (kv-records.ts).
import { IdentityStore } from './store.js';
import type {
  AdminRecord,
  ApiTokenRecord,
  ClusterRecord,
  IdentityState,
  NatsRevocation,
  RosterRecord,
  TokenRecord,
} from './store.js';

/** Every identity record in memory, by kind and key. */
export interface IdentityView {
  clusters: Record<string, ClusterRecord>;
  /** Bootstrap tokens by id. */
  tokens: Record<string, TokenRecord>;
  apiTokens: Record<string, ApiTokenRecord>;
  admins: Record<string, AdminRecord>;
  /** Revoked NATS user keys (public key → when revoked, when their JWT expires anyway). */
  natsRevocations: Record<string, NatsRevocation>;
  /** Sets of names changed as one record (store.ts RosterRecord), by key. */
  rosters: Record<string, RosterRecord>;
}

/** A kind of record. */
export type RecordKind = keyof IdentityView;

/** The record type of a kind. */
export type RecordOf<K extends RecordKind> = IdentityView[K][string];

/** Returned by a change function to leave the record as it is (nothing written). */
export const UNCHANGED: unique symbol = Symbol('unchanged');

/**
 * Computes the next value of a record from a copy of the current one (undefined: none).
 * Returns the next record, undefined to delete it, or UNCHANGED. May be called again with
 * a newer record when another writer changed it first; what it throws goes to the caller.
 */
export type RecordChange<K extends RecordKind> = (
  current: RecordOf<K> | undefined,
) => RecordOf<K> | undefined | typeof UNCHANGED;

/** A record changed by another writer (another hub replica): its kind, key, before and after. */
export type RemoteChangeListener = <K extends RecordKind>(
  kind: K,
  key: string,
  before: RecordOf<K> | undefined,
  after: RecordOf<K> | undefined,
) => void;

/** The identity records of one hub. */
export interface IdentityRecords {
  /** Every record, kept current; read only (change records with update). */
  readonly view: IdentityView;
  /** Where they are, for logs and errors. */
  readonly where: string;
  /** Loads every record; changes from other writers are followed until stop(). */
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Changes one record by compare-and-set (see RecordChange); resolves with what is stored. */
  update<K extends RecordKind>(
    kind: K,
    key: string,
    change: RecordChange<K>,
  ): Promise<RecordOf<K> | undefined>;
  /** Told of changes written by someone else; returns an unsubscribe function. */
  onRemoteChange(listener: RemoteChangeListener): () => void;
}

/** An empty view. */
export function emptyView(): IdentityView {
  return {
    clusters: {},
    tokens: {},
    apiTokens: {},
    admins: {},
    natsRevocations: {},
    rosters: {},
  };
}

/** The view of an identity-state.json. */
export function viewOfState(state: IdentityState): IdentityView {
  return {
    clusters: { ...state.clusters },
    tokens: Object.fromEntries(state.tokens.map((t) => [t.id, t])),
    apiTokens: { ...(state.apiTokens ?? {}) },
    admins: { ...(state.admins ?? {}) },
    natsRevocations: { ...(state.natsRevocations ?? {}) },
    rosters: { ...(state.rosters ?? {}) },
  };
}

/** The identity-state.json of a view. */
export function stateOfView(view: IdentityView): IdentityState {
  return {
    version: 1,
    clusters: view.clusters,
    tokens: Object.values(view.tokens),
    natsRevocations: view.natsRevocations,
    apiTokens: view.apiTokens,
    admins: view.admins,
    rosters: view.rosters,
  };
}

/** Applies a change to a view in memory; returns what is stored after it. */
export function applyChange<K extends RecordKind>(
  view: IdentityView,
  kind: K,
  key: string,
  change: RecordChange<K>,
): { changed: boolean; stored: RecordOf<K> | undefined } {
  const records = view[kind] as Record<string, RecordOf<K>>;
  const current = records[key];
  const next = change(current === undefined ? undefined : structuredClone(current));
  if (next === UNCHANGED) return { changed: false, stored: current };
  if (next === undefined) {
    if (current === undefined) return { changed: false, stored: undefined };
    delete records[key];
  } else records[key] = next;
  return { changed: true, stored: next };
}

/**
 * One JSON file (identity-state.json, mode 0600) for a single hub: one process owns it, so
 * a change applied to memory synchronously is already compare-and-set. Writes coalesce:
 * changes made while a write is queued go out with it.
 */
export class FileIdentityRecords implements IdentityRecords {
  readonly view: IdentityView = emptyView();
  private readonly store: IdentityStore;
  private queued: Promise<void> | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {
    this.store = new IdentityStore(file);
  }

  get where(): string {
    return this.file;
  }

  async start(): Promise<void> {
    Object.assign(this.view, viewOfState(await this.store.load()));
  }

  async stop(): Promise<void> {
    await this.writing;
  }

  async update<K extends RecordKind>(
    kind: K,
    key: string,
    change: RecordChange<K>,
  ): Promise<RecordOf<K> | undefined> {
    const { changed, stored } = applyChange(this.view, kind, key, change);
    if (changed) await this.save();
    return stored;
  }

  /** Writes the whole view once any write in progress is done. */
  save(): Promise<void> {
    if (this.queued) return this.queued;
    const next = this.writing.then(() => {
      this.queued = undefined;
      return this.store.save(stateOfView(this.view));
    });
    this.queued = next;
    this.writing = next.catch(() => undefined);
    return next;
  }

  onRemoteChange(): () => void {
    // Nobody else writes the file.
    return () => undefined;
  }
}
