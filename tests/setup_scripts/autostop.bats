#!/usr/bin/env bats
# autostop.sh: the idleness checks with stubbed `who`, `pgrep` and `curl` (the
# Ray dashboard), the idle window on a fake clock, and the phase starting,
# keeping and restarting a real detached watcher.

load helpers

setup() {
  common_setup
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
  local pid
  pid=$(cat "$STYX_AUTOSTOP_DIR/watcher.pid" 2>/dev/null || true)
  [[ -z $pid ]] || kill "$pid" 2>/dev/null || true
}

# check NOW: one autostop_check at epoch NOW, as the watcher runs it
check() {
  local body
  # the script without its last line (the dispatch to main): its functions only
  body="$(cat "$SCRIPTS/lib.sh")"$'\n'"$(sed '$d' "$SCRIPTS/autostop.sh")"$'\nautostop_check '"$1"
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

@test "bad settings: a clear error" {
  export STYX_AUTOSTOP_IDLE_MINUTES=0
  run_phase autostop
  assert_status 1
  assert_stderr_contains "STYX_AUTOSTOP_IDLE_MINUTES must be a whole number of minutes >= 1"
}
