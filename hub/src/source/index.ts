// The source step: Git (or a local directory) → snapshots of the fleet repo. Named exports only.
export { DEFAULT_REQUEST_TIMEOUT_MS, GitSource, redactUrl } from './git-source.js';
export type { GitAuth, GitSourceOptions, SnapshotListener, SourceSnapshot, SourceStatus } from './git-source.js';
export { FLEET_ROOTS, MapRepoTree, compareBytes, readDirectoryTree } from './tree.js';
export type { DirectoryTreeOptions, RejectedEntry, RepoTree } from './tree.js';
export { readCommitTree } from './git-tree.js';
export type { CommitTreeOptions } from './git-tree.js';
