#!/usr/bin/env bash
# styx phase: workdir -- create the cluster work directory.
#
# Environment:
#   STYX_WORKDIR        directory to create (default /opt/styx/work)
#   STYX_WORKDIR_OWNER  owner user[:group] (default: the user running the
#                       phase, i.e. the SSH user)
#   STYX_WORKDIR_MODE   mode (default 0755)
#
# stdout: `styx workdir: ok|skipped: ...`
: "${STYX_PHASE:=workdir}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_WORKDIR=${STYX_WORKDIR:-/opt/styx/work}
STYX_WORKDIR_OWNER=${STYX_WORKDIR_OWNER:-$(id -un)}
STYX_WORKDIR_MODE=${STYX_WORKDIR_MODE:-0755}

main() {
  local dir=$STYX_WORKDIR owner=$STYX_WORKDIR_OWNER user group cur_owner cur_mode
  [[ $dir == /* ]] || styx_die "STYX_WORKDIR must be an absolute path, got '$dir'"
  user=${owner%%:*}
  id -u "$user" >/dev/null 2>&1 || styx_die "STYX_WORKDIR_OWNER: no such user '$user'"
  if [[ $owner == *:* ]]; then group=${owner#*:}; else group=$(id -gn "$user"); fi

  if [[ -d $dir ]]; then
    cur_owner=$(stat -c '%U:%G' -- "$dir")
    cur_mode=$(stat -c '%a' -- "$dir")
    if [[ $cur_owner == "$user:$group" && $((8#$cur_mode)) -eq $((8#$STYX_WORKDIR_MODE)) ]]; then
      styx_result skipped "$dir already exists ($user:$group, $STYX_WORKDIR_MODE)"
      return 0
    fi
    styx_sudo chown "$user:$group" -- "$dir"
    styx_sudo chmod "$STYX_WORKDIR_MODE" -- "$dir"
    styx_result ok "fixed owner/mode of $dir ($user:$group, $STYX_WORKDIR_MODE)"
    return 0
  fi
  [[ ! -e $dir ]] || styx_die "$dir exists and is not a directory"
  styx_sudo mkdir -p -- "$dir"
  styx_sudo chown "$user:$group" -- "$dir"
  styx_sudo chmod "$STYX_WORKDIR_MODE" -- "$dir"
  styx_result ok "created $dir ($user:$group, $STYX_WORKDIR_MODE)"
}

# styx drift: the workdir exists with its owner and mode
check_drift() {
  local dir=$STYX_WORKDIR user=${STYX_WORKDIR_OWNER%%:*} group cur_owner cur_mode
  if [[ $STYX_WORKDIR_OWNER == *:* ]]; then group=${STYX_WORKDIR_OWNER#*:}; else group=$(id -gn "$user" 2>/dev/null || echo "?"); fi
  if [[ ! -d $dir ]]; then
    styx_verdict "" "$dir missing"
    return 0
  fi
  cur_owner=$(stat -c '%U:%G' -- "$dir")
  cur_mode=$(stat -c '%a' -- "$dir")
  if [[ $cur_owner == "$user:$group" && $((8#$cur_mode)) -eq $((8#$STYX_WORKDIR_MODE)) ]]; then
    styx_verdict "$dir ($user:$group, $STYX_WORKDIR_MODE)"
  else
    styx_verdict "" "$dir is $cur_owner $cur_mode, want $user:$group $STYX_WORKDIR_MODE"
  fi
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
