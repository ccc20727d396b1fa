#!/usr/bin/env bash
# The main job on a fresh machine: set up, then bring up the default local stack
# (stacks/Pulumi.local.yaml: one head + two workers as sandbox hosts, real packages, real Ray)
# and print how to reach the head and the Ray dashboard.
#   bash toolchain/run-local.sh          # launch (again: a no-op when nothing changed)
#   bash toolchain/run-local.sh down     # destroy it, leaving nothing behind
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export RAY_USAGE_STATS_ENABLED=0

main() {
  bash toolchain/setup.sh
  if [ "${1:-up}" = down ]; then
    exec .venv/bin/styx down --stack local --yes
  fi
  # The demo secret env var: generated once, kept 0600 beside the styx state, and stored encrypted
  # (secure:) in stacks/Pulumi.local.yaml once, when it is not there yet (value on stdin, never argv).
  local home="${STYX_HOME:-$HOME/.styx}" token_file
  token_file="$home/local-demo-token"
  if [ ! -s "$token_file" ]; then
    mkdir -p "$home"
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$token_file")
  fi
  if ! .venv/bin/styx secret list stacks/Pulumi.local.yaml | grep -qx STYX_DEMO_TOKEN; then
    .venv/bin/styx secret set STYX_DEMO_TOKEN stacks/Pulumi.local.yaml < "$token_file"
  fi
  .venv/bin/styx launch stacks/Pulumi.local.yaml --stack local --yes
  .venv/bin/styx status --stack local || true
  cat <<MSG

The cluster is up. Next:
  .venv/bin/styx ssh --stack local                    # a shell on the head
  .venv/bin/styx exec --stack local -- ray status         # (token auth: the node's ray reads it)
  .venv/bin/styx job submit --stack local -- python -c "import ray; ray.init(); print(ray.cluster_resources())"
  .venv/bin/styx dashboard --stack local              # SSH tunnel, then open http://127.0.0.1:8265
  bash toolchain/run-local.sh down                    # destroy it
MSG
}

main "$@"
