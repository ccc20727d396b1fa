# shellcheck shell=bash
# shellcheck disable=SC2034 # STYX_LAST_CHANGED etc. are read by the phase scripts
# styx setup library: sourced (never executed) before every phase script and
# before every custom user script.
#
# How the styx Pulumi program runs a phase on a node (components/runner.py):
# the gate writes this file once per node to /var/lib/styx/lib/<sha>.sh; each
# phase's command text is a fixed wrapper (`timeout`, watchdog) that runs the
# phase's program from stdin: `export STYX_PHASE='gpu' ...`, `. <this file>`,
# then setup_scripts/gpu.sh.
# Phase scripts can also be run standalone (`bash setup_scripts/gpu.sh`): they
# source this file from their own directory when styx_log is not defined yet.
#
# Sourcing this file has no side effects besides strict mode: it sets
# `set -euo pipefail` (documented contract: custom user scripts run under it
# too), defines the variables below if unset and defines functions. Nothing is
# printed, created or installed until a function is called.
#
# Environment (all optional):
#   STYX_PHASE        phase name used in log lines, the log file name and the
#                     result line (default: from $0 `styx-<phase>`, else the
#                     sourcing script's file name)
#   STYX_LOG_DIR      per-phase logs: $STYX_LOG_DIR/<phase>.log (/var/log/styx)
#   STYX_STATE_DIR    state records (/var/lib/styx)
#   STYX_SYSFS_ROOT   sysfs root for GPU detection (/sys; tests fake it)
#   STYX_PROC_ROOT    procfs root (/proc; tests fake it)
#   STYX_OS_RELEASE   os-release file (/etc/os-release)
#   STYX_PROFILE_DIR  login-shell snippets (/etc/profile.d)
#   STYX_APT_DIR      apt configuration root for sources/keyrings (/etc/apt)
#   STYX_RUN_DIR      runtime dir checked for a running systemd (/run)
#   STYX_FILE_OWNER   owner of files written by styx_write_file_if_changed
#                     when the caller names none (root:root)
#   STYX_APT_LISTS_DIR      apt lists (/var/lib/apt/lists)
#   STYX_APT_LISTS_MAX_AGE  seconds before apt lists count as stale (3600)
#   STYX_APT_RECOMMENDS     1 = let apt install Recommends (default 0)
#   STYX_APT_LISTS_URL      optional URL of a tarball of apt lists fetched once
#                           for the cluster (local backend, setup.apt_cache):
#                           taken instead of apt-get update while younger than
#                           STYX_APT_LISTS_MAX_AGE
#   STYX_FIRST_BOOT_WAIT_S  seconds a phase waits for the node's first-boot
#                           work (setup.first_boot on aws and gcp) to end (300)
#
# Functions: styx_log styx_die styx_run styx_try styx_run_capture
#   styx_try_capture styx_sudo styx_as_user styx_have styx_mktemp_var
#   styx_apt_install styx_apt_update styx_apt_download styx_apt_has_candidate
#   styx_pkg_installed styx_first_boot_wait
#   styx_line_in_file styx_write_file_if_changed styx_result styx_os_id
#   styx_os_family styx_os_codename styx_detect_gpus styx_detect_nvswitches
#   styx_systemd_running
#   styx_state_dir styx_log_file styx_sha256 styx_download
#   styx_generation_claim styx_generation_is styx_generation_clear
#   styx_remove_listed styx_verifying styx_verdict
#
# Output contract: stdout carries exactly one line per phase, printed by
# styx_result. Everything else goes to stderr (styx_log) or to the log file
# (styx_run). Values of *_SECRET variables and of STYX_ENV_CONTENT are never
# printed or logged by these helpers.

set -euo pipefail

if [[ -z ${STYX_PHASE:-} ]]; then
  if [[ ${0##*/} == styx-* ]]; then
    STYX_PHASE=${0##*/}
    STYX_PHASE=${STYX_PHASE#styx-}
  elif [[ ${#BASH_SOURCE[@]} -gt 1 ]]; then
    STYX_PHASE=${BASH_SOURCE[${#BASH_SOURCE[@]} - 1]##*/}
    STYX_PHASE=${STYX_PHASE%.sh}
  else
    STYX_PHASE=custom
  fi
fi
: "${STYX_LOG_DIR:=/var/log/styx}"
: "${STYX_STATE_DIR:=/var/lib/styx}"
: "${STYX_SYSFS_ROOT:=/sys}"
: "${STYX_PROC_ROOT:=/proc}"
: "${STYX_OS_RELEASE:=/etc/os-release}"
: "${STYX_PROFILE_DIR:=/etc/profile.d}"
: "${STYX_APT_DIR:=/etc/apt}"
: "${STYX_RUN_DIR:=/run}"
: "${STYX_FILE_OWNER:=root:root}"
: "${STYX_APT_LISTS_DIR:=/var/lib/apt/lists}"
: "${STYX_APT_LISTS_MAX_AGE:=3600}"
: "${STYX_APT_RECOMMENDS:=0}"
: "${STYX_APT_LISTS_URL:=}"
: "${STYX_FIRST_BOOT_WAIT_S:=300}"
STYX_LAST_CHANGED=0
STYX__TMP_PATHS=()
STYX__LOG_READY=

# ---------------------------------------------------------------- logging

# styx_log LEVEL message...  -> stderr: [2026-11-23T01:02:03Z] styx <phase> LEVEL msg
styx_log() {
  local level=$1
  shift
  printf '[%s] styx %s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$STYX_PHASE" "$level" "$*" >&2
}

# styx_die message...  -> logs ERROR and exits 1
styx_die() {
  styx_log ERROR "$*"
  exit 1
}

# styx_result ok|skipped message  -> the phase's single stdout line
# styx_verifying -> true when the phase runs as `verify` (styx drift): the
# script's verify() checks, read-only, that the node still is as its main()
# left it, and prints one result line: ok, or drifted with what differs.
styx_verifying() { [[ ${STYX_ACTION:-create} == verify ]]; }

# styx_verdict what-is-checked problem...  -> `ok: what` when no problem was
# given, else `drifted: problem; problem` (never values of secrets: callers
# pass names and hashes only)
styx_verdict() {
  local what=$1 joined
  shift
  if [[ $# -eq 0 ]]; then
    styx_result ok "$what"
  else
    printf -v joined '%s; ' "$@"
    styx_result drifted "${joined%; }"
  fi
}

styx_result() {
  local status=$1
  shift
  case $status in
    ok | skipped | drifted) ;;
    *) styx_die "styx_result: status must be ok, skipped or drifted, got '$status'" ;;
  esac
  styx_log INFO "result: $status: $*"
  printf 'styx %s: %s: %s\n' "$STYX_PHASE" "$status" "$*"
}

# ---------------------------------------------------------------- privileges

# styx_sudo cmd...  -> runs cmd as root: directly when already root, else via
# non-interactive sudo. Environment is not passed through sudo: use
# `styx_sudo env VAR=value cmd` where needed.
styx_sudo() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n -- "$@"
  else
    styx_die "need root for '$1' but not root and sudo is not installed"
  fi
}

# styx_as_user user cmd...  -> runs cmd as that user (directly when it is the
# current user; runuser as root; else non-interactive sudo -u)
styx_as_user() {
  local user=$1
  shift
  if [[ $user == "$(id -un)" ]]; then
    "$@"
  elif [[ $(id -u) -eq 0 ]] && command -v runuser >/dev/null 2>&1; then
    runuser -u "$user" -- "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n -u "$user" -- "$@"
  else
    styx_die "cannot run '$1' as $user: neither runuser (as root) nor sudo available"
  fi
}

# styx_systemd_running  -> true when the node runs systemd (not a chroot or
# a plain container) and systemctl exists
styx_systemd_running() {
  [[ -d $STYX_RUN_DIR/systemd/system ]] && command -v systemctl >/dev/null 2>&1
}

# styx_have cmd  -> true when cmd is on PATH
styx_have() {
  command -v "$1" >/dev/null 2>&1
}

# ---------------------------------------------------------------- temp files

styx__cleanup() {
  local p
  for p in "${STYX__TMP_PATHS[@]}"; do
    [[ -n $p && -e $p ]] && rm -rf -- "$p" 2>/dev/null
  done
  return 0
}

# styx_mktemp_var NAME [-d]  -> sets NAME to a new temp file (dir with -d)
# that is removed when the shell exits (EXIT trap installed on first use).
styx_mktemp_var() {
  local __name=$1 __path
  shift
  __path=$(mktemp "$@" "${TMPDIR:-/tmp}/styx-${STYX_PHASE}.XXXXXX")
  STYX__TMP_PATHS+=("$__path")
  trap styx__cleanup EXIT
  printf -v "$__name" '%s' "$__path"
}

# ---------------------------------------------------------------- log file

styx_state_dir() {
  if [[ ! -d $STYX_STATE_DIR ]]; then
    mkdir -p -- "$STYX_STATE_DIR" 2>/dev/null || styx_sudo install -d -m 0755 -- "$STYX_STATE_DIR"
  fi
  printf '%s\n' "$STYX_STATE_DIR"
}

# styx_log_file  -> prints the phase's log path, creating dir/file (writable
# by the current user) on first use
styx_log_file() {
  local f="$STYX_LOG_DIR/$STYX_PHASE.log"
  if [[ -z $STYX__LOG_READY ]]; then
    if ! { mkdir -p -- "$STYX_LOG_DIR" && touch -- "$f"; } 2>/dev/null; then
      styx_sudo install -d -m 0755 -- "$STYX_LOG_DIR"
      styx_sudo touch -- "$f"
      styx_sudo chown "$(id -u):$(id -g)" -- "$f"
    fi
    chmod 0640 -- "$f" 2>/dev/null || true
    STYX__LOG_READY=1
  fi
  printf '%s\n' "$f"
}

# command line as logged: URL credentials masked
styx__cmdline() {
  local s
  s=$(printf '%q ' "$@")
  s=${s% }
  printf '%s' "$s" | sed -E 's#(://)[^/@[:space:]]+@#\1***@#g'
}

# How long a logged command took: wall seconds (EPOCHREALTIME) and the CPU seconds of the processes it
# ran (this shell's cutime + cstime in /proc, read without a fork). styx__clock_line RC prints
# `=== done in W s, C CPU s[, exit status RC]` for the log.
STYX__T0="" STYX__C0=0 STYX__TICKS=""
styx__cpu_ticks() {
  local stat fields
  STYX__CPU=0
  read -r stat </proc/$BASHPID/stat 2>/dev/null || return 0
  read -r -a fields <<<"${stat##*) }"
  STYX__CPU=$((${fields[13]:-0} + ${fields[14]:-0}))
}
styx__clock_start() {
  STYX__T0=${EPOCHREALTIME:-}
  styx__cpu_ticks
  STYX__C0=$STYX__CPU
}
styx__clock_line() {
  local rc=$1 t1=${EPOCHREALTIME:-} us cpu
  [[ -n $STYX__TICKS ]] || STYX__TICKS=$(getconf CLK_TCK 2>/dev/null || echo 100)
  styx__cpu_ticks
  cpu=$(((STYX__CPU - STYX__C0) * 100 / STYX__TICKS))
  if [[ -n $STYX__T0 && -n $t1 ]]; then
    us=$(((${t1//[.,]/} - ${STYX__T0//[.,]/}) / 10000))
    printf '=== done in %d.%02d s, %d.%02d CPU s' $((us / 100)) $((us % 100)) $((cpu / 100)) $((cpu % 100))
  else
    printf '=== done, %d.%02d CPU s' $((cpu / 100)) $((cpu % 100))
  fi
  if [[ $rc -eq 0 ]]; then printf '\n'; else printf ', exit status %s\n' "$rc"; fi
}

# styx_try cmd...  -> runs cmd with stdin from /dev/null and stdout+stderr
# appended to the phase log; returns cmd's exit status (never exits).
# STYX_TRY_LABEL=text styx_try ... logs that text instead of the command line
# (for a command whose text is an inline program); the same for the others.
styx_try() {
  local log rc=0
  log=$(styx_log_file)
  printf '\n=== [%s] $ %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${STYX_TRY_LABEL:-$(styx__cmdline "$@")}" >>"$log"
  styx__clock_start
  "$@" </dev/null >>"$log" 2>&1 || rc=$?
  styx__clock_line "$rc" >>"$log"
  return "$rc"
}

# styx_try_capture outfile cmd...  -> like styx_try, and also leaves the
# command's combined output in outfile (for callers that inspect it)
styx_try_capture() {
  local out=$1 log rc=0
  shift
  log=$(styx_log_file)
  printf '\n=== [%s] $ %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${STYX_TRY_LABEL:-$(styx__cmdline "$@")}" >>"$log"
  styx__clock_start
  "$@" </dev/null >"$out" 2>&1 || rc=$?
  cat -- "$out" >>"$log"
  styx__clock_line "$rc" >>"$log"
  return "$rc"
}

# styx_run_capture outfile cmd...  -> styx_try_capture that fails like styx_run
styx_run_capture() {
  local out=$1 rc=0
  shift
  styx_try_capture "$out" "$@" || rc=$?
  [[ $rc -eq 0 ]] || styx__fail "$rc" "$@"
}

styx__fail() {
  local rc=$1 log
  shift
  log=$(styx_log_file)
  styx_log ERROR "command failed (exit $rc): $(styx__cmdline "$@")"
  printf -- '--- last 30 lines of %s ---\n' "$log" >&2
  tail -n 30 -- "$log" >&2 || true
  printf -- '--- end of log ---\n' >&2
  exit "$rc"
}

# styx_run cmd...  -> like styx_try but on failure prints the last 30 lines of
# the phase log to stderr and exits with the command's status.
styx_run() {
  local rc=0
  styx_try "$@" || rc=$?
  [[ $rc -eq 0 ]] || styx__fail "$rc" "$@"
}

# ---------------------------------------------------------------- files

# styx_line_in_file line file [mode]  -> appends line unless present verbatim.
# Sets STYX_LAST_CHANGED=1 when the file was modified, 0 otherwise.
styx_line_in_file() {
  local line=$1 file=$2 mode=${3:-0644}
  STYX_LAST_CHANGED=0
  if styx_sudo test -f "$file" && styx_sudo grep -qxF -- "$line" "$file"; then
    styx_log INFO "line already present in $file"
    return 0
  fi
  if ! styx_sudo test -e "$file"; then
    styx_sudo install -d -m 0755 -- "$(dirname -- "$file")"
    styx_sudo install -m "$mode" /dev/null "$file"
  fi
  # add a newline first when the file does not end with one
  if styx_sudo test -s "$file" && [[ -n $(styx_sudo tail -c 1 -- "$file") ]]; then
    printf '\n' | styx_sudo tee -a -- "$file" >/dev/null
  fi
  printf '%s\n' "$line" | styx_sudo tee -a -- "$file" >/dev/null
  STYX_LAST_CHANGED=1
  styx_log INFO "appended a line to $file"
}

# styx_write_file_if_changed path mode [owner[:group]] < content
# Writes stdin to path atomically unless content, mode and owner are already
# identical. Logs "unchanged: path" (and returns 0) when nothing was to do.
# Sets STYX_LAST_CHANGED=1 when the file was written/fixed, else 0.
# The content itself is never logged.
styx_write_file_if_changed() {
  local path=$1 mode=$2 owner=${3:-$STYX_FILE_OWNER} tmp cur_mode cur_owner
  STYX_LAST_CHANGED=0
  [[ $owner == *:* ]] || owner="$owner:$(id -gn "$owner" 2>/dev/null || echo "$owner")"
  styx_mktemp_var tmp
  chmod 0600 -- "$tmp"
  cat >"$tmp"
  if styx_sudo test -f "$path" && styx_sudo cmp -s -- "$tmp" "$path"; then
    cur_mode=$(styx_sudo stat -c '%a' -- "$path")
    cur_owner=$(styx_sudo stat -c '%U:%G' -- "$path")
    if [[ $((8#$cur_mode)) -eq $((8#$mode)) && $cur_owner == "$owner" ]]; then
      styx_log INFO "unchanged: $path"
      return 0
    fi
    styx_sudo chmod "$mode" -- "$path"
    styx_sudo chown "$owner" -- "$path"
    STYX_LAST_CHANGED=1
    styx_log INFO "fixed mode/owner of $path ($mode $owner)"
    return 0
  fi
  styx_sudo install -d -m 0755 -- "$(dirname -- "$path")"
  styx_sudo install -m "$mode" -o "${owner%%:*}" -g "${owner#*:}" -- "$tmp" "$path.styx-new"
  styx_sudo mv -f -- "$path.styx-new" "$path"
  STYX_LAST_CHANGED=1
  styx_log INFO "wrote $path"
}

# ---------------------------------------------------------------- generations
# A phase with an undo claims the node for its generation (the hash of its
# script and parameters) when it starts; its undo runs only while the node
# still records that generation, so a replaced resource's undo never removes
# what its replacement wrote.

# styx_generation_claim phase gen
styx_generation_claim() {
  styx_state_dir >/dev/null
  styx_sudo install -d -m 0755 -- "$STYX_STATE_DIR/generations"
  printf '%s\n' "$2" | styx_sudo tee -- "$STYX_STATE_DIR/generations/$1" >/dev/null
}

# styx_generation_is phase gen  -> true when gen is the node's generation of
# phase, or when none is recorded (a node set up before generations existed)
styx_generation_is() {
  local f="$STYX_STATE_DIR/generations/$1"
  styx_sudo test -f "$f" || return 0
  [[ $(styx_sudo cat -- "$f") == "$2" ]]
}

# styx_generation_clear phase
styx_generation_clear() {
  styx_sudo rm -f -- "$STYX_STATE_DIR/generations/$1"
}

# styx_remove_listed file  -> removes the absolute paths listed in file (one
# a line): files and links, then folders only when left empty (deepest
# first); paths not at least two levels deep or with '..' are skipped. Prints
# how many went. One root shell and batched rm/rmdir: lists of 10,000s.
# shellcheck disable=SC2016 # the script runs in the root shell
styx_remove_listed() {
  styx_sudo bash -c '
    mapfile -t ps
    files=() dirs=()
    for p in "${ps[@]}"; do
      [[ -n $p && $p == /*/* && $p != *"/.."* ]] || continue
      if [[ -L $p || ( -e $p && ! -d $p ) ]]; then files+=("$p"); elif [[ -d $p ]]; then dirs+=("$p"); fi
    done
    if ((${#files[@]})); then printf "%s\0" "${files[@]}" | xargs -0 rm -f --; fi
    n=${#files[@]}
    if ((${#dirs[@]})); then
      printf "%s\n" "${dirs[@]}" | LC_ALL=C sort -r | tr "\n" "\0" |
        xargs -0 rmdir --ignore-fail-on-non-empty -- 2>/dev/null || true
      for d in "${dirs[@]}"; do [[ -e $d ]] || n=$((n + 1)); done
    fi
    echo "$n"' <"$1"
}

# styx_sha256 file  -> prints the hex digest
styx_sha256() {
  local out
  out=$(styx_sudo sha256sum -- "$1")
  printf '%s\n' "${out%% *}"
}

# styx_download url dest [sha256]  -> curl (or wget) with retries; verifies
# the sha256 when given (mismatch: removes dest and dies)
styx_download() {
  local url=$1 dest=$2 want=${3:-} got
  if styx_have curl; then
    styx_run curl -fsSL --retry 5 --retry-delay 2 --connect-timeout 20 -o "$dest" "$url"
  elif styx_have wget; then
    styx_run wget -q --tries=5 -O "$dest" "$url"
  else
    styx_die "neither curl nor wget is installed (needed to download $(styx__cmdline "$url"))"
  fi
  if [[ -n $want ]]; then
    got=$(styx_sha256 "$dest")
    if [[ ${got,,} != "${want,,}" ]]; then
      rm -f -- "$dest"
      styx_die "sha256 mismatch for $(styx__cmdline "$url"): expected $want, got $got"
    fi
    styx_log INFO "sha256 verified: $got"
  fi
}

# ---------------------------------------------------------------- OS

styx__os_field() {
  local key=$1 line
  [[ -r $STYX_OS_RELEASE ]] || return 0
  while IFS= read -r line; do
    if [[ $line == "$key="* ]]; then
      line=${line#*=}
      line=${line#\"}
      line=${line%\"}
      line=${line#\'}
      line=${line%\'}
      printf '%s' "$line"
      return 0
    fi
  done <"$STYX_OS_RELEASE"
}

# styx_os_id  -> e.g. "ubuntu 22.04", "debian 12"
styx_os_id() {
  local id ver
  id=$(styx__os_field ID)
  ver=$(styx__os_field VERSION_ID)
  printf '%s %s\n' "${id:-unknown}" "${ver:-unknown}"
}

# styx_os_codename -> e.g. "jammy", "bookworm"
styx_os_codename() {
  local c
  c=$(styx__os_field VERSION_CODENAME)
  [[ -n $c ]] || c=$(styx__os_field UBUNTU_CODENAME)
  printf '%s\n' "$c"
}

# styx_os_family  -> "debian" for Debian/Ubuntu and derivatives, else the ID
styx_os_family() {
  local id like
  id=$(styx__os_field ID)
  like=$(styx__os_field ID_LIKE)
  case " $id $like " in
    *" debian "* | *" ubuntu "*) echo debian ;;
    *) echo "${id:-unknown}" ;;
  esac
}

# ---------------------------------------------------------------- apt

# styx_pkg_installed name[=version]  -> true if dpkg has it installed (at that
# version prefix when given)
styx_pkg_installed() {
  local spec=$1 name ver out
  name=${spec%%=*}
  ver=
  [[ $spec == *=* ]] && ver=${spec#*=}
  out=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$name" 2>/dev/null) || return 1
  [[ $out == ii* ]] || return 1
  if [[ -n $ver ]]; then
    out=${out#*|}
    # exact, or a prefix ending at a version separator (580.95 ~ 580.95.05-1)
    [[ $out == "$ver" || $out == "$ver"[.~+:-]* ]] || return 1
  fi
  return 0
}

# styx_apt_has_candidate name  -> true if apt knows an installable version
styx_apt_has_candidate() {
  local out
  out=$(apt-cache policy "$1" 2>/dev/null) || return 1
  [[ $out == *"Candidate:"* && $out != *"Candidate: (none)"* ]]
}

styx__apt_env() {
  styx_sudo env DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a NEEDRESTART_SUSPEND=1 "$@"
}

styx__apt_lists_fresh() {
  local stamp newest
  stamp="$STYX_STATE_DIR/apt-update.stamp"
  newest=$(find "$stamp" "$STYX_APT_LISTS_DIR" -maxdepth 1 -type f \( -name '*Packages*' -o -name apt-update.stamp \) \
    -mmin "-$((STYX_APT_LISTS_MAX_AGE / 60))" 2>/dev/null | head -n 1 || true)
  [[ -n $newest ]]
}

# styx__apt_lists_from_cache  -> true when STYX_APT_LISTS_URL (a tarball of apt
# lists fetched once for the cluster: the local backend's setup.apt_cache) was
# taken: its `styx-fetched` stamp younger than STYX_APT_LISTS_MAX_AGE, the
# lists unpacked into STYX_APT_LISTS_DIR and the update stamp dated as that
# stamp (so the lists' age stays bounded). Gone, stale or broken: a WARN, and
# the caller runs apt-get update itself.
styx__apt_lists_from_cache() {
  local tmp
  [[ -n $STYX_APT_LISTS_URL ]] || return 1
  styx_mktemp_var tmp -d
  if ! styx_try curl -fsS --connect-timeout 5 --max-time 120 -o "$tmp/lists.tar" "$STYX_APT_LISTS_URL" ||
    ! styx_try tar -xf "$tmp/lists.tar" -C "$tmp" ./styx-fetched; then
    styx_log WARN "apt lists cache $STYX_APT_LISTS_URL unavailable (see the phase log): apt-get update"
    return 1
  fi
  if [[ -z $(find "$tmp/styx-fetched" -newermt "-$STYX_APT_LISTS_MAX_AGE seconds" 2>/dev/null) ]]; then
    styx_log WARN "apt lists cache $STYX_APT_LISTS_URL is older than ${STYX_APT_LISTS_MAX_AGE}s: apt-get update"
    return 1
  fi
  styx_sudo install -d -m 0755 -- "$STYX_APT_LISTS_DIR"
  styx_try styx_sudo tar -xf "$tmp/lists.tar" -C "$STYX_APT_LISTS_DIR" --exclude=./styx-fetched \
    --no-overwrite-dir || {
    styx_log WARN "apt lists cache $STYX_APT_LISTS_URL could not be unpacked: apt-get update"
    return 1
  }
  styx_state_dir >/dev/null
  styx_sudo touch -r "$tmp/styx-fetched" -- "$STYX_STATE_DIR/apt-update.stamp"
  styx_log INFO "apt lists from the cluster's cache $STYX_APT_LISTS_URL (fetched $(date -u -r "$tmp/styx-fetched" +%Y-%m-%dT%H:%M:%SZ))"
}

# ---------------------------------------------------------------- first boot

# styx_first_boot_wait JOB  -> returns once the node's first-boot work JOB is
# not running. On aws and gcp (setup.first_boot: auto) the user data fills
# caches the phases read (components/first_boot.py, setup_scripts/first_boot.sh):
# cloud-init writes STYX_STATE_DIR/first-boot/JOB.pending before sshd starts;
# the work holds JOB.lock (flock) while it runs, with JOB.started beside it,
# and removes JOB.pending when it ends. A phase that finds JOB.pending waits
# for the lock (at most STYX_FIRST_BOOT_WAIT_S), then goes on: finding the work
# done, or doing it itself. A mark left by work that died (started, lock free)
# is not waited for. The first-boot work itself (STYX_FIRST_BOOT_JOB) never waits.
styx_first_boot_wait() {
  local job=$1 dir="$STYX_STATE_DIR/first-boot" t0 left
  [[ -z ${STYX_FIRST_BOOT_JOB:-} && -e $dir/$job.pending ]] || return 0
  t0=$(date +%s)
  while [[ -e $dir/$job.pending ]]; do
    left=$((t0 + STYX_FIRST_BOOT_WAIT_S - $(date +%s)))
    if [[ $left -le 0 ]]; then
      styx_log WARN "first-boot $job still running after ${STYX_FIRST_BOOT_WAIT_S}s (STYX_FIRST_BOOT_WAIT_S): going on"
      return 0
    fi
    # started (its mark not older than this boot's pending one: a node made from an image may carry an old
    # one): wait on its lock (free at once when the work died); not yet: poll its mark
    if [[ -e $dir/$job.started && ! $dir/$job.pending -nt $dir/$job.started ]] && styx_have flock &&
      flock -s -w "$left" "$dir/$job.lock" true 2>/dev/null; then
      break
    fi
    sleep 1
  done
  if [[ -e $dir/$job.pending ]]; then
    styx_log WARN "first-boot $job did not finish (see /var/log/styx/first-boot.log): going on"
  else
    styx_log INFO "first-boot $job done (waited $(($(date +%s) - t0))s)"
  fi
}

# styx_apt_update  -> apt-get update (retried), records a freshness stamp
styx_apt_update() {
  local i
  styx_first_boot_wait apt
  styx_have apt-get || styx_die "apt-get not found: $(styx_os_id) is not supported (Debian/Ubuntu only)"
  styx_log INFO "apt-get update"
  for i in 1 2 3; do
    if styx_try styx__apt_env apt-get -q -o DPkg::Lock::Timeout=300 update; then
      styx_state_dir >/dev/null
      styx_sudo touch -- "$STYX_STATE_DIR/apt-update.stamp"
      return 0
    fi
    styx_log WARN "apt-get update failed (attempt $i/3), retrying"
    sleep $((i * 5))
  done
  styx_run styx__apt_env apt-get -q -o DPkg::Lock::Timeout=300 update
}

# styx_apt_install pkg[=version]...  -> installs the missing ones only.
# apt-get update runs first only when lists are older than
# STYX_APT_LISTS_MAX_AGE or a missing package has no candidate. Retries when
# the dpkg lock is held. Sets STYX_APT_INSTALLED to the installed specs
# (empty when all were present) and STYX_LAST_CHANGED accordingly.
styx_apt_install() {
  local p missing=() i rc log tail_txt recommends=--no-install-recommends need_update=0
  STYX_APT_INSTALLED=
  STYX_LAST_CHANGED=0
  for p in "$@"; do
    [[ -n $p ]] || continue
    styx_pkg_installed "$p" || missing+=("$p")
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    styx_log INFO "already installed: $*"
    return 0
  fi
  styx_have apt-get || styx_die "apt-get not found: cannot install ${missing[*]} on $(styx_os_id)"
  styx_first_boot_wait apt
  if ! styx__apt_lists_fresh && ! styx__apt_lists_from_cache; then
    need_update=1
  else
    for p in "${missing[@]}"; do
      styx_apt_has_candidate "${p%%=*}" || need_update=1
    done
  fi
  [[ $need_update -eq 0 ]] || styx_apt_update
  [[ $STYX_APT_RECOMMENDS == 1 ]] && recommends=--install-recommends
  styx_log INFO "apt-get install ${missing[*]}"
  for i in 1 2 3 4 5; do
    rc=0
    styx_try styx__apt_env apt-get install -y -q "$recommends" --allow-downgrades \
      -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${missing[@]}" || rc=$?
    [[ $rc -ne 0 ]] || break
    log=$(styx_log_file)
    tail_txt=$(tail -n 20 -- "$log")
    tail_txt=${tail_txt,,}
    if [[ $tail_txt == *"could not get lock"* || $tail_txt == *"unable to acquire the dpkg"* || $tail_txt == *"dpkg was interrupted"* ]]; then
      styx_log WARN "dpkg busy/interrupted (attempt $i/5), retrying"
      if [[ $tail_txt == *"dpkg was interrupted"* ]]; then
        styx_try styx__apt_env dpkg --configure -a || true
      fi
      sleep $((i * 10))
      continue
    fi
    break
  done
  if [[ $rc -ne 0 ]]; then
    # re-run once through styx_run for the failure report (log tail, exit)
    styx_run styx__apt_env apt-get install -y -q "$recommends" --allow-downgrades \
      -o DPkg::Lock::Timeout=300 \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${missing[@]}"
  fi
  STYX_APT_INSTALLED="${missing[*]}"
  STYX_LAST_CHANGED=1
  styx_log INFO "installed: $STYX_APT_INSTALLED"
}

# styx_apt_download pkg[=version]...  -> fresh lists (apt-get update unless
# fresh) and the missing packages' files in apt's cache, nothing installed
# (the first-boot work: styx_apt_install then finds both). Sets
# STYX_APT_INSTALLED to the specs downloaded; a failed download is a WARN.
styx_apt_download() {
  local p missing=() recommends=--no-install-recommends
  STYX_APT_INSTALLED=
  styx_have apt-get || styx_die "apt-get not found: $(styx_os_id) is not supported (Debian/Ubuntu only)"
  styx__apt_lists_fresh || styx_apt_update
  for p in "$@"; do
    [[ -n $p ]] || continue
    styx_pkg_installed "$p" || missing+=("$p")
  done
  [[ ${#missing[@]} -gt 0 ]] || return 0
  [[ $STYX_APT_RECOMMENDS == 1 ]] && recommends=--install-recommends
  if styx_try styx__apt_env apt-get install -y -q --download-only "$recommends" --allow-downgrades \
    -o DPkg::Lock::Timeout=300 "${missing[@]}"; then
    STYX_APT_INSTALLED="${missing[*]}"
  else
    styx_log WARN "apt-get install --download-only failed (see the phase log): the install downloads them"
  fi
}

# ---------------------------------------------------------------- GPUs

# count PCI functions of vendor 0x10de whose class matches the given prefixes
styx__sysfs_count() {
  local d vendor class n=0 pfx
  for d in "$STYX_SYSFS_ROOT"/bus/pci/devices/*; do
    [[ -r $d/vendor && -r $d/class ]] || continue
    read -r vendor <"$d/vendor" || continue
    [[ ${vendor,,} == 0x10de ]] || continue
    read -r class <"$d/class" || continue
    for pfx in "$@"; do
      if [[ ${class,,} == "$pfx"* ]]; then
        n=$((n + 1))
        break
      fi
    done
  done
  printf '%s\n' "$n"
}

# styx_detect_gpus  -> prints the number of NVIDIA GPUs (0 when none).
# Order: sysfs (vendor 0x10de, class 0x0302xx 3D controller / 0x0300xx VGA);
# then lspci if installed; then nvidia-smi.
styx_detect_gpus() {
  local n
  n=$(styx__sysfs_count 0x0302 0x0300)
  if [[ $n -eq 0 ]] && styx_have lspci; then
    n=$(lspci -n 2>/dev/null | grep -ciE ' 030[02]: 10de:' || true)
  fi
  if [[ $n -eq 0 ]] && styx_have nvidia-smi; then
    n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  fi
  printf '%s\n' "${n:-0}"
}

# styx_detect_nvswitches  -> number of NVIDIA bridge functions (NVSwitch,
# class 0x0680xx) seen in sysfs; >0 means fabric manager is needed
styx_detect_nvswitches() {
  styx__sysfs_count 0x0680
}
