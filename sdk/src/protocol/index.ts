// The wire protocol between the SDK, the run API and the workers.
export * from "./states.js";
export * from "./names.js";
export * from "./run.js";
export * from "./progress.js";
export * from "./limits.js";
export * from "./messages.js";
export * from "./task-message.js";
export * from "./errors.js";
export * from "./tasks.js";
export * from "./flow.js";
export * from "./schedules.js";
