# shellcheck shell=bash
# styx autostop: which of an autostop folder's processes still run. Sourced by autostop.sh and
# autostop_delete.sh: on a node the phase program carries this text before each (the autostop row's
# `helpers` in components/phases.py); run by hand, each script sources this file beside it.
#
# Environment:
#   STYX_AUTOSTOP_DIR  the autostop folder (set by the script that sources this)
#   STYX_PROC_ROOT     procfs (lib.sh's default /proc)

# autostop_pid NAME WORD...: the pid in STYX_AUTOSTOP_DIR/NAME.pid when that process runs and its
# command line holds every WORD (a pid file outlives its process, and a pid is reused)
autostop_pid() {
  local pid cmd w
  pid=$(cat "$STYX_AUTOSTOP_DIR/$1.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -r $STYX_PROC_ROOT/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"$STYX_PROC_ROOT/$pid/cmdline")
  for w in "${@:2}"; do
    [[ $cmd == *"$w"* ]] || return 1
  done
  echo "$pid"
}

# the running watcher's (a follower's) pid, when it runs this folder's watch.sh
watcher_pid() { autostop_pid watcher "$STYX_AUTOSTOP_DIR/watch.sh"; }
