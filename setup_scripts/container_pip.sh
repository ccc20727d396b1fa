#!/usr/bin/env bash
# styx phase: container_pip -- setup.python.pip_packages inside the node's Ray
# container (setup.ray.container), into the Python that has Ray there, like
# `ray up`'s setup_commands; the host gets none of them.
#
# Environment:
#   STYX_RAY_CONTAINER      the container (default styx-ray; the ray_container
#                           phase's)
#   STYX_CONTAINER_PRELUDE  shell line every command inside runs first: the
#                           image's Ray first on PATH, the cluster env file
#                           (components/phases.py CONTAINER_PRELUDE)
#   STYX_PIP_PACKAGES       requirement specs, one per line, each one argument
#                           of `pip install` exactly as written (a line
#                           starting with `-` is a pip option)
#   STYX_PIP_INDEX_URL      optional index URL (may hold credentials: it
#                           enters the container on docker exec's stdin as
#                           PIP_INDEX_URL / UV_INDEX_URL, never a command line)
#   STYX_PIP_INSTALLER      uv (default) | pip: uv when the image has `uv` on
#                           its PATH, else (or when uv fails) the Python's pip,
#                           noted on the result line
#   STYX_PIP_CHECK_PY       the offline requirement check (python_env.sh's
#                           PIP_CHECK_PY): exit 0 satisfied, 1 not, 2 cannot check
#   STYX_PHASE_TIMEOUT      seconds the install may run inside the container
#                           (default 1800; a killed `docker exec` would leave
#                           it running)
#
# The Python: the first of python3, python on the container's PATH (after the
# prelude) that imports ray. Commands run as the image's user, like Ray's.
# Already satisfied: nothing is installed (no index asked), `skipped`.
# stdout: `styx container_pip: ok|skipped: ...`; pip/uv output in the phase log.
: "${STYX_PHASE:=container_pip}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_RAY_CONTAINER=${STYX_RAY_CONTAINER:-styx-ray}
STYX_CONTAINER_PRELUDE=${STYX_CONTAINER_PRELUDE:-}
STYX_PIP_PACKAGES=${STYX_PIP_PACKAGES:-}
STYX_PIP_INSTALLER=${STYX_PIP_INSTALLER:-uv}
STYX_PIP_CHECK_PY=${STYX_PIP_CHECK_PY:-}
STYX_PHASE_TIMEOUT=${STYX_PHASE_TIMEOUT:-1800}
# the index URL stays in this shell until it is written to docker exec's stdin
_styx_index_url=${STYX_PIP_INDEX_URL:-}
unset STYX_PIP_INDEX_URL
SPECS=()
PY=""

# What runs inside (bash -c): $1 the action, the rest its arguments.
#   python      print the Python that imports ray
#   check ...   the requirement check (program on stdin) for the specs
#   pip|uv ...  install the specs (stdin: the index URL line), bounded by $limit
# shellcheck disable=SC2016 # for the container's shell
INNER='act=$1; shift
py=
for p in python3 python; do
  if command -v "$p" >/dev/null 2>&1 && "$p" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec(\"ray\") is None)" 2>/dev/null; then
    py=$(command -v "$p"); break
  fi
done
if [ -z "$py" ]; then echo "no python3 or python that imports ray on the container PATH ($PATH)" >&2; exit 3; fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore PIP_BREAK_SYSTEM_PACKAGES=1 UV_BREAK_SYSTEM_PACKAGES=1
case $act in
  python) echo "$py" ;;
  check) exec "$py" - "$@" ;;
  pip | uv)
    IFS= read -r u || u=
    [ -z "$u" ] || export PIP_INDEX_URL="$u" UV_INDEX_URL="$u"
    if [ "$act" = uv ]; then exec timeout -k 10 "$limit" uv pip install --python "$py" "$@"; fi
    exec timeout -k 10 "$limit" "$py" -m pip install "$@" ;;
  has-uv) command -v uv >/dev/null 2>&1 ;;
esac'

# inside ACTION ARGS...: INNER in the container, after the prelude; stdin passes through
inside() {
  styx_sudo docker exec -i "$STYX_RAY_CONTAINER" bash -c "${STYX_CONTAINER_PRELUDE}limit=${STYX_PHASE_TIMEOUT@Q}; $INNER" \
    styx-container-pip "$@"
}

container_running() {
  [[ $(styx_sudo docker inspect --format '{{.State.Running}}' "$STYX_RAY_CONTAINER" 2>/dev/null) == true ]]
}

# check -> the requirement check's status in the container's Python (offline):
# 0 every spec satisfied, 1 not (`unsatisfied: SPEC` lines on stderr), 2 it
# cannot check (no check program, no packaging library)
check() {
  [[ -n $STYX_PIP_CHECK_PY ]] || return 2
  printf '%s' "$STYX_PIP_CHECK_PY" | inside check "${SPECS[@]}"
}

install_with() { # pip|uv
  local rc=0
  printf '\n=== [%s] container %s: %s install %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STYX_RAY_CONTAINER" "$1" \
    "${SPECS[*]@Q}" >>"$(styx_log_file)"
  printf '%s\n' "$_styx_index_url" | inside "$1" "${SPECS[@]}" >>"$(styx_log_file)" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] || printf '=== exit status %s\n' "$rc" >>"$(styx_log_file)"
  return "$rc"
}

preflight() {
  mapfile -t SPECS < <(printf '%s' "$STYX_PIP_PACKAGES")
  styx_have docker || styx_die "docker is not installed (setup.ray.container)"
  container_running || styx_die "container $STYX_RAY_CONTAINER is not running (the ray_container phase starts it)"
  PY=$(inside python 2>>"$(styx_log_file)") ||
    styx_die "container $STYX_RAY_CONTAINER has no python3 or python that imports ray (setup.ray.container.image)"
}

main() {
  local installer=pip note="" rc
  preflight
  if [[ ${#SPECS[@]} -eq 0 ]]; then
    styx_result skipped "no pip packages (setup.python.pip_packages)"
    return 0
  fi
  rc=0
  check 2>>"$(styx_log_file)" || rc=$?
  if [[ $rc -eq 0 ]]; then
    _styx_index_url=""
    styx_result skipped "${#SPECS[@]} pip specs already satisfied in container $STYX_RAY_CONTAINER ($PY)"
    return 0
  fi
  if [[ $STYX_PIP_INSTALLER == uv ]]; then
    if inside has-uv </dev/null; then installer=uv; else note=", no uv in the image: pip"; fi
  fi
  styx_log INFO "installing ${#SPECS[@]} pip specs with $installer into $PY in container $STYX_RAY_CONTAINER"
  if ! install_with "$installer"; then
    [[ $installer == uv ]] || styx_die "pip install in container $STYX_RAY_CONTAINER failed (see $(styx_log_file))"
    styx_log WARN "uv failed in container $STYX_RAY_CONTAINER (see the phase log): installing with pip"
    installer=pip note=", uv failed: pip"
    install_with pip || styx_die "pip install in container $STYX_RAY_CONTAINER failed (see $(styx_log_file))"
  fi
  _styx_index_url=""
  rc=0
  check 2>>"$(styx_log_file)" || rc=$?
  [[ $rc -ne 1 ]] ||
    styx_die "after the install, not every spec is satisfied in container $STYX_RAY_CONTAINER (see $(styx_log_file))"
  styx_result ok "installed ${#SPECS[@]} pip specs with $installer in container $STYX_RAY_CONTAINER ($PY$note)"
}

# styx drift: every spec still satisfied in the container's Python
check_drift() {
  local err rc=0 line
  local -a problems=()
  _styx_index_url=""
  mapfile -t SPECS < <(printf '%s' "$STYX_PIP_PACKAGES")
  if ! styx_have docker || ! container_running; then
    problems+=("container $STYX_RAY_CONTAINER not running")
  elif ! PY=$(inside python 2>/dev/null); then
    problems+=("no Python with ray in container $STYX_RAY_CONTAINER")
  elif [[ ${#SPECS[@]} -gt 0 ]]; then
    err=$(check 2>&1 >/dev/null) || rc=$?
    if [[ $rc -eq 1 ]]; then
      while IFS= read -r line; do
        [[ $line != "unsatisfied: "* ]] || problems+=("in container $STYX_RAY_CONTAINER: $line")
      done <<<"$err"
      [[ ${#problems[@]} -gt 0 ]] || problems+=("pip specs not satisfied in container $STYX_RAY_CONTAINER")
    elif [[ $rc -ne 0 ]]; then
      problems+=("the pip spec check could not run in container $STYX_RAY_CONTAINER (exit $rc)")
    fi
  fi
  styx_verdict "${#SPECS[@]} pip specs satisfied in container $STYX_RAY_CONTAINER" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
