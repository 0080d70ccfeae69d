// The real test environment: Kubernetes API servers, NATS, a Git server, and the
// helpers tests use with them. Named exports only; see integration-tests/README.md.
// Test code only: a package's published (non-test) files must never import this one.
export { startCluster } from './cluster.js';
export type { ClusterMode, StartClusterOptions, TestCluster } from './cluster.js';
export { SERVICE_ACCOUNT_TOKEN_SECONDS, serviceAccountKubeconfig } from './service-account.js';
export type {
  ServiceAccountKubeconfig,
  ServiceAccountKubeconfigOptions,
} from './service-account.js';
export { startNats } from './nats.js';
export { startNatsCluster } from './nats-cluster.js';
export type { StartNatsClusterOptions, TestNatsCluster, TestNatsNode } from './nats-cluster.js';
export { createTestCa } from './tls.js';
export type { TestCa, TestCertificate } from './tls.js';
export type { StartNatsOptions, StopNatsOptions, TestNats } from './nats.js';
export { startGitServer } from './git-server.js';
export type { StartGitServerOptions, TestGitServer } from './git-server.js';
export { createLocalRepo, createWorkRepo, runGit, withCredentials, WorkRepo } from './git.js';
export type { FileChanges, GitCredentials, LocalRepoOptions, WorkRepoOptions } from './git.js';
export { isCI, requireEnv, requirePrerequisite } from './prereq.js';
export type { EnvPart, PrerequisiteCheck, RequireOptions } from './prereq.js';
export { spawnServer, untilReadyOrExit } from './processes.js';
export type { ManagedProcess, SpawnOptions } from './processes.js';
export { freePort, sleep, waitFor } from './util.js';
export type { WaitForOptions } from './util.js';
export {
  CommandFailedError,
  EnvError,
  PrerequisiteMissingError,
  ServerStartError,
  WaitTimeoutError,
} from './errors.js';
export type { EnvErrorCode } from './errors.js';
export { binaryPaths, cacheRoot, K8S_VERSION, NATS_SERVER_VERSION } from './versions.js';
export { ageKeyPair, sopsEncrypt, writeAgeKeyFile } from './sops.js';
export type { AgeKeyPair, SopsEncryptOptions } from './sops.js';
export type { BinaryPaths } from './versions.js';
export { helm, helmPackage, startChartRepository, writeTestChart } from './chart-repo.js';
export type {
  ChartRepoRequest,
  StartChartRepositoryOptions,
  TestChartRepository,
} from './chart-repo.js';
export { startRegistry } from './registry.js';
export { startToxiproxy } from './toxiproxy.js';
export type { TestProxy, TestToxiproxy, Toxic } from './toxiproxy.js';
export type { StartRegistryOptions, TestRegistry } from './registry.js';
