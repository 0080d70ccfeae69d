// The render step: fleet repo tree → desired state per cluster. Named exports only.
export { FleetRenderer, renderFleet } from './renderer.js';
export {
  DEFAULT_RENDER_WORKER_HEAP,
  RenderWorkerError,
  WorkerRenderer,
} from './worker-renderer.js';
export type { WorkerRendererOptions } from './worker-renderer.js';
export { DEFAULT_RENDER_LIMITS } from './limits.js';
export type { RenderLimits } from './limits.js';
export { DEFAULT_MAX_CLUSTER_BYTES } from './types.js';
export type {
  RenderError,
  RenderFailure,
  RenderInputs,
  RenderOptions,
  RenderResult,
  RenderStats,
} from './types.js';
export {
  BUILTIN_CAPABILITIES,
  DEFAULT_KUBE_VERSION,
  effectiveCapabilities,
} from './capabilities.js';
export { FLEET_API_VERSION } from './spec.js';
export { CLUSTER_SCOPED_KINDS } from './manifests.js';
export { formatRenderError } from './format.js';
export { compileRenderConfig, renderOptionsOf, renderProgramsOf } from './render-config.js';
export type { RenderConfig } from './render-config.js';
export { ExecToolRunner, DEFAULT_MAX_TOOL_OUTPUT, DEFAULT_TOOL_MAX_MEMORY } from './tools.js';
export type { ToolName, ToolOptions, ToolRequest, ToolRunner } from './tools.js';
export {
  DEFAULT_SANDBOX_USER,
  NO_SANDBOX,
  SANDBOX_STRENGTH,
  resolveSandbox,
  sandboxFor,
} from './sandbox.js';
export type { SandboxLevel, SandboxMode, SandboxSetting, ToolSandbox } from './sandbox.js';
