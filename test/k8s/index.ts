export * from "./server.js";
export * from "./fields.js";
export * from "./crds.js";
export * from "./auth/index.js";
export * from "./workloads/index.js";
