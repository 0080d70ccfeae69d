// @flotilla/agent: the agent CLI entry point and the apply library. Named exports only.
export { runAgentCli } from './cli.js';
export type { RunAgentOptions } from './cli.js';
export { AGENT_V8_FLAGS, applyAgentV8Flags } from './node-flags.js';
export { AgentApp } from './app.js';
export { AGENT_DEFAULTS, compileConfig } from './config/config.js';
export type { AgentConfig } from './config/config.js';
export { parseAgentArgs } from './config/options.js';
export type { AgentOptions } from './config/options.js';

// Kubernetes client
export { FIELD_MANAGER, KubeClient, loadKubeConfig } from './kube/client.js';
export type { KubeClientOptions } from './kube/client.js';
export { KubeApiError, KubeConnectionError, UnknownKindError } from './kube/errors.js';
export { describeRef, refOf } from './kube/types.js';
export type {
  ApplyRequestOptions,
  KubeApi,
  ListOptions,
  ObjectRef,
  ResourceInfo,
} from './kube/types.js';

// Apply library
export { APPLY_DEFAULTS, applyObject, applySet, prepareObject } from './apply/apply.js';
export type { ApplyOptions } from './apply/apply.js';
export { countActions, failureMessages, writes } from './apply/changeset.js';
export type { ChangeAction, ChangeCounts, ChangeSetEntry } from './apply/changeset.js';
export { deleteObject, deleteObjects } from './apply/delete.js';
export type { DeleteOptions } from './apply/delete.js';
export { comparable, sameObject } from './apply/diff.js';
export {
  APPLY_ORDER,
  DELETE_ORDER,
  groupByStage,
  isCrd,
  isNamespace,
  stageOf,
} from './apply/order.js';
export type { Stage } from './apply/order.js';
export { waitForCrds } from './apply/wait.js';
export type { WaitOptions } from './apply/wait.js';

// Inventory, stored state, reconcile
export { INVENTORY_LABEL, INVENTORY_PREFIX, InventoryStore } from './inventory/inventory.js';
export type { Inventory } from './inventory/inventory.js';
export { STATE_PREFIX, StateStore } from './inventory/state-store.js';
export type { AppliedMark, StoredState } from './inventory/state-store.js';
export { reconcile } from './sync/reconcile.js';
export { LatestWinsQueue } from './sync/queue.js';
export type { ReconcileOptions, ReconcileOutcome, ReconcileResultKind } from './sync/reconcile.js';

// Connection and events
export { ChunkAssembler, decodeDesiredState } from './connection/chunks.js';
export { DesiredStateRejectedError } from './connection/errors.js';
export { HubConnection } from './connection/hub-connection.js';
export type {
  AckInput,
  HubConnectionOptions,
  HubHandler,
  ReceivedState,
} from './connection/hub-connection.js';
export type { ConnectionState } from './connection/state.js';
export { EventPublisher } from './report/publisher.js';
export type { EventPublisherOptions, EventSink } from './report/publisher.js';
export { natsSink } from './report/nats-sink.js';
export { EVENT_SPOOL_FILE, readSpool } from './report/spool.js';
export type { SpoolContents, SpooledEvent } from './report/spool.js';
export type { NatsSinkOptions } from './report/nats-sink.js';

// Cluster identity (registration with a bootstrap token, renewal)
export { AgentIdentity } from './identity/identity.js';
export type { AgentIdentityOptions } from './identity/identity.js';
