/**
 * `@offload/operator`: the control plane. Most users run its two commands
 * (`offload-api`, `offload-controller`); these exports are for embedding the
 * run API in-process (tests, single-binary setups).
 */
export { startApi } from "./api/server.js";
export { loadApiConfig } from "./config/api.js";
export { CONTROLLER_RULES } from "./controller/rbac.js";
export type { PolicyRule } from "./controller/rbac.js";
