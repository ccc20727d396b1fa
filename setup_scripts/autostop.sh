#!/usr/bin/env bash
# styx phase: autostop -- the head's idle watcher, a worker's follower (setup.autostop).
#
# Writes a small watcher (STYX_AUTOSTOP_DIR/watch.sh: the functions below and
# the settings, nothing else) and runs it detached (setsid, nohup, a pid file;
# no systemd). Every STYX_AUTOSTOP_INTERVAL seconds it asks whether the
# cluster is busy:
#   - an interactive login on the head (`who`, or an sshd session on a pty:
#     `sshd: USER@pts/N`); styx's own connections (phases, `styx exec`,
#     `styx status`) have no pty and do not count
#   - a Ray job pending or running (the dashboard's /api/jobs/ on 127.0.0.1)
#   - a Ray task running (the state API /api/v0/tasks, state=RUNNING)
# With token auth the requests carry the cluster's token from its file
# (STYX_RAY_TOKEN_FILE), through a file descriptor: never in a command line.
# A dashboard that does not answer counts as idle (a cluster whose Ray is
# down still costs money), and is logged.
# Idle for STYX_AUTOSTOP_IDLE_MINUTES in a row: it writes the request
# `STYX_AUTOSTOP_DIR/requested` ("stop|down ISO-time") and checks no more. Who
# acts on it depends on the backend:
#   - STYX_AUTOSTOP_POWEROFF=0 (the local backend): a host-side reaper reads it
#     from the head's root and stops (or destroys) the sandboxes;
#   - STYX_AUTOSTOP_POWEROFF=1 (AWS, GCP: no cloud credentials on the nodes):
#     the machines stop themselves with an OS shutdown (the cloud keeps their
#     disks). The head serves its request on the cluster network only
#     (STYX_AUTOSTOP_BIND:STYX_AUTOSTOP_PORT, python3's http.server over a
#     folder that holds nothing but the request), waits STYX_AUTOSTOP_GRACE s
#     for the workers to see it, then shuts down. Each worker runs the same
#     phase as a follower (STYX_AUTOSTOP_ROLE=follower): every
#     STYX_AUTOSTOP_FOLLOW_INTERVAL s it asks the head (STYX_AUTOSTOP_HEAD) and
#     shuts down on a well-formed request. A worker that missed it (down or cut
#     off during the grace) is not left running alone: when the head's server
#     has not answered at all for STYX_AUTOSTOP_ORPHAN_S, it shuts down too.
# Any activity resets the window. State for `styx status`:
# STYX_AUTOSTOP_DIR/state (idle_since=, checked_at=, busy=).
# A request still there when the phase runs again (the machine stopped on it and
# was started) ends the head's result line with `; requested before: stop TIME`:
# styx reads the time the cluster stopped from it (styx.app.power).
# Running the phase again with the same settings leaves a running watcher
# alone; new settings (`styx autostop`) restart it with a fresh window.
#
# Environment:
#   STYX_AUTOSTOP_IDLE_MINUTES  minutes idle before acting (required, 1-10080)
#   STYX_AUTOSTOP_DOWN          1: the request says down, 0 (default): stop
#   STYX_AUTOSTOP_INTERVAL      seconds between checks (default 60)
#   STYX_AUTOSTOP_RAY           1 (default): check Ray's jobs and tasks
#   STYX_RAY_DASHBOARD_PORT     default 8265
#   STYX_RAY_AUTH               token | none (default)
#   STYX_RAY_TOKEN_FILE         default /etc/styx/ray-auth-token
#   STYX_AUTOSTOP_DIR           default /var/lib/styx/autostop
#   STYX_AUTOSTOP_ROLE          watcher (default: the head) | follower (a worker)
#   STYX_AUTOSTOP_POWEROFF      1: the machine shuts itself down; 0 (default): not
#   STYX_AUTOSTOP_SHUTDOWN_CMD  default `shutdown -h now` (words; run as root)
#   STYX_AUTOSTOP_PORT          where the head serves its request (default 18952)
#   STYX_AUTOSTOP_BIND          the head's private address (POWEROFF=1)
#   STYX_AUTOSTOP_HEAD          a follower: the head's private address
#   STYX_AUTOSTOP_GRACE         the head: seconds from request to shutdown (30)
#   STYX_AUTOSTOP_FOLLOW_INTERVAL  a follower: seconds between asks (default 10)
#   STYX_AUTOSTOP_ORPHAN_S      a follower: seconds without any answer from the
#                               head before it stops (default: the idle window,
#                               at least 600)
#
# stdout: `styx autostop: ok|skipped: ...`
: "${STYX_PHASE:=autostop}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
if ! declare -F autostop_pid >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=autostop_lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/autostop_lib.sh"
fi
set -euo pipefail

STYX_AUTOSTOP_IDLE_MINUTES=${STYX_AUTOSTOP_IDLE_MINUTES:-}
STYX_AUTOSTOP_DOWN=${STYX_AUTOSTOP_DOWN:-0}
STYX_AUTOSTOP_INTERVAL=${STYX_AUTOSTOP_INTERVAL:-60}
STYX_AUTOSTOP_RAY=${STYX_AUTOSTOP_RAY:-1}
STYX_RAY_DASHBOARD_PORT=${STYX_RAY_DASHBOARD_PORT:-8265}
STYX_RAY_AUTH=${STYX_RAY_AUTH:-none}
STYX_RAY_TOKEN_FILE=${STYX_RAY_TOKEN_FILE:-/etc/styx/ray-auth-token}
STYX_AUTOSTOP_DIR=${STYX_AUTOSTOP_DIR:-/var/lib/styx/autostop}
STYX_AUTOSTOP_ROLE=${STYX_AUTOSTOP_ROLE:-watcher}
STYX_AUTOSTOP_POWEROFF=${STYX_AUTOSTOP_POWEROFF:-0}
STYX_AUTOSTOP_SHUTDOWN_CMD=${STYX_AUTOSTOP_SHUTDOWN_CMD:-shutdown -h now}
STYX_AUTOSTOP_PORT=${STYX_AUTOSTOP_PORT:-18952}
STYX_AUTOSTOP_BIND=${STYX_AUTOSTOP_BIND:-}
STYX_AUTOSTOP_HEAD=${STYX_AUTOSTOP_HEAD:-}
STYX_AUTOSTOP_GRACE=${STYX_AUTOSTOP_GRACE:-30}
STYX_AUTOSTOP_FOLLOW_INTERVAL=${STYX_AUTOSTOP_FOLLOW_INTERVAL:-10}
STYX_AUTOSTOP_ORPHAN_S=${STYX_AUTOSTOP_ORPHAN_S:-}
if [[ -z $STYX_AUTOSTOP_ORPHAN_S && $STYX_AUTOSTOP_IDLE_MINUTES =~ ^[1-9][0-9]*$ ]]; then
  STYX_AUTOSTOP_ORPHAN_S=$((STYX_AUTOSTOP_IDLE_MINUTES * 60 > 600 ? STYX_AUTOSTOP_IDLE_MINUTES * 60 : 600))
fi
REQUEST_RE='^(stop|down) [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$'

# ------------------------------------------------- the watcher (copied into watch.sh)

autostop_log() { printf '[%s] autostop %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

# autostop_api PATH -> the dashboard's answer on stdout; fails when it does not answer
autostop_api() {
  local url="http://127.0.0.1:$STYX_RAY_DASHBOARD_PORT$1"
  if [[ $STYX_RAY_AUTH == token && -r $STYX_RAY_TOKEN_FILE ]]; then
    local token
    token=$(<"$STYX_RAY_TOKEN_FILE")
    # the header travels through a file descriptor (printf is a builtin: no argv holds the token)
    curl -fsS --max-time 10 -H @<(printf 'Authorization: Bearer %s\n' "$token") "$url"
  else
    curl -fsS --max-time 10 "$url"
  fi
}

# autostop_busy -> 0 and a reason on stdout when something runs; 1 when idle
autostop_busy() {
  local out
  out=$(who 2>/dev/null || true)
  if [[ -n $out ]]; then
    echo "interactive login ($(awk 'NR == 1 { print $1 "@" $2 }' <<<"$out"))"
    return 0
  fi
  if pgrep -f '^sshd(-session)?: [^ ]+@pts/' >/dev/null 2>&1; then
    echo "interactive SSH session"
    return 0
  fi
  if [[ $STYX_AUTOSTOP_RAY == 1 ]]; then
    if out=$(autostop_api /api/jobs/ 2>/dev/null); then
      if grep -Eq '"status": *"(PENDING|RUNNING)"' <<<"$out"; then
        echo "Ray job running"
        return 0
      fi
    else
      autostop_log "the Ray dashboard does not answer (jobs): counted as idle"
    fi
    if out=$(autostop_api '/api/v0/tasks?limit=1000&filter_keys=state&filter_predicates=%3D&filter_values=RUNNING' 2>/dev/null); then
      if grep -q '"task_id"' <<<"$out"; then
        echo "Ray task running"
        return 0
      fi
    else
      autostop_log "the Ray dashboard does not answer (tasks): counted as idle"
    fi
  fi
  return 1
}

# autostop_write FILE (content on stdin), atomically
autostop_write() {
  cat >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# autostop_check NOW (epoch seconds): one check; updates the state file; writes the request and
# prints `requested` when the window is full
autostop_check() {
  local now=$1 dir=$STYX_AUTOSTOP_DIR since="" reason iso action=stop
  iso=$(date -u -d "@$now" +%Y-%m-%dT%H:%M:%SZ)
  [[ -r $dir/state ]] && since=$(sed -n 's/^idle_since=//p' "$dir/state")
  if reason=$(autostop_busy); then
    [[ -z $since ]] || autostop_log "busy again ($reason): the idle window starts over"
    printf 'idle_since=\nchecked_at=%s\nbusy=%s\n' "$iso" "$reason" | autostop_write "$dir/state"
    return 0
  fi
  if [[ ! $since =~ ^[0-9]+$ ]]; then
    since=$now
    autostop_log "idle from $iso"
  fi
  printf 'idle_since=%s\nidle_since_iso=%s\nchecked_at=%s\nbusy=\n' "$since" \
    "$(date -u -d "@$since" +%Y-%m-%dT%H:%M:%SZ)" "$iso" | autostop_write "$dir/state"
  if ((now - since >= STYX_AUTOSTOP_IDLE_MINUTES * 60)); then
    [[ $STYX_AUTOSTOP_DOWN == 1 ]] && action=down
    printf '%s %s\n' "$action" "$iso" | autostop_write "$dir/requested"
    # the machines stop themselves: the workers read it from the head's server
    [[ $STYX_AUTOSTOP_POWEROFF != 1 ]] || printf '%s %s\n' "$action" "$iso" | autostop_write "$dir/public/requested"
    autostop_log "idle for $(((now - since) / 60)) min (setup.autostop.idle_minutes $STYX_AUTOSTOP_IDLE_MINUTES): requested $action"
    echo requested
  fi
}

# autostop_poweroff: this machine stops (STYX_AUTOSTOP_SHUTDOWN_CMD, as root)
autostop_poweroff() {
  local -a cmd
  read -ra cmd <<<"$STYX_AUTOSTOP_SHUTDOWN_CMD"
  if [[ $(id -u) -eq 0 ]]; then "${cmd[@]}"; else sudo -n -- "${cmd[@]}"; fi
}

# autostop_watch: the loop (until the machine stops; nothing more once the request is written)
autostop_watch() {
  local fired=0
  autostop_log "watching: idle ${STYX_AUTOSTOP_IDLE_MINUTES} min, a check every ${STYX_AUTOSTOP_INTERVAL} s"
  while :; do
    if [[ ! -e $STYX_AUTOSTOP_DIR/requested ]]; then
      autostop_check "$(date +%s)" >/dev/null || autostop_log "a check failed"
    fi
    if [[ $STYX_AUTOSTOP_POWEROFF == 1 && -e $STYX_AUTOSTOP_DIR/requested ]]; then
      if ((!fired)); then
        autostop_log "the workers have ${STYX_AUTOSTOP_GRACE} s to see the request; then this machine stops"
        sleep "$STYX_AUTOSTOP_GRACE"
        fired=1
      fi
      autostop_log "stopping this machine ($STYX_AUTOSTOP_SHUTDOWN_CMD)"
      autostop_poweroff || autostop_log "the shutdown command failed; trying again"
    fi
    sleep "$STYX_AUTOSTOP_INTERVAL"
  done
}

# autostop_ask: the head's request, when it has a well-formed one
autostop_ask() {
  local line
  line=$(curl -fsS --max-time 5 "http://$STYX_AUTOSTOP_HEAD:$STYX_AUTOSTOP_PORT/requested" 2>/dev/null | head -c 200 |
    head -n 1) || return 1
  [[ $line =~ $REQUEST_RE ]] || return 1
  printf '%s\n' "$line"
}

# autostop_head_answers: the head's server answers at all (a 404 too: no request yet)
autostop_head_answers() {
  local code
  code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://$STYX_AUTOSTOP_HEAD:$STYX_AUTOSTOP_PORT/" \
    2>/dev/null) || true
  [[ $code =~ ^[1-5][0-9][0-9]$ ]]
}

# autostop_follow: a worker's loop: the head's request stops this machine too, and so does a head
# that has not answered for STYX_AUTOSTOP_ORPHAN_S (stopped while this worker missed its request)
autostop_follow() {
  local req last now
  last=$(date +%s)
  autostop_log "following the head's requests (http://$STYX_AUTOSTOP_HEAD:$STYX_AUTOSTOP_PORT/requested, every ${STYX_AUTOSTOP_FOLLOW_INTERVAL} s; alone after ${STYX_AUTOSTOP_ORPHAN_S} s without an answer)"
  while :; do
    now=$(date +%s)
    if req=$(autostop_ask); then
      autostop_log "the head requested ${req%% *} at ${req#* }: stopping this machine ($STYX_AUTOSTOP_SHUTDOWN_CMD)"
      autostop_poweroff || autostop_log "the shutdown command failed; trying again"
    elif autostop_head_answers; then
      last=$now
    elif ((now - last >= STYX_AUTOSTOP_ORPHAN_S)); then
      autostop_log "the head has not answered for $((now - last)) s (stopped; its request missed): stopping this machine ($STYX_AUTOSTOP_SHUTDOWN_CMD)"
      autostop_poweroff || autostop_log "the shutdown command failed; trying again"
    fi
    sleep "$STYX_AUTOSTOP_FOLLOW_INTERVAL"
  done
}

# ------------------------------------------------------------------ the phase

WATCH_FUNCS=(autostop_log autostop_api autostop_busy autostop_write autostop_check autostop_poweroff
  autostop_watch autostop_ask autostop_head_answers autostop_follow)

# the watcher's whole text: settings, functions, the call (its hash says which settings run)
watcher_text() {
  echo '#!/usr/bin/env bash'
  echo '# styx autostop watcher (written by the autostop phase; settings: setup.autostop)'
  echo 'set -uo pipefail'
  declare -p STYX_AUTOSTOP_IDLE_MINUTES STYX_AUTOSTOP_DOWN STYX_AUTOSTOP_INTERVAL STYX_AUTOSTOP_RAY \
    STYX_RAY_DASHBOARD_PORT STYX_RAY_AUTH STYX_RAY_TOKEN_FILE STYX_AUTOSTOP_DIR STYX_AUTOSTOP_POWEROFF \
    STYX_AUTOSTOP_SHUTDOWN_CMD STYX_AUTOSTOP_PORT STYX_AUTOSTOP_HEAD STYX_AUTOSTOP_GRACE \
    STYX_AUTOSTOP_FOLLOW_INTERVAL STYX_AUTOSTOP_ORPHAN_S REQUEST_RE
  declare -f "${WATCH_FUNCS[@]}"
  if [[ $STYX_AUTOSTOP_ROLE == follower ]]; then echo 'autostop_follow'; else echo 'autostop_watch'; fi
}

# the head's server, with POWEROFF=1 (else nothing to serve)
serving() { [[ $STYX_AUTOSTOP_ROLE == watcher && $STYX_AUTOSTOP_POWEROFF == 1 ]]; }

# python3's arguments (one a line): the public folder only, on the private address only
server_args() { printf '%s\n' -m http.server --bind "$STYX_AUTOSTOP_BIND" --directory "$STYX_AUTOSTOP_DIR/public" "$STYX_AUTOSTOP_PORT"; }

# the running server's pid, when it serves this dir's public folder at these settings
server_pid() {
  local pid
  local -a argv
  pid=$(autostop_pid server) || return 1
  mapfile -d '' -t argv <"$STYX_PROC_ROOT/$pid/cmdline"
  # argv[0]: python3 as the system names it (a wrapper may re-run it by its full path)
  [[ ${#argv[@]} -gt 1 && ${argv[0]##*/} == python3* ]] || return 1
  [[ $(printf '%s\n' "${argv[@]:1}") == "$(server_args)" ]] || return 1
  echo "$pid"
}

check_settings() {
  [[ $STYX_AUTOSTOP_IDLE_MINUTES =~ ^[1-9][0-9]*$ ]] ||
    styx_die "STYX_AUTOSTOP_IDLE_MINUTES must be a whole number of minutes >= 1, got '$STYX_AUTOSTOP_IDLE_MINUTES'"
  [[ $STYX_AUTOSTOP_INTERVAL =~ ^[1-9][0-9]*$ ]] ||
    styx_die "STYX_AUTOSTOP_INTERVAL must be a whole number of seconds >= 1, got '$STYX_AUTOSTOP_INTERVAL'"
  [[ $STYX_AUTOSTOP_DOWN == [01] ]] || styx_die "STYX_AUTOSTOP_DOWN must be 0 or 1, got '$STYX_AUTOSTOP_DOWN'"
  [[ $STYX_AUTOSTOP_POWEROFF == [01] ]] ||
    styx_die "STYX_AUTOSTOP_POWEROFF must be 0 or 1, got '$STYX_AUTOSTOP_POWEROFF'"
  [[ $STYX_AUTOSTOP_ROLE == watcher || $STYX_AUTOSTOP_ROLE == follower ]] ||
    styx_die "STYX_AUTOSTOP_ROLE must be watcher or follower, got '$STYX_AUTOSTOP_ROLE'"
  [[ $STYX_AUTOSTOP_ROLE == watcher || $STYX_AUTOSTOP_POWEROFF == 1 ]] ||
    styx_die "a follower (STYX_AUTOSTOP_ROLE=follower) needs STYX_AUTOSTOP_POWEROFF=1"
  [[ $STYX_AUTOSTOP_ROLE == watcher || $STYX_AUTOSTOP_HEAD =~ ^[0-9a-fA-F.:]+$ ]] ||
    styx_die "a follower needs STYX_AUTOSTOP_HEAD, the head's private address, got '$STYX_AUTOSTOP_HEAD'"
  ! serving || [[ $STYX_AUTOSTOP_BIND =~ ^[0-9a-fA-F.:]+$ ]] ||
    styx_die "STYX_AUTOSTOP_POWEROFF=1 on the head needs STYX_AUTOSTOP_BIND, its private address, got '$STYX_AUTOSTOP_BIND'"
  [[ $STYX_AUTOSTOP_PORT =~ ^[1-9][0-9]{0,4}$ ]] || styx_die "STYX_AUTOSTOP_PORT must be a port, got '$STYX_AUTOSTOP_PORT'"
  [[ $STYX_AUTOSTOP_GRACE =~ ^[0-9]+$ && $STYX_AUTOSTOP_FOLLOW_INTERVAL =~ ^[1-9][0-9]*$ ]] ||
    styx_die "STYX_AUTOSTOP_GRACE and STYX_AUTOSTOP_FOLLOW_INTERVAL must be whole seconds"
  [[ $STYX_AUTOSTOP_ORPHAN_S =~ ^[1-9][0-9]*$ ]] ||
    styx_die "STYX_AUTOSTOP_ORPHAN_S must be a whole number of seconds >= 1, got '$STYX_AUTOSTOP_ORPHAN_S'"
  if [[ $STYX_AUTOSTOP_POWEROFF == 1 ]]; then
    local -a cmd
    read -ra cmd <<<"$STYX_AUTOSTOP_SHUTDOWN_CMD"
    { ((${#cmd[@]})) && command -v "${cmd[0]}" >/dev/null; } ||
      styx_die "the shutdown command '${cmd[0]:-}' is not on this machine (STYX_AUTOSTOP_SHUTDOWN_CMD)"
    ! serving || command -v python3 >/dev/null || styx_die "python3 is needed on the head to serve the request"
    [[ $STYX_AUTOSTOP_ROLE == watcher ]] || command -v curl >/dev/null || styx_die "curl is needed on a follower"
  fi
}

# start the head's server (POWEROFF=1): the public folder holds only the request
start_server() {
  local dir=$STYX_AUTOSTOP_DIR pid
  if pid=$(server_pid); then
    return 0
  fi
  mkdir -p -- "$dir/public"
  chmod 0755 "$dir/public"
  local -a args
  mapfile -t args < <(server_args)
  nohup setsid python3 "${args[@]}" >>"$dir/server.log" 2>&1 </dev/null &
  echo "$!" >"$dir/server.pid"
  # a wrapper (a pyenv shim, update-alternatives) may take a moment to become python3 itself
  local i
  for ((i = 0; i < 50; i++)); do
    server_pid >/dev/null && return 0
    sleep 0.1
  done
  tail -n 5 "$dir/server.log" >&2 || true
  styx_die "the request server did not start"
}

main() {
  check_settings
  local dir=$STYX_AUTOSTOP_DIR want pid what
  what="idle ${STYX_AUTOSTOP_IDLE_MINUTES} min, then $([[ $STYX_AUTOSTOP_DOWN == 1 ]] && echo down || echo stop)"
  [[ $STYX_AUTOSTOP_POWEROFF == 0 ]] || what+="; this machine shuts down"
  [[ $STYX_AUTOSTOP_ROLE == watcher ]] || what="the head's request at $STYX_AUTOSTOP_HEAD:$STYX_AUTOSTOP_PORT shuts this machine down"
  want=$(watcher_text)
  if pid=$(watcher_pid) && [[ $(<"$dir/watch.sh") == "$want" ]] && { ! serving || server_pid >/dev/null; }; then
    styx_result skipped "watcher already running (pid $pid; $what)"
    return 0
  fi
  styx_sudo mkdir -p -- "$dir"
  styx_sudo chown "$(id -un)" -- "$dir"
  chmod 0700 "$dir"
  if pid=$(watcher_pid); then
    kill "$pid" 2>/dev/null || true
    styx_log INFO "stopped the old watcher (pid $pid): new settings"
  fi
  if pid=$(server_pid); then
    kill "$pid" 2>/dev/null || true
  fi
  # a request left from before (the machine stopped on it and was started again): its time is when the cluster
  # went idle and stopped, which the result line tells styx (a cloud says only that a machine is stopped)
  local before=""
  if [[ -f $dir/requested && ! -L $dir/requested ]]; then
    before=$(head -c 200 -- "$dir/requested" 2>/dev/null | head -n 1) || before=""
    [[ $before =~ $REQUEST_RE ]] || before=""
  fi
  # a fresh window: no old request, no old idle time
  rm -f -- "$dir/requested" "$dir/state" "$dir/public/requested"
  if serving; then start_server; fi
  printf '%s\n' "$want" | autostop_write "$dir/watch.sh"
  nohup setsid bash "$dir/watch.sh" >>"$dir/watcher.log" 2>&1 </dev/null &
  echo "$!" >"$dir/watcher.pid"
  sleep 0.3
  pid=$(watcher_pid) || { tail -n 5 "$dir/watcher.log" >&2 || true; styx_die "the watcher did not start"; }
  if [[ $STYX_AUTOSTOP_ROLE == follower ]]; then
    styx_result ok "follower started (pid $pid; $what)"
  else
    styx_result ok "watcher started (pid $pid; $what; a check every ${STYX_AUTOSTOP_INTERVAL} s)${before:+; requested before: $before}"
  fi
}

# styx drift: the watcher runs, with these settings
check_drift() {
  local pid
  if ! pid=$(watcher_pid); then
    styx_verdict "" "the autostop watcher is not running"
  elif [[ $(<"$STYX_AUTOSTOP_DIR/watch.sh") != "$(watcher_text)" ]]; then
    styx_verdict "" "the autostop watcher runs other settings"
  elif serving && ! server_pid >/dev/null; then
    styx_verdict "" "the head's request server is not running"
  else
    styx_verdict "autostop watcher running (pid $pid)"
  fi
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
