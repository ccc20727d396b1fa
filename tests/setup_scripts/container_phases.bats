#!/usr/bin/env bats
# The phases that run inside the Ray container (setup.ray.container), with a
# fake docker whose `exec` runs the command here, as the container would:
# custom_container.sh (custom_scripts[].run_in: container) and
# container_pip.sh (setup.python.pip_packages into the container's Python).

load helpers

setup() {
  common_setup
  mkdir -p "$T/dk"
  touch "$T/dk/running"
  # `docker exec [-i] CONTAINER CMD...` runs CMD here (stdin passed through)
  stub docker '
case $1 in
  inspect) [ -f "$T/dk/running" ] && echo true || exit 1 ;;
  exec) shift; while [ "${1#-}" != "$1" ]; do shift; done; shift; exec "$@" ;;
esac'
  # the cluster env file, as the prelude sources it inside
  printf 'STYX_BOX=yes\nAPI_TOKEN=s3cr3t-env\n' >"$T/env.sh"
  PRELUDE="if [ -r $T/env.sh ]; then set -a; . $T/env.sh; set +a; fi; "
  export STYX_NODE_NAME=worker-1 STYX_NODE_ROLE=worker
}

# custom_script BODY [CHECK]: the phase's parameters as components/phases.py builds them
custom_script() {
  export STYX_CUSTOM_NAME=inside STYX_CUSTOM_SCRIPT="$PRELUDE"$'\nset -euo pipefail\n'"$1"$'\n'
  if [[ -n ${2:-} ]]; then export STYX_CUSTOM_CHECK="$PRELUDE"$'\n'"$2"$'\n'; fi
}

@test "custom script: runs inside via docker exec, the env file and the node seen, never in argv" {
  custom_script 'echo "box=$STYX_BOX node=$STYX_NODE_NAME/$STYX_NODE_ROLE phase=$STYX_PHASE"
[ -z "$(cat)" ] && echo "stdin empty"
echo "$API_TOKEN" >"$T/inside"'
  run_phase custom_container
  assert_status 0
  [[ ${lines[0]} == "box=yes node=worker-1/worker phase=custom_container" ]]
  [[ ${lines[1]} == "stdin empty" ]]
  [[ ${lines[2]} == "styx custom_container: ok: custom script inside finished in container styx-ray" ]]
  [[ ${#lines[@]} -eq 3 && $(cat "$T/inside") == s3cr3t-env ]]
  assert_log_has '^docker exec -i styx-ray bash -c '
  ! grep -q 'inside\|s3cr3t\|STYX_BOX' "$STUB_LOG"
  [[ $stderr != *s3cr3t* ]]
}

@test "custom script: strict mode inside; a failure names the script and its exit status" {
  custom_script 'false
touch "$T/after"'
  run_phase custom_container
  assert_status 1
  [[ ! -e $T/after ]]
  assert_stderr_contains 'custom script inside failed in container styx-ray (exit 1)'
}

@test "custom script: the container not running is a clear error, nothing runs" {
  custom_script 'touch "$T/ran"'
  rm "$T/dk/running"
  run_phase custom_container
  assert_status 1
  assert_stderr_contains 'container styx-ray is not running (the ray_container phase starts it'
  [[ ! -e $T/ran ]]
}

@test "custom script: verify runs the check inside (ok, drifted), none: skipped; never the script" {
  custom_script 'touch "$T/ran"' 'test -f "$T/marker"'
  touch "$T/marker"
  STYX_ACTION=verify run_phase custom_container
  assert_status 0
  assert_output_matches '^styx custom_container: ok: custom check passed in container styx-ray$'
  rm "$T/marker"
  STYX_ACTION=verify run_phase custom_container
  assert_output_matches '^styx custom_container: drifted: custom check of inside failed in container styx-ray'
  rm "$T/dk/running"
  STYX_ACTION=verify run_phase custom_container
  assert_output_matches '^styx custom_container: drifted: container styx-ray not running$'
  unset STYX_CUSTOM_CHECK
  STYX_ACTION=verify run_phase custom_container
  assert_output_matches '^styx custom_container: skipped: no check configured'
  [[ ! -e $T/ran ]]
}

# python3 of the container: imports ray (unless $T/noray); `-` is the
# requirement check (satisfied once $T/installed exists); `-m pip install`
# installs, leaving the index URL it was given in $T/pip-index
pip_stubs() {
  stub python3 '
case $1 in
  -c) [ ! -f "$T/noray" ] ;;
  -) cat >/dev/null; shift; [ -f "$T/installed" ] && exit 0; for s in "$@"; do echo "unsatisfied: $s" >&2; done; exit 1 ;;
  -m) printf "%s\n" "${PIP_INDEX_URL:-}" >"$T/pip-index"; printf "%s\0" "$@" >"$T/pip-argv"; touch "$T/installed"; echo "Successfully installed six" ;;
esac'
  export STYX_CONTAINER_PRELUDE="$PRELUDE" STYX_PIP_PACKAGES=$'six==1.17.0\npkg[extra]  >=1,<2' \
    STYX_PIP_CHECK_PY='print("the check")' STYX_PIP_INSTALLER=pip \
    STYX_PIP_INDEX_URL='https://me:hunter2-index@pypi.example/simple'
}

@test "pip: installed inside, each spec one argument, the index URL on stdin only; second run skipped" {
  pip_stubs
  run_phase container_pip
  assert_status 0
  assert_one_line
  assert_output_matches "^styx container_pip: ok: installed 2 pip specs with pip in container styx-ray \\($STUB_BIN/python3\\)$"
  [[ $(tr '\0' '|' <"$T/pip-argv") == "-m|pip|install|six==1.17.0|pkg[extra]  >=1,<2|" ]]
  [[ $(cat "$T/pip-index") == https://me:hunter2-index@pypi.example/simple ]]
  ! grep -rq hunter2 "$STUB_LOG" "$STYX_LOG_DIR"
  [[ $stderr != *hunter2* ]]
  : >"$STUB_LOG"
  run_phase container_pip
  assert_status 0
  assert_output_matches '^styx container_pip: skipped: 2 pip specs already satisfied in container styx-ray'
  assert_log_lacks '^python3 -m pip'
}

@test "pip: uv when the image has it, pip when it fails (noted); no uv: pip (noted)" {
  pip_stubs
  export STYX_PIP_INSTALLER=uv
  stub uv 'exit 1'
  run_phase container_pip
  assert_status 0
  assert_log_has '^uv pip install --python .*/python3 six==1.17.0 pkg\[extra\]  >=1,<2$'
  assert_output_matches 'with pip in container styx-ray \(.*python3, uv failed: pip\)$'
  rm -f "$STUB_BIN/uv" "$T/installed"
  run_phase container_pip
  assert_status 0
  assert_output_matches ', no uv in the image: pip\)$'
}

@test "pip: no Python with ray in the container is a clear error" {
  pip_stubs
  touch "$T/noray"
  run_phase container_pip
  assert_status 1
  assert_stderr_contains 'has no python3 or python that imports ray (setup.ray.container.image)'
}

@test "pip: verify says which spec is missing, ok once installed, never installs" {
  pip_stubs
  STYX_ACTION=verify run_phase container_pip
  assert_status 0
  assert_output_matches '^styx container_pip: drifted: in container styx-ray: unsatisfied: six==1.17.0; '
  assert_log_lacks '^python3 -m pip'
  touch "$T/installed"
  STYX_ACTION=verify run_phase container_pip
  assert_output_matches '^styx container_pip: ok: 2 pip specs satisfied in container styx-ray$'
}
