#!/usr/bin/env bats
# wheel_cache.sh (the head's wheel cache: setup.python.wheel_cache auto on ssh/aws/gcp) and its undo with a
# stubbed python3 standing in for wheel_cache.py and the uv wheel fetcher: what reaches them (the index only
# in the environment, never argv), the result lines, a second run that changes nothing, a fill that fails
# (a warning, never a failure), a head without python3, the server restarted when it is gone, the undo, and
# the drift check. wheel_cache.py itself is exercised for real by tests/e2e/test_head_wheel_cache.py.

load helpers

KEY=0123456789abcdef0123

setup() {
  common_setup
  export STYX_WC_DIR="$T/wc" STYX_WC_KEY=$KEY STYX_WC_BIND=10.121.0.2 STYX_WC_PORT=18951
  export STYX_WC_SPECS=$'ray[default]==2.60.0\nuv==0.13.9' STYX_WC_PROGRAM='# wheel_cache.py (stub text)'
  export STYX_UVW_PROGRAM='# uv wheel fetcher (stub text)' STYX_UV_VERSION=0.13.9
  # python3: `-c PROGRAM VERSION DEST` (the uv fetcher: writes DEST), `-c ...` (the Python version), and
  # wheel_cache.py's fill/serve/stop; the environment each saw in $T/env.<what>
  stub python3 '
if [[ $1 == -c ]]; then
  if [[ $2 == *"uv wheel fetcher"* ]]; then
    env >"$T/env.uvw"; [[ -e $T/no-uv ]] && exit 1
    mkdir -p "$(dirname "$4")"; printf "#!/bin/sh\necho uv 0.13.9\n" >"$4"; chmod +x "$4"; exit 0
  fi
  echo 3.11; exit 0
fi
prog=$1; shift
case $1 in
  fill)
    env >"$T/env.fill"
    if [[ -e $T/fill-fails ]]; then echo "wheel cache $3: not filled"; exit 0; fi
    if [[ -e $2/$3/.complete ]]; then echo "wheel cache $3: 2 files, cached"; exit 0; fi
    mkdir -p "$2/$3"; touch "$2/$3/ray-2.60.0-cp311-none-any.whl" "$2/$3/uv-0.13.9-py3-none-any.whl" "$2/$3/.complete"
    echo "wheel cache $3: 2 files, filled in 1.0s (uv resolve + 2 parallel downloads, 9 MiB)" ;;
  serve)
    pid=4242
    if [[ -r $STYX_PROC_ROOT/$pid/cmdline && -e $5 ]]; then echo "wheel cache server on $3:$4: running"; exit 0; fi
    mkdir -p "$STYX_PROC_ROOT/$pid"
    printf "%s\0" /usr/bin/python3 "$prog" http.server --bind "$3" --directory "$2" "$4" >"$STYX_PROC_ROOT/$pid/cmdline"
    echo $pid >"$5"; echo "wheel cache server on $3:$4: started (pid $pid)" ;;
  stop)
    pid=$(cat "$2" 2>/dev/null); rm -rf "$STYX_PROC_ROOT/$pid" "$2"; echo "wheel cache server stopped" ;;
esac'
}

@test "fills once, serves on the private address; the index only in the environment; a second run changes nothing" {
  export STYX_PIP_INDEX_URL="https://user:hunter2@mirror.example/simple"
  run_phase wheel_cache
  assert_status 0
  assert_one_line
  assert_output_matches "^styx wheel_cache: ok: $KEY: 2 files, filled in .*; server on 10.121.0.2:18951: started \(pid 4242\)$"
  [[ $(cat "$STYX_WC_DIR/wheel_cache.py") == "# wheel_cache.py (stub text)" ]]
  # the resolver's uv from its wheel, where wheel_cache.py looks (tools/uv-<version>), from the same index
  [[ -x $STYX_WC_DIR/tools/uv-0.13.9/bin/uv ]]
  grep -qx "STYX_UVW_PAGES=https://user:hunter2@mirror.example/simple/uv/" "$T/env.uvw"
  grep -qx "PIP_INDEX_URL=https://user:hunter2@mirror.example/simple" "$T/env.fill"
  grep -qx "STYX_WC_SPECS=ray\[default\]==2.60.0" "$T/env.fill"
  assert_log_has "^python3 $STYX_WC_DIR/wheel_cache.py fill $STYX_WC_DIR/wheels $KEY 3.11$"
  assert_log_has "^python3 $STYX_WC_DIR/wheel_cache.py serve $STYX_WC_DIR/wheels 10.121.0.2 18951 $STYX_WC_DIR/server.pid$"
  assert_log_lacks "hunter2"  # never an argument
  if grep -rq hunter2 "$T/log"; then false; fi  # never logged
  run_phase wheel_cache
  assert_status 0
  assert_output_matches "^styx wheel_cache: skipped: $KEY: 2 files, cached; server on 10.121.0.2:18951: running$"
}

@test "without an index setting the fill's environment has none (PyPI)" {
  run_phase wheel_cache
  assert_status 0
  if grep -q '^PIP_INDEX_URL=' "$T/env.fill"; then false; fi
  grep -qx "STYX_UVW_PAGES=https://pypi.org/simple/uv/" "$T/env.uvw"
}

@test "a given Python version is what the fill resolves for" {
  export STYX_WC_PYTHON=3.12
  run_phase wheel_cache
  assert_status 0
  assert_log_has "fill $STYX_WC_DIR/wheels $KEY 3.12$"
}

@test "a fill that fails is a warning, never a failure: the server still runs, the nodes use the index" {
  touch "$T/fill-fails" "$T/no-uv"
  run_phase wheel_cache
  assert_status 0
  assert_output_matches "^styx wheel_cache: ok: $KEY: not filled; server on 10.121.0.2:18951: started"
  assert_stderr_contains "uv 0.13.9 could not be fetched"
  assert_stderr_contains "the nodes install from the index"
}

@test "a head without python3: skipped, the nodes install from the index" {
  rm "$STUB_BIN/python3"
  run_phase wheel_cache
  assert_status 0
  assert_output_matches "^styx wheel_cache: skipped: no python3 here"
}

@test "a server gone (a reboot) is drift; the phase run again restarts it and keeps the wheels" {
  run_phase wheel_cache
  assert_status 0
  STYX_ACTION=verify run_phase wheel_cache
  assert_output_matches "^styx wheel_cache: ok: wheel cache $KEY complete \(2 files\); server on 10.121.0.2:18951 \(pid 4242\)$"
  rm -rf "$T/proc/4242"  # the process is gone, its pid file stays
  STYX_ACTION=verify run_phase wheel_cache
  assert_output_matches "^styx wheel_cache: drifted: the wheel cache server is not running on 10.121.0.2:18951$"
  run_phase wheel_cache
  assert_output_matches "^styx wheel_cache: ok: $KEY: 2 files, cached; server on 10.121.0.2:18951: started"
  rm -f "$STYX_WC_DIR/wheels/$KEY/.complete"
  STYX_ACTION=verify run_phase wheel_cache
  assert_output_matches "drifted: the wheel cache $KEY is not complete"
}

@test "bad settings fail naming the variable" {
  STYX_WC_BIND="" run_phase wheel_cache
  assert_status 1
  assert_stderr_contains "STYX_WC_BIND must be the head's private address"
  STYX_WC_KEY="../x" run_phase wheel_cache
  assert_status 1
  assert_stderr_contains "STYX_WC_KEY must be the cache key"
}

@test "the undo stops the server with wheel_cache.py's own stop and keeps the wheels; twice is a no-op" {
  run_phase wheel_cache
  assert_status 0
  run_phase wheel_cache_delete
  assert_status 0
  assert_output_matches "^styx wheel_cache_delete: ok: wheel cache server stopped; the wheels stay in $STYX_WC_DIR/wheels$"
  assert_log_has "^python3 $STYX_WC_DIR/wheel_cache.py stop $STYX_WC_DIR/server.pid$"
  [[ ! -e $T/proc/4242 && -f $STYX_WC_DIR/wheels/$KEY/.complete ]]
  run_phase wheel_cache_delete
  assert_output_matches "^styx wheel_cache_delete: skipped: no wheel cache server here$"
}

@test "run by hand, the script finds wheel_cache.py and the uv fetcher beside it" {
  unset STYX_WC_PROGRAM STYX_UVW_PROGRAM
  run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" bash "$SCRIPTS/wheel_cache.sh"
  assert_status 0
  cmp -s "$STYX_WC_DIR/wheel_cache.py" "$SCRIPTS/wheel_cache.py"
  grep -q "STYX_UVW_PAGES" "$T/stub.log"  # the fetcher's text, from python_env.sh, went to python3 -c
}

@test "fill only (the head's first-boot job, STYX_WC_SERVE=0): no address needed, no server; the phase then finds it cached" {
  STYX_WC_SERVE=0 STYX_WC_BIND= run_phase wheel_cache
  assert_status 0
  assert_one_line
  assert_output_matches "^styx wheel_cache: ok: $KEY: 2 files, filled in .*\)$"
  assert_log_lacks "serve"
  [[ ! -e $STYX_WC_DIR/server.pid ]]
  run_phase wheel_cache
  assert_status 0
  assert_output_matches "^styx wheel_cache: ok: $KEY: 2 files, cached; server on 10.121.0.2:18951: started \(pid 4242\)$"
}

@test "the phase waits while the first-boot fill holds its lock, then finds the key complete" {
  mkdir -p "$T/state/first-boot"
  touch "$T/state/first-boot/wheel_cache.pending" "$T/state/first-boot/wheel_cache.started"
  ( exec 9>"$T/state/first-boot/wheel_cache.lock"; flock 9; sleep 2
    mkdir -p "$STYX_WC_DIR/wheels/$KEY"; touch "$STYX_WC_DIR/wheels/$KEY/a.whl" "$STYX_WC_DIR/wheels/$KEY/.complete"
    rm -f "$T/state/first-boot/wheel_cache.pending" ) &
  sleep 0.5
  run_phase wheel_cache
  wait
  assert_status 0
  assert_output_matches "^styx wheel_cache: ok: $KEY: 2 files, cached; server on 10.121.0.2:18951: started \(pid 4242\)$"
  [[ $stderr == *"first-boot wheel_cache done (waited "* ]]
}
