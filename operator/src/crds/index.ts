export * from "./schemas.js";
export * from "./definitions.js";
export { toStructural } from "./structural.js";
