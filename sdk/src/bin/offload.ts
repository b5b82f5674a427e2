/** The `offload` command (linked by npm through the shim bin/offload.js). */
import { main } from "../cli/main.js";

process.exitCode = await main();
