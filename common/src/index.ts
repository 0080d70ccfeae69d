// @flotilla/common: what hub and agent share. Named exports only.
export { Backoff, sleep } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export {
  CAPABILITIES_LIMITS,
  apiVersionsSize,
  capabilitiesDigest,
  checkCapabilities,
  isApiVersionEntry,
  isKubeVersion,
} from './capabilities.js';
export type { ClusterCapabilities } from './capabilities.js';
export { durations, parseDuration } from './durations.js';
export {
  ConfigError,
  FlotillaError,
  NotFoundError,
  TooLargeError,
  UnavailableError,
  ValidationError,
  errorMessage,
  isRetryable,
} from './errors.js';
export type { ErrorBody, ErrorCode } from './errors.js';
export {
  EVENTS_STREAM,
  EVENTS_SUBJECT_PREFIX,
  EVENT_TYPES,
  createEvent,
  eventSubject,
  parseEvent,
} from './events.js';
export type {
  AppliedData,
  BundleApplyResult,
  BundleWaiting,
  EventKind,
  FlotillaEvent,
} from './events.js';
export { EVENT_LIMITS, clipText } from './event-limits.js';
export type {
  BundleHealthState,
  DriftChange,
  DriftCorrectedData,
  DriftDetectedData,
  EventObjectRef,
  EventsDroppedData,
  HealthChangedData,
} from './events.js';
export {
  BUNDLE_LABEL,
  DEFAULT_MAX_PRUNE_SHARE,
  HELM_HOOK_ANNOTATION,
  KEEP_ON_PRUNE_ANNOTATION,
  bundleDigest,
  desiredStateDigest,
  objectKey,
} from './desired-state.js';
export type {
  BundleChart,
  BundleDesiredState,
  BundleNamespace,
  DesiredState,
  DriftIgnoreRule,
  DriftPolicy,
  HookDeletePolicy,
  HookPhase,
  HookSpec,
  KubeObject,
  PrunePolicy,
} from './desired-state.js';
export { canonicalJson, digestJson, digestOf, shortDigest } from './hash.js';
export { LogFields, createLogger, silentLogger } from './logging.js';
export type { Logger, LoggerOptions } from './logging.js';
export { assertDnsLabel, isDnsLabel } from './names.js';
export { QUIET_WARNING_CODES, quietDependencyWarnings } from './warnings.js';
export { compileLabelSelector, parseSelector } from './selector.js';
export type { LabelSelector, LabelSelectorRequirement, Selector } from './selector.js';
export { parseYamlDocuments, parseYamlObject } from './yaml.js';
export type { YamlDocument } from './yaml.js';
export { isLoopbackHost, natsTransport } from './nats-transport.js';
export type { NatsTransport, NatsTransportFields } from './nats-transport.js';
