#!/usr/bin/env node
// `npm run dev`: the whole of Offload on one machine, no cluster. Starts a
// nats-server with JetStream in a temporary folder, the run API on the
// embedded database (.offload/), a worker serving the example tasks and the
// example web app; then sends a few jobs and shows them go through.
// Ctrl-C stops everything it started.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { setTimeout as sleep } from "node:timers/promises";

const { values: args } = parseArgs({
  options: {
    help: { type: "boolean", short: "h" },
    "no-demo": { type: "boolean" },
    "api-port": { type: "string" },
    "app-port": { type: "string" },
  },
});
if (args.help) {
  console.log(`Usage: npm run dev [-- --no-demo] [-- --api-port N] [-- --app-port N]

Starts a local Offload: nats-server (JetStream, temporary folder), the run API
on the embedded database in .offload/, a worker serving examples/app/src/tasks.ts,
and the example web app. Then sends a few jobs through it (skip with --no-demo).
Ports default to 8080 (API) and 3000 (web app), or free ones if those are taken.
Ctrl-C stops it all. Set OFFLOAD_DEV_VERBOSE=1 to see every HTTP request in the logs.`);
  process.exit(0);
}

const root = resolve(import.meta.dirname, "..");
const children = [];
const tmp = mkdtempSync(join(tmpdir(), "offload-dev-"));
const c = { dim: (s) => `\x1b[2m${s}\x1b[0m`, bold: (s) => `\x1b[1m${s}\x1b[0m`, green: (s) => `\x1b[32m${s}\x1b[0m`, red: (s) => `\x1b[31m${s}\x1b[0m` };
const say = (s) => console.log(`${c.bold("offload dev")} ${s}`);

let stopping = false;
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  say("stopping…");
  for (const child of [...children].reverse()) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const gone = new Promise((r) => child.once("exit", r));
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(timer);
  }
  rmSync(tmp, { recursive: true, force: true });
  say("stopped; nothing left running");
  process.exit(code);
}
process.on("SIGINT", () => void stopAll(0));
process.on("exit", () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
});
process.on("SIGTERM", () => void stopAll(0));

function start(name, command, argv, env = {}) {
  // Own process group: Ctrl-C reaches only this script, which then stops the
  // children in reverse order, so the worker drains while NATS is still up.
  const child = spawn(command, argv, { cwd: root, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const prefix = c.dim(`[${name}]`.padEnd(10));
  const pipe = (stream) => {
    let buf = "";
    stream.on("data", (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (process.env.OFFLOAD_DEV_VERBOSE !== "1" && /"msg":"(incoming request|request completed)"/.test(line)) continue;
        console.log(`${prefix} ${summarize(line)}`);
      }
    });
  };
  pipe(child.stdout);
  pipe(child.stderr);
  child.once("exit", (code, signal) => {
    if (!stopping) {
      console.error(c.red(`${name} exited (${code ?? signal}); stopping the rest`));
      void stopAll(1);
    }
  });
  children.push(child);
  return child;
}

// Pino lines are JSON; show them as "level msg key=value" so a person can read them.
function summarize(line) {
  try {
    const o = JSON.parse(line);
    const { level, msg, ...rest } = o;
    for (const noise of ["time", "pid", "hostname"]) delete rest[noise];
    const lv = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" }[level] ?? level;
    const extras = Object.entries(rest)
      .filter(([, v]) => typeof v !== "object")
      .map(([k, v]) => `${k}=${v}`)
      .join(" ");
    return `${lv} ${msg ?? ""} ${c.dim(extras)}`;
  } catch {
    return line;
  }
}

async function portOr(preferred) {
  const tryPort = (p) =>
    new Promise((res) => {
      const s = createServer();
      s.once("error", () => res(undefined));
      // The port is read before close(): afterwards address() is null, and "0" would reach
      // nats-server, which takes 0 to mean its default 4222, the port found taken.
      s.listen(p, "127.0.0.1", () => {
        const port = s.address().port;
        s.close(() => res(port));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0));
}

async function waitHttp(url, what, ms = 60_000, anyAnswer = false) {
  const until = Date.now() + ms;
  while (Date.now() < until && !stopping) {
    try {
      const res = await fetch(url);
      if (res.ok || anyAnswer) return;
    } catch {
      /* not up yet */
    }
    await sleep(150);
  }
  throw new Error(`${what} did not come up at ${url} within ${ms / 1000}s`);
}

async function waitTcp(port, ms = 15_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise((res) => {
      const s = connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), res(true)));
      s.once("error", () => res(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nats-server did not listen on ${port}`);
}

try {
  try {
    execFileSync("nats-server", ["--version"], { stdio: "ignore" });
  } catch {
    throw new Error("nats-server is not installed: run `bash scripts/setup.sh` (it installs Debian's nats-server)");
  }
  const natsPort = await portOr(4222);
  const apiPort = await portOr(Number(args["api-port"] ?? 8080));
  const appPort = await portOr(Number(args["app-port"] ?? 3000));
  const workerPort = await portOr(8081);
  const conf = join(tmp, "nats.conf");
  writeFileSync(conf, `listen: 127.0.0.1:${natsPort}\njetstream { store_dir: "${join(tmp, "js")}" }\n`);
  const natsUrl = `nats://127.0.0.1:${natsPort}`;
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const appUrl = `http://127.0.0.1:${appPort}`;

  say(`starting nats-server with JetStream on ${natsUrl}`);
  start("nats", "nats-server", ["-c", conf]);
  await waitTcp(natsPort);

  say(`starting the run API on ${apiUrl} (embedded PostgreSQL in .offload/)`);
  start("api", process.execPath, ["operator/dist/bin/offload-api.js"], {
    OFFLOAD_API_PORT: String(apiPort),
    OFFLOAD_API_HOST: "127.0.0.1",
    OFFLOAD_NATS_URL: natsUrl,
  });
  await waitHttp(`${apiUrl}/readyz`, "the run API");

  say("starting a worker serving examples/app/src/tasks.ts");
  start("worker", process.execPath, ["worker/dist/bin/offload-worker.js", "--module", "examples/app/dist/tasks.js", "--concurrency", "4"], {
    OFFLOAD_NATS_URL: natsUrl,
    OFFLOAD_API_URL: apiUrl,
    OFFLOAD_WORKER_PORT: String(workerPort),
  });
  await waitHttp(`http://127.0.0.1:${workerPort}/readyz`, "the worker");

  say(`starting the example web app on ${appUrl}`);
  start("web-app", process.execPath, ["examples/app/dist/web-app/main.js"], { PORT: String(appPort), OFFLOAD_API_URL: apiUrl });
  await waitHttp(`${appUrl}/jobs/none/status`, "the web app", 30_000, true);

  if (!args["no-demo"]) await demo(appUrl, apiUrl);

  console.log(`
${c.bold("Offload is running.")} Try it by hand:

  curl -s -XPOST ${appUrl}/jobs -H 'content-type: application/json' \\
       -d '{"kind":"welcome-email","to":"ada@example.com","name":"Ada"}'
  curl -s ${appUrl}/jobs/<id>/status

  Run API:   ${apiUrl}/v1/runs        API docs: ${apiUrl}/docs
  Worker:    http://127.0.0.1:${workerPort}/metrics
  NATS:      ${natsUrl}

Ctrl-C stops it all.`);
} catch (err) {
  if (!stopping) {
    console.error(c.red(`offload dev: ${err.message}`));
    await stopAll(1);
  }
}

async function demo(appUrl, apiUrl) {
  const jobs = [
    { kind: "welcome-email", to: "ada@example.com", name: "Ada" },
    { kind: "welcome-email", to: "grace@example.com", name: "Grace" },
    { kind: "text-report", text: "to be or not to be that is the question", top: 2 },
  ];
  const ids = [];
  for (const job of jobs) {
    const res = await fetch(`${appUrl}/jobs`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(job) });
    const body = await res.json();
    say(`${c.green("delayed")} ${job.kind} → run ${body.id} (HTTP ${res.status})`);
    ids.push(body.id);
  }
  for (const id of ids) {
    const until = Date.now() + 30_000;
    for (;;) {
      const s = await (await fetch(`${appUrl}/jobs/${id}/status`)).json();
      if (["COMPLETED", "FAILED", "CANCELLED"].includes(s.state) || Date.now() > until) {
        say(`${s.state === "COMPLETED" ? c.green(s.state) : c.red(s.state)} run ${id}: ${JSON.stringify(s.result ?? s.error)}`);
        break;
      }
      await sleep(200);
    }
  }
  say(`all runs: ${apiUrl}/v1/runs`);
}
