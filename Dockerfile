# syntax=docker/dockerfile:1
# Offload images. Three targets:
#   control-plane  the run API (default command) and the controller (the chart
#                  runs `node operator/dist/bin/offload-controller.js`)
#   worker         the base image task images are built FROM: it runs
#                  `node /app/worker/dist/bin/offload-worker.js`, which loads the
#                  module named by OFFLOAD_MODULE (user modules live in /app/tasks)
#   examples       the worker with the example tasks (examples/app/src/tasks.ts) built
#                  in: the image examples/taskworker.yaml names
#
#   docker build --target control-plane -t REGISTRY/offload-control-plane:0.1.0 .
#   docker build --target worker        -t REGISTRY/offload-worker:0.1.0 .
#   docker build --target examples      -t REGISTRY/offload-examples:0.1.0 .
# or, with podman and no registry to pull node:20-bookworm-slim from,
# `npm run images` (scripts/images/build.ts).

ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
# Manifests first, so the dependency layer is reused while only sources change.
COPY package.json package-lock.json ./
COPY sdk/package.json sdk/
COPY worker/package.json worker/
COPY operator/package.json operator/
COPY examples/app/package.json examples/app/
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.base.json ./
COPY sdk/ sdk/
COPY worker/ worker/
COPY operator/ operator/
COPY examples/app/ examples/app/
# The dashboard's sources: npm run build puts it into operator/dist/ui, which the run API serves at /ui/.
COPY ui/ ui/
RUN npm run build \
 && npm prune --omit=dev \
 # Gather what runs: the root manifest, the production node_modules (the
 # @offload/* entries are links to the workspace folders), and each package's
 # manifest, dist and any node_modules of its own.
 && mkdir -p /out \
 && cp -a package.json node_modules /out/ \
 && for p in sdk worker operator; do \
      mkdir -p /out/$p && cp -a $p/package.json $p/dist /out/$p/ \
      && rm -f /out/$p/dist/.tsbuildinfo \
      && if [ -d $p/node_modules ]; then cp -a $p/node_modules /out/$p/; fi; \
    done \
 && rm -f /out/node_modules/@offload/examples \
 # The example tasks, for the examples target only. Their @offload/sdk is this
 # workspace's, which no registry serves, so they are built here rather than
 # FROM the worker image as a user's task image would be.
 && mkdir -p /out-examples/examples \
 && cp -a examples/app/package.json examples/app/dist /out-examples/examples/ \
 && rm -f /out-examples/examples/dist/.tsbuildinfo \
 && if [ -d examples/app/node_modules ]; then cp -a examples/app/node_modules /out-examples/examples/; fi

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS control-plane
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only for the `node` user the processes run as.
COPY --from=build /out/ /app/
# The embedded database (PGlite, used when OFFLOAD_DATABASE_URL is unset) needs a
# folder the `node` user can write; /app is root-owned, and with a read-only root
# filesystem (as the chart runs it) only a mounted volume is writable, so the
# folder is a VOLUME. The chart sets OFFLOAD_DATABASE_URL and never uses it.
ENV OFFLOAD_DATA_DIR=/var/lib/offload
RUN mkdir -p /var/lib/offload && chown node:node /var/lib/offload
VOLUME /var/lib/offload
# Numeric (the `node` user of the base image), so Kubernetes can verify
# runAsNonRoot without a runAsUser.
USER 1000:1000
EXPOSE 8080 8082
# The run API; the chart sets `command` for the controller. A young generation of
# 8 MiB (V8's default is 16 or more under load) keeps the peak RSS about 15 MiB lower
# at the same CPU, and a heap cap of 192 MiB (Node otherwise sizes it from the host's
# memory and collects late) about 18 MiB more (bench/README.md); the chart
# (`api.maxOldSpaceMiB`) and `npm run bench` start it the same way.
CMD ["node", "--max-semi-space-size=8", "--max-old-space-size=192", "operator/dist/bin/offload-api.js"]

# ---------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS worker
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /out/ /app/
# The task image adds its module here (and its own production dependencies);
# @offload/sdk and zod resolve from /app/node_modules, shared with the runtime.
RUN mkdir -p /app/tasks && chown node:node /app/tasks
WORKDIR /app/tasks
# Numeric (the `node` user of the base image), so Kubernetes can verify
# runAsNonRoot without a runAsUser.
USER 1000:1000
# OFFLOAD_MODULE (the module of tasks to serve) is set by the task image
# (ENV OFFLOAD_MODULE=/app/tasks/dist/tasks.js) or by the TaskWorker's spec.module;
# a relative path is taken from the working directory, /app/tasks.
# /healthz, /readyz and /metrics (OFFLOAD_WORKER_PORT).
EXPOSE 8081
# A 2 MiB young generation: a worker's garbage is per-run and short-lived; peak RSS
# fell from ~130 to ~110 MiB at the same CPU (bench/README.md).
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/worker/dist/bin/offload-worker.js"]

# ---------------------------------------------------------------------------
# The example tasks on the worker image: what `examples/taskworker.yaml` runs
# (examples/web-app.yaml runs the example web app from it, by its `command`).
FROM worker AS examples
# examples/app/package.json (here /app/examples/package.json) says "type": "module"; @offload/sdk and zod resolve from
# /app/node_modules.
COPY --from=build /out-examples/ /app/
ENV OFFLOAD_MODULE=/app/examples/dist/tasks.js
