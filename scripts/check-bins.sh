#!/usr/bin/env bash
# Checks that the commands a fresh clone promises work right after
# `bash scripts/setup.sh`: `npx offload --help`, `npx offload-api --help`, `npx offload-worker --help`
# and `npx offload-controller --help` run the workspace's own commands, typed
# as a user types them. npm_config_yes=false stops npx from installing from the
# registry, so a missing link fails here (with the registry's 404) instead of
# running someone else's package of that name.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
for bin in offload offload-api offload-worker offload-controller; do
  if out=$(npm_config_yes=false npx "$bin" --help 2>&1) && grep -q "$bin" <<<"$out"; then
    echo "check-bins: npx $bin --help: ok"
  else
    echo "check-bins: npx $bin --help failed; node_modules/.bin/$bin: $(ls -l "node_modules/.bin/$bin" 2>&1)" >&2
    echo "$out" | head -5 >&2
    failed=1
  fi
done
exit $failed
