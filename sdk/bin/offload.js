#!/usr/bin/env node
// The file npm links as `offload`. It is committed (not built) so that npm
// creates the link on a fresh clone, when dist/ does not exist yet; the command
// itself is the compiled dist/bin/offload.js.
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const built = new URL("../dist/bin/offload.js", import.meta.url);
if (!existsSync(built)) {
  process.stderr.write(`offload: ${fileURLToPath(built)} is not built yet; run \`npm run build\` at the root of the Offload repository.\n`);
  process.exit(1);
}
await import(built.href);
