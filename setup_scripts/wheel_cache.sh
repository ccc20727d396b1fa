#!/usr/bin/env bash
# styx phase: wheel_cache -- the head downloads the cluster's wheels once and serves them to the workers
# (setup.python.wheel_cache: auto on the ssh, aws and gcp backends).
#
# Runs `wheel_cache.py` (the one copy of the cache's logic: the local backend's host runs it too) with
# this machine's python3: `fill` resolves the requirements for the nodes' Python and this machine's
# platform with uv, downloads each file once, in parallel, sha256-checked, into
# STYX_WC_DIR/wheels/<key>/ (a complete key is never fetched again), then `serve` runs the standard
# library's HTTP server for STYX_WC_DIR/wheels on the head's private address only. The uv that resolves
# comes from its wheel on the index (python_env's stdlib fetcher: no pip needed). Every python_env of the
# cluster (the head's too) installs from http://<head>:<port>/<key>/ with --no-index first and falls
# back to the index when the cache is gone or lacks a file. A fill that fails (no network, an index
# without a file for this platform) is a warning, never a failure: the nodes then use the index.
# The server is a detached process (setsid, a pid file; no systemd): a reboot of the head stops it, and
# `styx drift` reports it (`styx start` and `styx repair` run this phase again, which restarts it).
# The undo (`styx down`) stops the server and keeps the downloaded wheels (a later cluster on this
# machine with the same requirements finds them complete).
#
# Environment:
#   STYX_WC_DIR        the cache's folder (default /var/lib/styx/wheel-cache): wheels/<key>/, tools/
#                      (uv), wheel_cache.py, server.pid, server.log
#   STYX_WC_KEY        the cache key (required; hex: the requirements, the index, the Python)
#   STYX_WC_PYTHON     the nodes' Python, X.Y, or system (default: this machine's python3)
#   STYX_WC_SPECS      the requirements, one a line
#   STYX_WC_BIND       the head's private address (required): the server listens there only
#   STYX_WC_PORT       default 18951
#   STYX_WC_SERVE      1 (default): fill, then serve; 0: fill only, no STYX_WC_BIND needed (the head's
#                      first-boot work, setup.first_boot: this phase then finds the key complete)
#   STYX_WC_PROGRAM    the text of wheel_cache.py (the phase carries it; run by hand: the file beside)
#   STYX_UVW_PROGRAM   python_env.sh's uv wheel fetcher (run by hand: read from python_env.sh beside)
#   STYX_UV_VERSION    default 0.13.9
#   STYX_PIP_INDEX_URL optional index (may hold credentials: it reaches the fill's environment only,
#                      never a command line or a log)
#
# stdout: `styx wheel_cache: ok|skipped: ...`; the fill's and the server's output in the phase log.
: "${STYX_PHASE:=wheel_cache}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_WC_DIR=${STYX_WC_DIR:-/var/lib/styx/wheel-cache}
STYX_WC_KEY=${STYX_WC_KEY:-}
STYX_WC_PYTHON=${STYX_WC_PYTHON:-system}
STYX_WC_SPECS=${STYX_WC_SPECS:-}
STYX_WC_BIND=${STYX_WC_BIND:-}
STYX_WC_PORT=${STYX_WC_PORT:-18951}
STYX_WC_SERVE=${STYX_WC_SERVE:-1}
STYX_UV_VERSION=${STYX_UV_VERSION:-0.13.9}
STYX_PIP_INDEX_URL=${STYX_PIP_INDEX_URL:-}
if [[ -z ${STYX_WC_PROGRAM:-} && -r "$(dirname "${BASH_SOURCE[0]}")/wheel_cache.py" ]]; then
  STYX_WC_PROGRAM=$(<"$(dirname "${BASH_SOURCE[0]}")/wheel_cache.py")
fi
if [[ -z ${STYX_UVW_PROGRAM:-} && -r "$(dirname "${BASH_SOURCE[0]}")/python_env.sh" ]]; then
  STYX_UVW_PROGRAM=$(sed -n "/^UV_WHEEL_PY='\$/,/^'\$/{/^UV_WHEEL_PY='\$/d;/^'\$/d;p}" \
    "$(dirname "${BASH_SOURCE[0]}")/python_env.sh")
fi
STYX_WC_PROGRAM=${STYX_WC_PROGRAM:-}
STYX_UVW_PROGRAM=${STYX_UVW_PROGRAM:-}
PROGRAM="$STYX_WC_DIR/wheel_cache.py"
PIDFILE="$STYX_WC_DIR/server.pid"

check_settings() {
  [[ $STYX_WC_KEY =~ ^[0-9a-f]{8,64}$ ]] || styx_die "STYX_WC_KEY must be the cache key (hex), got '$STYX_WC_KEY'"
  [[ $STYX_WC_PYTHON == system || $STYX_WC_PYTHON =~ ^[0-9]+\.[0-9]+$ ]] ||
    styx_die "STYX_WC_PYTHON must be 'system' or X.Y, got '$STYX_WC_PYTHON'"
  [[ $STYX_WC_SERVE == 0 || $STYX_WC_BIND =~ ^[0-9a-fA-F.:]+$ ]] ||
    styx_die "STYX_WC_BIND must be the head's private address, got '$STYX_WC_BIND'"
  [[ $STYX_WC_PORT =~ ^[1-9][0-9]{0,4}$ ]] || styx_die "STYX_WC_PORT must be a port, got '$STYX_WC_PORT'"
  [[ $STYX_WC_DIR == /* ]] || styx_die "STYX_WC_DIR must be an absolute path"
  [[ -n $STYX_WC_PROGRAM ]] || styx_die "STYX_WC_PROGRAM is empty (the text of wheel_cache.py)"
}

# wc_py ARGS...: wheel_cache.py with this machine's python3; the index only in its environment
wc_py() {
  (
    [[ -z $STYX_PIP_INDEX_URL ]] || export PIP_INDEX_URL="$STYX_PIP_INDEX_URL"
    export STYX_WC_SPECS
    exec python3 "$PROGRAM" "$@"
  ) 2>>"$(styx_log_file)"
}

# the server's pid, when the pid file's process is this cache's server on this address and port
server_pid() {
  local pid cmd
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -r $STYX_PROC_ROOT/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"$STYX_PROC_ROOT/$pid/cmdline")
  [[ $cmd == *"http.server --bind $STYX_WC_BIND --directory $STYX_WC_DIR/wheels $STYX_WC_PORT "* ]] || return 1
  echo "$pid"
}

# uv (the resolver) from its wheel on the index into tools/, where wheel_cache.py looks first
fetch_uv() {
  local uv="$STYX_WC_DIR/tools/uv-$STYX_UV_VERSION/bin/uv" index
  [[ ! -x $uv ]] || return 0
  [[ -n $STYX_UVW_PROGRAM ]] || return 0
  index=${STYX_PIP_INDEX_URL:-https://pypi.org/simple}
  if STYX_UVW_PAGES="${index%/}/uv/" python3 -c "$STYX_UVW_PROGRAM" "$STYX_UV_VERSION" "$uv.part" \
    >>"$(styx_log_file)" 2>&1 && mv -f -- "$uv.part" "$uv"; then
    styx_log INFO "uv $STYX_UV_VERSION from its wheel (the resolver)"
  else
    rm -f -- "$uv.part"
    styx_log WARN "uv $STYX_UV_VERSION could not be fetched (see the phase log): the fill tries pip"
  fi
}

main() {
  check_settings
  local fill serve pyver
  if ! styx_have python3; then
    styx_log WARN "no python3 on the head: no wheel cache; the nodes install from the index"
    styx_result skipped "no python3 here: no wheel cache (the nodes install from the index)"
    return 0
  fi
  styx_first_boot_wait wheel_cache
  styx_sudo install -d -m 0755 -- "$STYX_WC_DIR"
  # -R: the first-boot work fills it as root; the phase runs as the SSH user
  styx_sudo chown -R "$(id -un)" -- "$STYX_WC_DIR"
  mkdir -p -- "$STYX_WC_DIR/wheels" "$STYX_WC_DIR/tools"
  styx_write_file_if_changed "$PROGRAM" 0644 "$(id -un)" < <(printf '%s\n' "$STYX_WC_PROGRAM")
  pyver=$STYX_WC_PYTHON
  [[ $pyver != system ]] || pyver=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  fetch_uv
  fill=$(wc_py fill "$STYX_WC_DIR/wheels" "$STYX_WC_KEY" "$pyver") || fill="wheel cache $STYX_WC_KEY: not filled"
  if [[ $STYX_WC_SERVE == 0 ]]; then
    styx_result ok "${fill#wheel cache }"
    return 0
  fi
  serve=$(wc_py serve "$STYX_WC_DIR/wheels" "$STYX_WC_BIND" "$STYX_WC_PORT" "$PIDFILE") || serve=""
  [[ -n $serve ]] || serve="wheel cache server on $STYX_WC_BIND:$STYX_WC_PORT: not started (see the phase log)"
  if [[ $fill == *": not filled" ]]; then
    styx_log WARN "the wheels were not fetched (see the phase log): the nodes install from the index"
  fi
  if [[ $fill == *", cached" && $serve == *": running" ]]; then
    styx_result skipped "${fill#wheel cache }; ${serve#wheel cache }"
  else
    styx_result ok "${fill#wheel cache }; ${serve#wheel cache }"
  fi
}

# styx drift: the key's folder is complete and the server runs on the head's private address
check_drift() {
  local pid n
  local -a problems=()
  if [[ -f $STYX_WC_DIR/wheels/$STYX_WC_KEY/.complete ]]; then
    n=$(find "$STYX_WC_DIR/wheels/$STYX_WC_KEY" -maxdepth 1 -type f ! -name '.*' | wc -l)
  else
    problems+=("the wheel cache $STYX_WC_KEY is not complete")
  fi
  pid=$(server_pid) || problems+=("the wheel cache server is not running on $STYX_WC_BIND:$STYX_WC_PORT")
  styx_verdict "wheel cache $STYX_WC_KEY complete (${n:-0} files); server on $STYX_WC_BIND:$STYX_WC_PORT (pid ${pid:-})" \
    "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
