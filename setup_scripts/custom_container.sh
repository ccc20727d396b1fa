#!/usr/bin/env bash
# styx phase: custom-<name> with run_in: container -- a user's custom script
# run inside the node's Ray container (setup.ray.container) through
# `docker exec`, like `ray up`'s setup_commands: after container_pip, before
# Ray starts, as the image's user, in the container's working folder.
#
# Environment:
#   STYX_RAY_CONTAINER   the container (default styx-ray)
#   STYX_CUSTOM_NAME     the script's name (setup.custom_scripts[].name)
#   STYX_CUSTOM_SCRIPT   the bash program run inside (components/phases.py
#                        builds it: CONTAINER_PRELUDE, i.e. the image's Ray
#                        first on PATH and the cluster's env vars and secret
#                        env vars; `set -euo pipefail`; then the user's script
#                        verbatim). It reaches the container on docker exec's
#                        stdin, never a command line; the script's own stdin
#                        is /dev/null. STYX_NODE_NAME, STYX_NODE_ROLE and
#                        STYX_PHASE are exported inside, as on the host.
#   STYX_CUSTOM_CHECK    the same for the script's `check` (styx drift), or
#                        empty (no check: `skipped`)
#   STYX_PHASE_TIMEOUT   seconds the script may run inside (default 3600; a
#                        killed `docker exec` would leave it running)
#
# stdout: what the script prints, then `styx custom-<name>: ok: ...`.
: "${STYX_PHASE:=custom_container}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_RAY_CONTAINER=${STYX_RAY_CONTAINER:-styx-ray}
STYX_CUSTOM_NAME=${STYX_CUSTOM_NAME:-${STYX_PHASE#custom-}}
STYX_PHASE_TIMEOUT=${STYX_PHASE_TIMEOUT:-3600}
# the programs stay in this shell only (not in the environment of what it runs)
_styx_script=${STYX_CUSTOM_SCRIPT:-}
_styx_check=${STYX_CUSTOM_CHECK:-}
unset STYX_CUSTOM_SCRIPT STYX_CUSTOM_CHECK

container_running() {
  [[ $(styx_sudo docker inspect --format '{{.State.Running}}' "$STYX_RAY_CONTAINER" 2>/dev/null) == true ]]
}

# run_inside PROGRAM: PROGRAM (bash) inside the container, read from docker
# exec's stdin (fd 3 inside; the program's stdin is /dev/null), bounded by
# STYX_PHASE_TIMEOUT; who runs it is exported first
# shellcheck disable=SC2016 # for the container's shell
run_inside() {
  {
    printf 'export STYX_NODE_NAME=%q STYX_NODE_ROLE=%q STYX_PHASE=%q\n' \
      "${STYX_NODE_NAME:-}" "${STYX_NODE_ROLE:-}" "$STYX_PHASE"
    printf '%s\n' "$1"
  } | styx_sudo docker exec -i "$STYX_RAY_CONTAINER" bash -c \
    'exec 3<&0 </dev/null; exec timeout -k 10 "$1" bash /dev/fd/3' styx-custom "$STYX_PHASE_TIMEOUT"
}

main() {
  local rc=0
  [[ -n $_styx_script ]] || styx_die "STYX_CUSTOM_SCRIPT is empty"
  styx_have docker || styx_die "docker is not installed (setup.ray.container)"
  container_running ||
    styx_die "container $STYX_RAY_CONTAINER is not running (the ray_container phase starts it; custom_scripts[].run_in: container)"
  styx_log INFO "running custom script $STYX_CUSTOM_NAME in container $STYX_RAY_CONTAINER"
  run_inside "$_styx_script" || rc=$?
  [[ $rc -ne 124 ]] || styx_die "custom script $STYX_CUSTOM_NAME stopped in container $STYX_RAY_CONTAINER after ${STYX_PHASE_TIMEOUT}s (setup.timeouts.$STYX_PHASE)"
  [[ $rc -eq 0 ]] || styx_die "custom script $STYX_CUSTOM_NAME failed in container $STYX_RAY_CONTAINER (exit $rc)"
  styx_result ok "custom script $STYX_CUSTOM_NAME finished in container $STYX_RAY_CONTAINER"
}

# styx drift: the script's own check, run in the container (read-only)
check_drift() {
  if [[ -z $_styx_check ]]; then
    styx_result skipped "no check configured (custom_scripts[].check)"
  elif ! styx_have docker || ! container_running; then
    styx_result drifted "container $STYX_RAY_CONTAINER not running"
  elif run_inside "$_styx_check" >&2; then
    styx_result ok "custom check passed in container $STYX_RAY_CONTAINER"
  else
    styx_result drifted "custom check of $STYX_CUSTOM_NAME failed in container $STYX_RAY_CONTAINER (custom_scripts.check)"
  fi
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
