#!/usr/bin/env bash
# styx phase: env_vars_delete -- undo env_vars: remove the env file and the
# login-shell snippet.
#
# Environment:
#   STYX_ENV_FILE     env file to remove (default /etc/styx/env.sh)
#   STYX_PROFILE_DIR  (lib.sh) removes styx-env.sh there
#
# stdout: `styx env_vars_delete: ok|skipped: ...`
: "${STYX_PHASE:=env_vars_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_ENV_FILE=${STYX_ENV_FILE:-/etc/styx/env.sh}
ENV_PROFILE="$STYX_PROFILE_DIR/styx-env.sh"

main() {
  local removed=() f
  for f in "$STYX_ENV_FILE" "$ENV_PROFILE"; do
    if styx_sudo test -e "$f"; then
      styx_sudo rm -f -- "$f"
      removed+=("$f")
    fi
  done
  if [[ ${#removed[@]} -eq 0 ]]; then
    styx_result skipped "nothing to remove"
  else
    styx_result ok "removed ${removed[*]}"
  fi
}

main "$@"
