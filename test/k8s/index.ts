export * from "./server.js";
export * from "./fields.js";
