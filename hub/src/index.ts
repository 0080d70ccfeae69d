// @flotilla/hub: the hub service and the `flotilla` CLI. Named exports only.
export { HubApp, realHubParts, sourceRenderers } from './app.js';
export type {
  FleetRendering,
  FleetSnapshot,
  FleetSource,
  HubParts,
  HubRenderer,
  HubState,
} from './app.js';
export { hubCommand } from './main.js';
export { runCli } from './cli/main.js';
export { compileHubConfig, HUB_CONFIG_DEFAULTS } from './config/hub-config.js';
export type { HubConfig, SourceConfig } from './config/hub-config.js';
export { loadHubConfig } from './config/load.js';
export { GitSource, MapRepoTree, readDirectoryTree } from './source/index.js';
export type {
  GitAuth,
  GitSourceOptions,
  RepoTree,
  SourceSnapshot,
  SourceStatus,
} from './source/index.js';
export {
  CommitVerifier,
  UntrustedCommitError,
  WebhookHandler,
  createGitSource,
} from './source/index.js';
export type { SourceRef, WebhookTarget } from './source/index.js';
export {
  FleetRenderer,
  renderFleet,
  formatRenderError,
  DEFAULT_MAX_CLUSTER_BYTES,
  DEFAULT_RENDER_LIMITS,
  RenderWorkerError,
  WorkerRenderer,
  ExecToolRunner,
  NO_SANDBOX,
  resolveSandbox,
  sandboxFor,
} from './render/index.js';
export type {
  RenderError,
  RenderFailure,
  RenderLimits,
  RenderOptions,
  RenderResult,
  SandboxLevel,
  SandboxSetting,
  ToolRequest,
  ToolSandbox,
  WorkerRendererOptions,
} from './render/index.js';
export type { RenderFailureRecord } from './status/render-failures.js';
export { AgentStreamService } from './stream/agent-stream.js';
export { DesiredStateStore } from './stream/desired-store.js';
export { startGrpcServer, GRPC_SERVER_OPTIONS } from './stream/grpc-server.js';
export {
  BundleMembers,
  encodeDesiredState,
  encodeDesiredStateSync,
  decodeDesiredState,
  MAX_CHUNK_BYTES,
} from './stream/chunks.js';
export type { DesiredStateSource, SessionObserver } from './stream/types.js';
export { FleetStatus } from './status/fleet-status.js';
export { EventsConsumer, ensureEventsStream, STATUS_CONSUMER } from './status/events-consumer.js';
export { Lease, LEASE_BUCKET } from './lease/lease.js';
export type { LeaseOptions, LeaseRecord, LeaseState } from './lease/lease.js';
export { ALERT_LEDGER_BUCKET, KvAlertLedger, LeaderAlerts } from './lease/leader-alerts.js';
export { LeaderRollouts } from './lease/leader-rollouts.js';
export type { LeaderRolloutsOptions } from './lease/leader-rollouts.js';
export { KvStatusPersistence, STATUS_BUCKET } from './status/kv-persistence.js';
export { NatsLink } from './status/nats-link.js';
export type { BundleStatus, ClusterState, ClusterStatus } from './status/model.js';
export { startHttpApi } from './api/http.js';
export { ReadAccess } from './api/access.js';
export { CertificateAuthority, createCa, createCsr, generateKeyPem } from './identity/pki.js';
export { IdentityAuthority } from './identity/authority.js';
export { KvIdentityRecords, identityBucket } from './identity/kv-records.js';
export {
  AGENT_EVENT_KINDS,
  AGENT_NATS_LIMITS,
  agentInboxPrefix,
  agentPublishSubjects,
  agentUserJwt,
  createNatsAuthSetup,
  credsFile,
} from './identity/nats-jwt.js';
export type { NatsAuthSetup } from './identity/nats-jwt.js';
export { NatsRevocationPublisher } from './identity/nats-revocation.js';
export type { NatsRevocationOptions } from './identity/nats-revocation.js';
export { agentManifests, agentManifestObjects } from './cli/agent-manifests.js';
export type { AgentInstall } from './cli/agent-manifests.js';
export { fleetServiceHandlers } from './api/grpc-fleet.js';
export type { SourceStatus as SourceStatusView } from './api/types.js';
