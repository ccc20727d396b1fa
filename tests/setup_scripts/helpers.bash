# shellcheck shell=bash
# shellcheck disable=SC2154 # $status, $output, $stderr are set by bats' run
# Shared setup for the setup_scripts bats tests.
#
# Phases run the way the styx program runs them on a node:
#   bash -c '<lib.sh>\n<phase.sh>' styx-<phase>
# with PATH limited to $STUB_BIN (command stubs written by the test) and
# $SYS_BIN (symlinks to a fixed list of basic host tools), so a missing stub
# means "command not installed" regardless of what the host has. Every stub
# appends "<name> <args>" to $STUB_LOG. All styx paths point into the test's
# temp dir (logs, state, sysfs, procfs, profile.d, apt dir, os-release).

REPO_ROOT="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
SCRIPTS="$REPO_ROOT/setup_scripts"

SYS_TOOLS=(bash sh cat grep sed awk mkdir touch chmod chown mv cp rm ln id tail head
  sort comm wc tr cut dirname basename stat env sleep readlink install mktemp cmp
  date find tar gzip base64 sha256sum uname tee ls rmdir true false xargs printf
  runuser getent timeout setsid flock)

common_setup() {
  bats_require_minimum_version 1.5.0
  T="$BATS_TEST_TMPDIR"
  STUB_BIN="$T/stubbin"
  SYS_BIN="$T/sysbin"
  mkdir -p "$STUB_BIN" "$SYS_BIN" "$T/sys/bus/pci/devices" "$T/proc" "$T/log" \
    "$T/state" "$T/profile.d" "$T/apt/sources.list.d" "$T/apt-lists" "$T/run" "$T/dpkg"
  local t p
  for t in "${SYS_TOOLS[@]}"; do
    p=$(PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin type -P "$t") || continue
    [[ $p == /* ]] && ln -sf "$p" "$SYS_BIN/$t"
  done
  export STUB_LOG="$T/stub.log"
  : >"$STUB_LOG"
  : >"$T/dpkg/installed"
  : >"$T/dpkg/available"
  export T STUB_BIN SYS_BIN
  export STYX_LOG_DIR="$T/log" STYX_STATE_DIR="$T/state" STYX_SYSFS_ROOT="$T/sys"
  export STYX_PROC_ROOT="$T/proc" STYX_PROFILE_DIR="$T/profile.d" STYX_APT_DIR="$T/apt"
  export STYX_COMMAND_DIR="$T/cmdbin"
  export STYX_RUN_DIR="$T/run" STYX_OS_RELEASE="$T/os-release" STYX_APT_LISTS_DIR="$T/apt-lists"
  export TMPDIR="$T"
  # files the phases write are owned by whoever runs the tests (root or not)
  STYX_FILE_OWNER="$(id -un):$(id -gn)"
  export STYX_FILE_OWNER
  # non-root test runs: "sudo" just runs the command as the current user
  stub sudo '
while [ $# -gt 0 ]; do case $1 in -n) shift ;; -u) shift 2 ;; --) shift; break ;; *) break ;; esac; done
exec "$@"'
  set_os debian 12 bookworm
  unset STYX_PHASE
}

set_os() { # id version codename
  printf 'ID=%s\nVERSION_ID="%s"\nVERSION_CODENAME=%s\n' "$1" "$2" "$3" >"$STYX_OS_RELEASE"
}

# stub NAME [BODY]: executable that logs its arguments, then runs BODY; its
# last argv is also left NUL-separated in $T/argv.NAME (argument boundaries)
stub() {
  local name=$1 body=${2:-}
  {
    printf '#!/bin/bash\n'
    printf 'printf "%%s\\n" "%s $*" >>"$STUB_LOG"\n' "$name"
    printf 'printf "%%s\\0" "$@" >"$T/argv.%s"\n' "$name"
    printf '%s\n' "$body"
  } >"$STUB_BIN/$name"
  chmod +x "$STUB_BIN/$name"
}

# run_phase NAME: runs setup_scripts/NAME.sh like the styx program does (the
# files of $PHASE_HELPERS, the phase row's `helpers`, before it);
# sets $status, $output (stdout only) and $stderr
run_phase() {
  local name=$1 h
  local body
  body="$(cat "$SCRIPTS/lib.sh")"$'\n'
  for h in ${PHASE_HELPERS:-}; do body+="$(cat "$SCRIPTS/$h")"$'\n'; done
  body+="$(cat "$SCRIPTS/$name.sh")"
  run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" STYX_PHASE="$name" bash -c "$body" "styx-$name"
}

# one_line: stdout is exactly one line
assert_one_line() {
  local n
  n=$(printf '%s' "$output" | grep -c '' || true)
  if [[ $n -ne 1 ]]; then
    printf 'expected exactly one stdout line, got %s:\n%s\n--- stderr:\n%s\n' "$n" "$output" "$stderr" >&2
    return 1
  fi
}

assert_status() { # expected
  if [[ $status -ne $1 ]]; then
    printf 'expected status %s, got %s\n--- stdout:\n%s\n--- stderr:\n%s\n' "$1" "$status" "$output" "$stderr" >&2
    return 1
  fi
}

assert_output_matches() { # ERE
  if ! [[ $output =~ $1 ]]; then
    printf 'stdout does not match /%s/:\n%s\n--- stderr:\n%s\n' "$1" "$output" "$stderr" >&2
    return 1
  fi
}

assert_stderr_contains() {
  if [[ $stderr != *"$1"* ]]; then
    printf 'stderr does not contain %q:\n%s\n' "$1" "$stderr" >&2
    return 1
  fi
}

assert_log_has() { # ERE matched against the stub log
  if ! grep -qE -- "$1" "$STUB_LOG"; then
    printf 'stub log has no line matching /%s/:\n' "$1" >&2
    cat "$STUB_LOG" >&2
    return 1
  fi
}

assert_log_lacks() {
  if grep -qE -- "$1" "$STUB_LOG"; then
    printf 'stub log unexpectedly matches /%s/:\n' "$1" >&2
    cat "$STUB_LOG" >&2
    return 1
  fi
}

# ---------------------------------------------------------------- apt/dpkg

# packages "installed" in the fake dpkg db: name version
mark_installed() { printf '%s %s\n' "$1" "${2:-1.0}" >>"$T/dpkg/installed"; }
# packages apt "knows": name version
mark_available() { printf '%s %s\n' "$1" "${2:-1.0}" >>"$T/dpkg/available"; }

# Fake apt-get/dpkg-query/apt-cache/dpkg backed by $T/dpkg. `apt-get install`
# marks packages installed and runs $T/hooks/<pkg> when present; a file
# $T/apt-fail makes `apt-get install` fail with its content on stderr.
stub_apt() {
  mkdir -p "$T/hooks"
  stub apt-get '
set -e
cmd=""
pkgs=()
dl=0
for a in "$@"; do
  case $a in
    -o) ;;
    --download-only) dl=1 ;;
    -*) ;;
    update|install) cmd=$a ;;
    *=*/*|DPkg::*|Dpkg::*) ;;
    *) [ -n "$cmd" ] && pkgs+=("$a") ;;
  esac
done
case $cmd in
  update) echo "Hit:1 fake"; exit 0 ;;
  install)
    if [ -f "$T/apt-fail" ]; then cat "$T/apt-fail" >&2; exit 100; fi
    if [ "$dl" = 1 ]; then printf "Get: %s (download only)\n" "${pkgs[@]}"; exit 0; fi
    for p in "${pkgs[@]}"; do
      name=${p%%=*}; ver=1.0; [[ $p == *=* ]] && ver=${p#*=}
      grep -q "^$name " "$T/dpkg/available" || { echo "E: Unable to locate package $name" >&2; exit 100; }
      sed -i "/^$name /d" "$T/dpkg/installed"
      echo "$name $ver" >> "$T/dpkg/installed"
      echo "Setting up $name ($ver) ..."
      if [ -x "$T/hooks/$name" ]; then "$T/hooks/$name"; fi
    done ;;
esac'
  stub dpkg-query '
name=${!#}
line=$(grep "^$name " "$T/dpkg/installed" | tail -n 1)
[ -n "$line" ] || { echo "dpkg-query: no packages found matching $name" >&2; exit 1; }
printf "ii |%s" "${line#* }"'
  stub apt-cache '
sub=$1; name=$2
line=$(grep "^$name " "$T/dpkg/available" | tail -n 1)
case $sub in
  policy)
    [ -n "$line" ] || exit 0
    printf "%s:\n  Installed: (none)\n  Candidate: %s\n" "$name" "${line#* }" ;;
  madison)
    grep "^$name " "$T/dpkg/available" | while read -r n v; do printf " %s | %s | fake main\n" "$n" "$v"; done ;;
esac'
  stub dpkg '
case $1 in
  --print-architecture) echo amd64 ;;
  -i) deb=$2; name=$(basename "$deb"); name=${name%%_*}; echo "$name 1.0" >> "$T/dpkg/installed" ;;
esac'
}

# ---------------------------------------------------------------- GPUs

# add_pci_dev BDF VENDOR CLASS
add_pci_dev() {
  local d="$STYX_SYSFS_ROOT/bus/pci/devices/$1"
  mkdir -p "$d"
  echo "$2" >"$d/vendor"
  echo "$3" >"$d/class"
}

add_gpus() { # count [class]
  local i
  for ((i = 0; i < $1; i++)); do
    add_pci_dev "0000:$(printf '%02x' $((0x18 + i))):00.0" 0x10de "${2:-0x030200}"
  done
}

# loaded kernel module version (fake /proc/driver/nvidia/version)
set_loaded_driver() {
  mkdir -p "$STYX_PROC_ROOT/driver/nvidia"
  printf 'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  %s  Release Build  (dvs-builder@U16-I3-B03-4-3)  Tue Sep 23 2025\nGCC version:  gcc version 12.2.0 (Debian 12.2.0-14)\n' "$1" \
    >"$STYX_PROC_ROOT/driver/nvidia/version"
}

# nvidia-smi stub reading $T/nv: driver (userspace version), count, name
stub_nvidia_smi() {
  mkdir -p "$T/nv"
  echo "${1:-580.95.05}" >"$T/nv/driver"
  echo "${2:-8}" >"$T/nv/count"
  echo "${3:-NVIDIA H100 80GB HBM3}" >"$T/nv/name"
  stub nvidia-smi '
nv=$T/nv
if [ -f "$nv/mismatch" ]; then echo "Failed to initialize NVML: Driver/library version mismatch"; exit 18; fi
[ -f "$nv/driver" ] || { echo "NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver." >&2; exit 9; }
d=$(cat "$nv/driver"); n=$(cat "$nv/count"); name=$(cat "$nv/name")
case "$*" in
  *--query-gpu=driver_version*) for ((i=0;i<n;i++)); do echo "$d"; done ;;
  *--query-gpu=name,driver_version,memory.total,compute_cap*) for ((i=0;i<n;i++)); do echo "$name, $d, 81559 MiB, 9.0"; done ;;
  -L) for ((i=0;i<n;i++)); do echo "GPU $i: $name (UUID: GPU-$i)"; done ;;
  *) echo "| NVIDIA-SMI $d    Driver Version: $d    CUDA Version: 13.0 |" ;;
esac'
}
