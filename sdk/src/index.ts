/**
 * `@offload/sdk`: the public API. Everything an app or a task module may use
 * is listed here by name; the other parts of Offload import `@offload/sdk/internal`.
 */
export { task, isTask } from "./task.js";
export type {
  Task,
  TaskOptions,
  TaskContext,
  TaskRunInfo,
  DelayOptions,
  MapOptions,
  ScheduleOptions,
  ConcurrencyOptions,
  RateLimitOptions,
  ResultOptions,
  RunHandle,
  RetryDelay,
  RetryOn,
  CacheOptions,
  CachePolicyPart,
  ProgressReport,
} from "./task.js";
export { serve } from "./serve/index.js";
export type { ServeOptions, Server, ServeHooks, RunInfo, RunOutcome, RunLogLevel } from "./serve/index.js";
export { OffloadClient, defaultClient, setDefaultClient } from "./client.js";
export type { ClientOptions, RunLogs, SubmittedBatch, ScheduleCallOptions } from "./client.js";
export {
  OffloadError,
  ConfigError,
  InputValidationError,
  ApiError,
  ApiUnreachableError,
  RunFailedError,
  RunCancelledError,
  ResultTimeoutError,
  NonRetryableError,
  RetryAfterError,
  TaskTimeoutError,
  RunFinishedError,
  RunNotRetryableError,
  ResultNotSerializableError,
  InvalidProgressError,
  LimitKeyError,
  ScheduleNotFoundError,
  isOffloadError,
  isApiError,
  isRunFailedError,
  isRunCancelledError,
  isNonRetryableError,
  isRetryAfterError,
  isRunFinishedError,
  isRunNotRetryableError,
  isTaskTimeoutError,
  isLimitKeyError,
  isScheduleNotFoundError,
} from "./errors.js";
export { isTerminal, RUN_STATES } from "./protocol/index.js";
export type {
  Run,
  RunState,
  RunError,
  Json,
  ErrorCode,
  RunLogLine,
  TaskInfo,
  TaskList,
  RunProgress,
  RunProgressEvent,
  TraceContext,
  SubmittedRun,
  WaitingFor,
  TaskDefinition,
  RegisteredTask,
  Schedule,
  PutScheduleBody,
  ConcurrencyPolicy,
} from "./protocol/index.js";
