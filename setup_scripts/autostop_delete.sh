#!/usr/bin/env bash
# styx phase: autostop_delete -- undo autostop: stop the idle watcher (or follower) and the request server
# and remove its directory (settings, state, a pending request).
#
# Environment:
#   STYX_AUTOSTOP_DIR  default /var/lib/styx/autostop
#
# stdout: `styx autostop_delete: ok|skipped: ...`
: "${STYX_PHASE:=autostop_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
if ! declare -F autostop_pid >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=autostop_lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/autostop_lib.sh"
fi
set -euo pipefail

STYX_AUTOSTOP_DIR=${STYX_AUTOSTOP_DIR:-/var/lib/styx/autostop}

main() {
  local dir=$STYX_AUTOSTOP_DIR pid="" spid=""
  if [[ ! -e $dir ]]; then
    styx_result skipped "no autostop watcher here"
    return 0
  fi
  if pid=$(watcher_pid); then kill "$pid" 2>/dev/null || true; else pid=""; fi
  # the head's request server (setup.autostop on a cloud), when this folder's runs
  if spid=$(autostop_pid server http.server "$dir/public"); then kill "$spid" 2>/dev/null || true; fi
  styx_sudo rm -rf -- "$dir"
  styx_result ok "autostop watcher ${pid:+(pid $pid) }stopped and removed"
}

main "$@"
