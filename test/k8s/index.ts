export * from "./server.js";
export * from "./fields.js";
export * from "./crds.js";
