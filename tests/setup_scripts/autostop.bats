#!/usr/bin/env bats
# autostop.sh: the idleness checks with stubbed `who`, `pgrep` and `curl` (the
# Ray dashboard), the idle window on a fake clock, and the phase starting,
# keeping and restarting a real detached watcher. Where the nodes stop
# themselves (STYX_AUTOSTOP_POWEROFF=1: AWS, GCP) the shutdown command is a
# stub (STYX_AUTOSTOP_SHUTDOWN_CMD): nothing here ever powers this machine off.

load helpers

setup() {
  common_setup
  export PHASE_HELPERS=autostop_lib.sh # the autostop row's helpers (components/phases.py)
  export STYX_AUTOSTOP_DIR="$T/autostop" STYX_AUTOSTOP_IDLE_MINUTES=1 STYX_AUTOSTOP_INTERVAL=1
  export STYX_RAY_AUTH=token STYX_RAY_TOKEN_FILE="$T/ray-auth-token" STYX_RAY_DASHBOARD_PORT=8265
  mkdir -p "$STYX_AUTOSTOP_DIR" "$T/dash"
  printf 'tok-7c1e-not-in-argv\n' >"$STYX_RAY_TOKEN_FILE"
  echo '[]' >"$T/dash/jobs"
  echo '{"result": true, "data": {"result": {"total": 0, "result": []}}}' >"$T/dash/tasks"
  stub who ''
  stub pgrep 'exit 1'
  # the dashboard: $T/dash/jobs, $T/dash/tasks; $T/dash/down: not answering; the header file saved
  stub curl '
prev=""
for a in "$@"; do
  if [[ $prev == -H && $a == @* ]]; then cat "${a#@}" >"$T/curl.header"; fi
  prev=$a
done
[[ -e $T/dash/down ]] && exit 7
url=${*: -1}
case $url in
  */api/jobs/) cat "$T/dash/jobs" ;;
  */api/v0/tasks*) cat "$T/dash/tasks" ;;
  *) exit 22 ;;
esac'
}

teardown() {
  local pid f
  for f in watcher.pid server.pid; do
    pid=$(cat "$STYX_AUTOSTOP_DIR/$f" 2>/dev/null || true)
    [[ -z $pid ]] || kill "$pid" 2>/dev/null || true
  done
}

# the stubbed shutdown: records its arguments, powers nothing off
stub_poweroff() {
  stub fake-poweroff 'printf "%s\n" "$*" >>"$T/poweroff.calls"'
  export STYX_AUTOSTOP_SHUTDOWN_CMD="fake-poweroff -h now" STYX_AUTOSTOP_GRACE=0
}

# call FUNC ARGS...: one of the watcher's functions, as watch.sh runs it (a loop: stopped after 3 s)
call() {
  local body
  body="$(cat "$SCRIPTS/lib.sh" "$SCRIPTS/autostop_lib.sh")"$'\n'"$(sed '$d' "$SCRIPTS/autostop.sh")"$'\n'"$*"
  run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" timeout 3 bash -c "$body" styx-autostop
}

# check NOW: one autostop_check at epoch NOW, as the watcher runs it
check() {
  local body
  # the script without its last line (the dispatch to main): its functions only
  body="$(cat "$SCRIPTS/lib.sh" "$SCRIPTS/autostop_lib.sh")"$'\n'"$(sed '$d' "$SCRIPTS/autostop.sh")"$'\nautostop_check '"$1"
  run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" bash -c "$body" styx-autostop
}

state() { sed -n "s/^$1=//p" "$STYX_AUTOSTOP_DIR/state"; }

@test "a running Ray job: busy, no idle time" {
  echo '[{"job_id": "02000000", "status": "RUNNING"}]' >"$T/dash/jobs"
  check 1000
  assert_status 0
  [ "$(state busy)" = "Ray job running" ]
  [ -z "$(state idle_since)" ]
  check 5000
  [ ! -e "$STYX_AUTOSTOP_DIR/requested" ]
}

@test "a pending Ray job counts too; finished ones do not" {
  echo '[{"status": "SUCCEEDED"}, {"status": "PENDING"}]' >"$T/dash/jobs"
  check 1000
  [ "$(state busy)" = "Ray job running" ]
  echo '[{"status": "SUCCEEDED"}, {"status": "FAILED"}]' >"$T/dash/jobs"
  check 1010
  [ "$(state idle_since)" = 1010 ]
}

@test "a running Ray task: busy" {
  echo '{"data": {"result": {"result": [{"task_id": "abc", "state": "RUNNING"}]}}}' >"$T/dash/tasks"
  check 1000
  [ "$(state busy)" = "Ray task running" ]
  assert_log_has 'curl .*filter_values=RUNNING'
}

@test "an interactive SSH session (sshd on a pty) or a login in who: busy" {
  stub pgrep 'exit 0'
  check 1000
  [ "$(state busy)" = "interactive SSH session" ]
  assert_log_has '^pgrep -f \^sshd\(-session\)\?: \[\^ \]\+@pts/'
  stub pgrep 'exit 1'
  stub who 'echo "alice    pts/0        2026-12-02 10:00 (10.0.0.9)"'
  check 1010
  [ "$(state busy)" = "interactive login (alice@pts/0)" ]
}

@test "idle for the whole window: the request is written once the minute is full" {
  check 1000
  [ "$(state idle_since)" = 1000 ]
  [ "$(state idle_since_iso)" = 1970-01-01T00:16:40Z ]
  check 1059
  [ -z "$output" ]
  [ ! -e "$STYX_AUTOSTOP_DIR/requested" ]
  check 1060
  [ "$output" = requested ]
  [ "$(cat "$STYX_AUTOSTOP_DIR/requested")" = "stop 1970-01-01T00:17:40Z" ]
  assert_stderr_contains "requested stop"
}

@test "activity resets the window" {
  check 1000
  stub pgrep 'exit 0'
  check 1030
  [ -z "$(state idle_since)" ]
  stub pgrep 'exit 1'
  check 1050
  [ "$(state idle_since)" = 1050 ]
  check 1100
  [ ! -e "$STYX_AUTOSTOP_DIR/requested" ]
  check 1110
  [ "$output" = requested ]
}

@test "down: true asks for down" {
  export STYX_AUTOSTOP_DOWN=1
  check 1000
  check 1060
  [ "$(cut -d' ' -f1 "$STYX_AUTOSTOP_DIR/requested")" = down ]
}

@test "the token reaches curl as a header file, never in its arguments" {
  check 1000
  [ "$(cat "$T/curl.header")" = "Authorization: Bearer tok-7c1e-not-in-argv" ]
  ! grep -q tok-7c1e "$STUB_LOG"
  ! grep -qa tok-7c1e "$T/argv.curl"
}

@test "auth none: no header" {
  export STYX_RAY_AUTH=none
  check 1000
  [ ! -e "$T/curl.header" ]
}

@test "a dashboard that does not answer counts as idle (logged)" {
  touch "$T/dash/down"
  check 1000
  [ "$(state idle_since)" = 1000 ]
  assert_stderr_contains "does not answer"
}

@test "Ray off: only SSH sessions are checked" {
  export STYX_AUTOSTOP_RAY=0
  echo '[{"status": "RUNNING"}]' >"$T/dash/jobs"
  check 1000
  [ "$(state idle_since)" = 1000 ]
  assert_log_lacks '^curl'
}

@test "the phase starts a detached watcher, keeps it on a rerun, restarts it on new settings; undo stops it" {
  export STYX_PROC_ROOT=/proc
  stub nohup 'exec "$@"'
  run_phase autostop
  assert_status 0
  assert_one_line
  assert_output_matches '^styx autostop: ok: watcher started \(pid [0-9]+; idle 1 min, then stop; a check every 1 s\)$'
  local pid
  pid=$(cat "$STYX_AUTOSTOP_DIR/watcher.pid")
  kill -0 "$pid"
  # the watcher checks on its own
  for _ in 1 2 3 4 5 6 7 8 9 10; do [[ -s $STYX_AUTOSTOP_DIR/state ]] && break; sleep 0.3; done
  [ -n "$(state checked_at)" ]
  ! grep -q tok-7c1e "$STYX_AUTOSTOP_DIR/watch.sh"
  run_phase autostop
  assert_output_matches "^styx autostop: skipped: watcher already running \\(pid $pid;"
  STYX_ACTION=verify run_phase autostop
  assert_output_matches '^styx autostop: ok: autostop watcher running'
  export STYX_AUTOSTOP_IDLE_MINUTES=5
  STYX_ACTION=verify run_phase autostop
  assert_output_matches '^styx autostop: drifted: the autostop watcher runs other settings'
  run_phase autostop
  assert_output_matches '^styx autostop: ok: watcher started .*idle 5 min'
  ! kill -0 "$pid" 2>/dev/null
  local pid2
  pid2=$(cat "$STYX_AUTOSTOP_DIR/watcher.pid")
  [ "$pid2" != "$pid" ]
  run_phase autostop_delete
  assert_output_matches "^styx autostop_delete: ok: autostop watcher \\(pid $pid2\\) stopped and removed"
  [ ! -e "$STYX_AUTOSTOP_DIR" ]
  sleep 0.2
  ! kill -0 "$pid2" 2>/dev/null
  STYX_ACTION=verify run_phase autostop
  assert_output_matches '^styx autostop: drifted: the autostop watcher is not running'
  run_phase autostop_delete
  assert_output_matches '^styx autostop_delete: skipped'
}

@test "the phase run again after a stop on its request names the request's time, then starts a fresh window" {
  export STYX_PROC_ROOT=/proc
  stub nohup 'exec "$@"'
  printf 'stop 2026-12-03T10:00:00Z\n' >"$STYX_AUTOSTOP_DIR/requested"
  run_phase autostop
  assert_status 0
  assert_one_line
  assert_output_matches '^styx autostop: ok: watcher started \(pid [0-9]+; idle 1 min, then stop; a check every 1 s\); requested before: stop 2026-12-03T10:00:00Z$'
  [ ! -e "$STYX_AUTOSTOP_DIR/requested" ]  # a fresh window
  kill "$(cat "$STYX_AUTOSTOP_DIR/watcher.pid")"
  sleep 0.2
  printf 'stop soon; rm -rf /\n' >"$STYX_AUTOSTOP_DIR/requested"  # not a request: not repeated
  run_phase autostop
  assert_output_matches '^styx autostop: ok: watcher started \(pid [0-9]+; [^)]*\)$'
  [ ! -e "$STYX_AUTOSTOP_DIR/requested" ]
}

@test "run by hand, the scripts source their helper beside them" {
  rm -rf "$STYX_AUTOSTOP_DIR"
  run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" bash "$SCRIPTS/autostop_delete.sh"
  assert_status 0
  assert_output_matches '^styx autostop_delete: skipped: no autostop watcher here'
  STYX_ACTION=verify run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" bash "$SCRIPTS/autostop.sh"
  assert_output_matches '^styx autostop: drifted: the autostop watcher is not running'
}

@test "bad settings: a clear error" {
  export STYX_AUTOSTOP_IDLE_MINUTES=0
  run_phase autostop
  assert_status 1
  assert_stderr_contains "STYX_AUTOSTOP_IDLE_MINUTES must be a whole number of minutes >= 1"
}

@test "nodes that stop themselves: the request is published for the workers, then the head shuts down" {
  stub_poweroff
  export STYX_AUTOSTOP_POWEROFF=1 STYX_AUTOSTOP_BIND=127.0.0.1
  mkdir -p "$STYX_AUTOSTOP_DIR/public"
  check 1000
  check 1061
  assert_output_matches '^requested$'
  [ "$(cat "$STYX_AUTOSTOP_DIR/public/requested")" = "$(cat "$STYX_AUTOSTOP_DIR/requested")" ]
  [ ! -e "$T/poweroff.calls" ]  # one check never powers off: the loop does, after the grace time
  call autostop_watch
  [ "$(head -n 1 "$T/poweroff.calls")" = "-h now" ]
  [[ $stderr == *"the workers have 0 s to see the request; then this machine stops"* ]]
}

@test "nodes stopped by someone else (the local reaper): the watcher never powers off, nothing is published" {
  stub_poweroff
  check 1000
  check 1061
  assert_output_matches '^requested$'
  [ ! -e "$STYX_AUTOSTOP_DIR/public/requested" ]
  call autostop_watch
  [ ! -e "$T/poweroff.calls" ]
}

@test "a follower shuts its machine down on the head's well-formed request, and only then" {
  stub_poweroff
  export STYX_AUTOSTOP_ROLE=follower STYX_AUTOSTOP_POWEROFF=1 STYX_AUTOSTOP_HEAD=10.0.0.2 STYX_AUTOSTOP_FOLLOW_INTERVAL=1
  stub curl '[[ -e $T/head-req ]] && cat "$T/head-req" || exit 22'
  call autostop_follow
  [ ! -e "$T/poweroff.calls" ]  # nothing requested (404) yet
  grep -q 'curl -fsS --max-time 5 http://10.0.0.2:18952/requested' "$STUB_LOG"
  printf 'stop; reboot\n' >"$T/head-req"
  call autostop_follow
  [ ! -e "$T/poweroff.calls" ]  # a malformed answer is no request
  printf 'stop 2026-12-03T10:00:00Z\n' >"$T/head-req"
  call autostop_follow
  [ "$(head -n 1 "$T/poweroff.calls")" = "-h now" ]
  [[ $stderr == *"the head requested stop at 2026-12-03T10:00:00Z: stopping this machine"* ]]
}

@test "a follower whose head has not answered for STYX_AUTOSTOP_ORPHAN_S stops too; a head that answers (404) keeps it" {
  stub_poweroff
  export STYX_AUTOSTOP_ROLE=follower STYX_AUTOSTOP_POWEROFF=1 STYX_AUTOSTOP_HEAD=10.0.0.2 STYX_AUTOSTOP_FOLLOW_INTERVAL=1
  export STYX_AUTOSTOP_ORPHAN_S=1
  # the head answers, with no request: 404 (curl -f fails, the status code says it is there)
  stub curl 'for a in "$@"; do [[ $a == "%{http_code}" ]] && { printf 404; exit 0; }; done; exit 22'
  call autostop_follow
  [ ! -e "$T/poweroff.calls" ]
  # the head is gone: no answer at all (curl prints 000)
  stub curl 'for a in "$@"; do [[ $a == "%{http_code}" ]] && printf 000; done; exit 7'
  call autostop_follow
  [ "$(head -n 1 "$T/poweroff.calls")" = "-h now" ]
  [[ $stderr == *"the head has not answered for "*" s (stopped; its request missed): stopping this machine"* ]]
}

@test "the head's phase serves the request folder on its private address; undo stops the server" {
  command -v python3 >/dev/null || skip "python3 needed"
  stub_poweroff
  ln -sf "$(type -P python3)" "$STUB_BIN/python3"
  stub nohup 'exec "$@"'
  export STYX_PROC_ROOT=/proc STYX_AUTOSTOP_POWEROFF=1 STYX_AUTOSTOP_BIND=127.0.0.1
  STYX_AUTOSTOP_PORT=$((20000 + RANDOM % 20000))
  export STYX_AUTOSTOP_PORT
  run_phase autostop
  assert_status 0
  assert_output_matches '^styx autostop: ok: watcher started \(pid [0-9]+; idle 1 min, then stop; this machine shuts down;'
  local spid
  spid=$(cat "$STYX_AUTOSTOP_DIR/server.pid")
  kill -0 "$spid"
  printf 'stop 2026-12-03T10:00:00Z\n' >"$STYX_AUTOSTOP_DIR/public/requested"
  local got=""
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    got=$(python3 -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$STYX_AUTOSTOP_PORT/requested', timeout=2).read().decode().strip())" 2>/dev/null) && break
    sleep 0.3
  done
  [ "$got" = "stop 2026-12-03T10:00:00Z" ]
  # only the public folder is served: the watcher's own files are not reachable
  ! python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$STYX_AUTOSTOP_PORT/../watch.sh', timeout=2)" 2>/dev/null
  run_phase autostop
  assert_output_matches '^styx autostop: skipped: watcher already running'
  STYX_ACTION=verify run_phase autostop
  assert_output_matches '^styx autostop: ok: autostop watcher running'
  kill "$spid"
  sleep 0.2
  STYX_ACTION=verify run_phase autostop
  assert_output_matches "^styx autostop: drifted: the head's request server is not running"
  run_phase autostop
  assert_output_matches '^styx autostop: ok: watcher started'
  spid=$(cat "$STYX_AUTOSTOP_DIR/server.pid")
  run_phase autostop_delete
  assert_output_matches '^styx autostop_delete: ok'
  sleep 0.2
  ! kill -0 "$spid" 2>/dev/null
  [ ! -e "$T/poweroff.calls" ]
}

@test "bad power-off settings: clear errors" {
  export STYX_AUTOSTOP_ROLE=follower
  run_phase autostop
  assert_status 1
  assert_stderr_contains "a follower (STYX_AUTOSTOP_ROLE=follower) needs STYX_AUTOSTOP_POWEROFF=1"
  export STYX_AUTOSTOP_POWEROFF=1
  run_phase autostop
  assert_stderr_contains "a follower needs STYX_AUTOSTOP_HEAD, the head's private address"
  export STYX_AUTOSTOP_ROLE=watcher STYX_AUTOSTOP_BIND=10.0.0.2 STYX_AUTOSTOP_SHUTDOWN_CMD="no-such-poweroff now"
  run_phase autostop
  assert_stderr_contains "the shutdown command 'no-such-poweroff' is not on this machine"
  export STYX_AUTOSTOP_POWEROFF=2
  run_phase autostop
  assert_stderr_contains "STYX_AUTOSTOP_POWEROFF must be 0 or 1"
}
