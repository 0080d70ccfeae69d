// The source step: Git (or a local directory) → snapshots of the fleet repo. Named exports only.
export { DEFAULT_REQUEST_TIMEOUT_MS, GitSource } from './git-source.js';
export { redactUrl } from './git-errors.js';
export type {
  CommitCheck,
  GitAuth,
  GitSourceOptions,
  SnapshotListener,
  SourceSnapshot,
  SourceStatus,
} from './git-source.js';
export { FLEET_ROOTS, MapRepoTree, compareBytes, isReadRoot, readDirectoryTree } from './tree.js';
export type { DirectoryTreeOptions, RejectedEntry, RepoTree } from './tree.js';
export { SubtreeCache, fleetTreeOid, readCommitTree } from './git-tree.js';
export {
  MAX_TREE_NAME_BYTES,
  MAX_TREE_PATH_BYTES,
  checkTreePath,
  treeNameProblem,
  treePathProblem,
} from './tree-paths.js';
export type { CommitTreeOptions, FleetTreeLocation } from './git-tree.js';
export { FleetPathMissingError, validateFleetPath } from './fleet-path.js';
export { describeRef, refMayMove, resolveRef, validateSourceRef } from './refs.js';
export type { ResolvedRef, ServerRef, SourceRef } from './refs.js';
export { CommitVerifier, UntrustedCommitError } from './verify.js';
export type { SignedCommit, UntrustedReason, VerifiedSignature, VerifyFiles } from './verify.js';
export {
  WEBHOOK_MAX_BODY_BYTES,
  WebhookHandler,
  detectProvider,
  parsePush,
  readWebhookSecret,
  sameRepository,
} from './webhook.js';
export type { WebhookProvider, WebhookResponse, WebhookTarget, WebhookTargets } from './webhook.js';
export { createGitSource } from './from-config.js';
