#!/usr/bin/env bash
# styx phase: wait_ssh -- the gate phase. The SSH dial retries happen in the
# provider; once this runs the node is reachable. Changes nothing.
#
# Environment: none (lib.sh variables only).
#
# stdout: `styx wait_ssh: ok: <hostname> reachable (<os id>)`
: "${STYX_PHASE:=wait_ssh}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

main() {
  local host
  host=${HOSTNAME:-$(uname -n)}
  styx_result ok "$host reachable ($(styx_os_id))"
}

main "$@"
