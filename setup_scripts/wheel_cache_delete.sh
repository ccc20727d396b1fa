#!/usr/bin/env bash
# styx phase: wheel_cache_delete -- undo wheel_cache (`styx down`): stop the head's wheel cache server. The
# downloaded wheels stay in STYX_WC_DIR/wheels (a later cluster with the same requirements finds them complete;
# `rm -rf` the folder to reclaim the disk).
#
# Environment:
#   STYX_WC_DIR  default /var/lib/styx/wheel-cache
#
# stdout: `styx wheel_cache-undo: ok|skipped: ...`
: "${STYX_PHASE:=wheel_cache_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_WC_DIR=${STYX_WC_DIR:-/var/lib/styx/wheel-cache}

main() {
  local out
  if [[ ! -f $STYX_WC_DIR/server.pid ]]; then
    styx_result skipped "no wheel cache server here"
    return 0
  fi
  # wheel_cache.py's own stop (it ends the pid file's process only when that is its server)
  if styx_have python3 && [[ -r $STYX_WC_DIR/wheel_cache.py ]]; then
    out=$(python3 "$STYX_WC_DIR/wheel_cache.py" stop "$STYX_WC_DIR/server.pid" 2>>"$(styx_log_file)") || out=""
  else
    rm -f -- "$STYX_WC_DIR/server.pid"
    out="wheel cache server not running"
  fi
  styx_result ok "${out:-wheel cache server stopped}; the wheels stay in $STYX_WC_DIR/wheels"
}

main "$@"
