#!/usr/bin/env bash
# styx phase: ray_container_delete -- undo ray_container: `docker rm -f` the
# Ray container (the Ray inside stops with it) and its env file. The image
# stays on the node (a cache for the next container).
#
# Environment:
#   STYX_RAY_CONTAINER        the container (default styx-ray)
#   STYX_CONTAINER_ENV_FILE   default /etc/styx/ray-container.env
#
# stdout: `styx ray_container_delete: ok|skipped: ...`
: "${STYX_PHASE:=ray_container_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_RAY_CONTAINER=${STYX_RAY_CONTAINER:-styx-ray}
STYX_CONTAINER_ENV_FILE=${STYX_CONTAINER_ENV_FILE:-/etc/styx/ray-container.env}

main() {
  styx_sudo rm -f -- "$STYX_CONTAINER_ENV_FILE" "$STYX_STATE_DIR/ray.started"
  if ! styx_have docker || ! styx_sudo docker inspect "$STYX_RAY_CONTAINER" >/dev/null 2>&1; then
    styx_result skipped "no container $STYX_RAY_CONTAINER"
    return 0
  fi
  styx_run styx_sudo docker rm -f "$STYX_RAY_CONTAINER"
  styx_result ok "removed container $STYX_RAY_CONTAINER"
}

main "$@"
