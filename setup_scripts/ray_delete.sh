#!/usr/bin/env bash
# styx phase: ray_delete -- undo ray: `ray stop --force` on this node (usage
# stats off) and forget the start record and the auth token (its file and the
# clients' settings). Ray stays installed in the venv.
#
# Environment:
#   STYX_VENV_DIR          venv holding Ray (default /opt/styx/venv); falls
#                          back to `ray` on PATH
#   STYX_RAY_USAGE_STATS   0 (default) exports RAY_USAGE_STATS_ENABLED=0
#   STYX_RAY_TOKEN_FILE    the token's file (default /etc/styx/ray-auth-token)
#   STYX_RAY_AUTH_ENV      default /etc/styx/ray-auth.env
#   STYX_RAY_AUTH_PROFILE  default /etc/profile.d/styx-ray-auth.sh
#   STYX_RAY_CONTAINER     setup.ray.container: `ray stop` inside this
#                          container when it runs (default: none, the host's)
#
# stdout: `styx ray_delete: ok|skipped: ...` (ok/skipped when Ray is absent)
: "${STYX_PHASE:=ray_delete}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_VENV_DIR=${STYX_VENV_DIR:-/opt/styx/venv}
STYX_RAY_USAGE_STATS=${STYX_RAY_USAGE_STATS:-0}
RAY_STATE_FILE="$STYX_STATE_DIR/ray.started"

if [[ $STYX_RAY_USAGE_STATS != 1 ]]; then
  export RAY_USAGE_STATS_ENABLED=0
fi

ray_running() {
  local f
  for f in "$STYX_PROC_ROOT"/[0-9]*/cmdline; do
    [[ -r $f ]] || continue
    case $(tr '\0' ' ' <"$f" 2>/dev/null) in
      */raylet/raylet* | */gcs/gcs_server* | raylet\ * | gcs_server\ *) return 0 ;;
    esac
  done
  return 1
}

# setup.ray.container: Ray runs in this container (gone with it: nothing to stop)
STYX_RAY_CONTAINER=${STYX_RAY_CONTAINER:-}

stop_in_container() {
  styx_sudo rm -f -- "$RAY_STATE_FILE"
  if ! styx_have docker || [[ $(styx_sudo docker inspect --format '{{.State.Running}}' "$STYX_RAY_CONTAINER" 2>/dev/null) != true ]]; then
    styx_result skipped "container $STYX_RAY_CONTAINER not running"
    return 0
  fi
  # shellcheck disable=SC2016 # for the container's shell
  styx_run styx_sudo docker exec -e RAY_USAGE_STATS_ENABLED=0 "$STYX_RAY_CONTAINER" \
    bash -c '[ ! -r /etc/styx/ray-container.env ] || . /etc/styx/ray-container.env; exec ray stop --force'
  styx_result ok "ray stopped in container $STYX_RAY_CONTAINER"
}

main() {
  local ray="$STYX_VENV_DIR/bin/ray" was_running=0
  if [[ -n $STYX_RAY_CONTAINER ]]; then
    styx_sudo rm -f -- "${STYX_RAY_TOKEN_FILE:-/etc/styx/ray-auth-token}" \
      "${STYX_RAY_AUTH_ENV:-/etc/styx/ray-auth.env}" "${STYX_RAY_AUTH_PROFILE:-/etc/profile.d/styx-ray-auth.sh}"
    stop_in_container
    return 0
  fi
  if [[ ! -x $ray ]]; then
    ray=$(command -v ray || true)
  fi
  styx_sudo rm -f -- "$RAY_STATE_FILE"
  # the auth token and the client settings go with Ray (setup.ray.auth: token)
  styx_sudo rm -f -- "${STYX_RAY_TOKEN_FILE:-/etc/styx/ray-auth-token}" \
    "${STYX_RAY_AUTH_ENV:-/etc/styx/ray-auth.env}" "${STYX_RAY_AUTH_PROFILE:-/etc/profile.d/styx-ray-auth.sh}"
  if [[ -z $ray ]]; then
    styx_result skipped "ray not installed"
    return 0
  fi
  ! ray_running || was_running=1
  styx_run "$ray" stop --force
  if [[ $was_running -eq 1 ]]; then
    styx_result ok "ray stopped"
  else
    styx_result skipped "ray not running"
  fi
}

main "$@"
