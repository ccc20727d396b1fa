#!/usr/bin/env bash
# styx phase: file_sync_delete -- undo file_sync: remove every path in the
# recorded manifest, then the records.
#
# Environment:
#   STYX_SYNC_STATE  recorded manifest (default $STYX_STATE_DIR/file_sync.manifest)
#
# stdout: `styx file_sync_delete: ok|skipped: ...`
: "${STYX_PHASE:=file_sync_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_SYNC_STATE=${STYX_SYNC_STATE:-$STYX_STATE_DIR/file_sync.manifest}

main() {
  local p n=0 manifest
  if ! styx_sudo test -f "$STYX_SYNC_STATE"; then
    styx_result skipped "no recorded manifest ($STYX_SYNC_STATE)"
    return 0
  fi
  manifest=$(styx_sudo cat -- "$STYX_SYNC_STATE")
  while IFS= read -r p; do
    [[ -n $p ]] || continue
    if [[ $p != /* || ${p#/} != */?* || $p == *"/.."* ]]; then
      styx_log WARN "ignoring suspicious manifest path: $p"
      continue
    fi
    if styx_sudo test -e "$p" || styx_sudo test -L "$p"; then
      if styx_sudo test -d "$p" && ! styx_sudo test -L "$p"; then
        styx_sudo rm -rf -- "$p"
      else
        styx_sudo rm -f -- "$p"
      fi
      n=$((n + 1))
    fi
  done <<<"$manifest"
  styx_sudo rm -f -- "$STYX_SYNC_STATE" "$STYX_SYNC_STATE.sha256"
  styx_result ok "removed $n synced paths"
}

main "$@"
