#!/usr/bin/env bash
# styx phase: file_sync_delete -- undo file_sync: remove what the recorded
# manifest lists (files and links; folders only when left empty, so anything
# the node wrote inside a mount stays), then the records. The archive stays in
# ~/.cache/styx/sync: a replacement file_sync (run after this undo) extracts
# the same one, and file_sync removes every archive but its own.
#
# Environment:
#   STYX_SYNC_STATE  recorded manifest (default $STYX_STATE_DIR/file_sync/manifest)
#
# stdout: `styx file_sync_delete: ok|skipped: ...`
: "${STYX_PHASE:=file_sync_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_SYNC_STATE=${STYX_SYNC_STATE:-$STYX_STATE_DIR/file_sync/manifest}

main() {
  local n tmp
  if ! styx_sudo test -f "$STYX_SYNC_STATE"; then
    styx_result skipped "no recorded manifest ($STYX_SYNC_STATE)"
    return 0
  fi
  styx_mktemp_var tmp
  styx_sudo cat -- "$STYX_SYNC_STATE" >"$tmp"
  n=$(styx_remove_listed "$tmp")
  styx_sudo rm -f -- "$STYX_SYNC_STATE" "$STYX_SYNC_STATE.sha256"
  styx_result ok "removed $n synced paths"
}

main "$@"
