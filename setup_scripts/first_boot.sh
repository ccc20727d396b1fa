#!/usr/bin/env bash
# styx first boot -- on aws and gcp (setup.first_boot: auto), cloud-init runs this once per instance (runcmd) to
# fill the caches the SSH phases read while the engine still waits for SSH (components/first_boot.py renders it).
#
# Each job is a phase's own program (its script and parameters, the styx library beside it), written by cloud-init
# (write_files) to STYX_FIRST_BOOT_DIR/JOB.sh with STYX_FIRST_BOOT_JOB=JOB: `apt` (system_packages.sh with
# STYX_APT_DOWNLOAD_ONLY=1: apt-get update and a download of setup.packages) and, on the head, `wheel_cache`
# (wheel_cache.sh with STYX_WC_SERVE=0: the same fill, key, folder and sha256 checks as the phase). The jobs run in
# parallel, each holding JOB.lock (flock) with JOB.started beside it, and remove JOB.pending (written by cloud-init
# before sshd starts) when they end; a phase that finds JOB.pending waits for the lock (lib.sh
# styx_first_boot_wait), then finds the work done. A job that fails is logged and changes nothing else: the phases
# then do the work themselves. Only caches are filled: nothing is installed or started.
#
# Usage: first_boot.sh JOB... (the styx library beside it)
# Environment:
#   STYX_FIRST_BOOT_DIR      the jobs' programs and marks (default /var/lib/styx/first-boot)
#   STYX_FIRST_BOOT_LOG      where everything goes (default /var/log/styx/first-boot.log)
#   STYX_FIRST_BOOT_LIMIT_S  seconds a job may run (default 1200)
: "${STYX_PHASE:=first-boot}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_FIRST_BOOT_DIR=${STYX_FIRST_BOOT_DIR:-/var/lib/styx/first-boot}
STYX_FIRST_BOOT_LOG=${STYX_FIRST_BOOT_LOG:-/var/log/styx/first-boot.log}
STYX_FIRST_BOOT_LIMIT_S=${STYX_FIRST_BOOT_LIMIT_S:-1200}

# run_job JOB: its program under its lock; the mark removed whatever the outcome
run_job() {
  local job=$1 d=$STYX_FIRST_BOOT_DIR t0 rc=0
  [[ $job =~ ^[a-z_]+$ && -r $d/$job.sh ]] || { styx_log WARN "$job: no program $d/$job.sh"; rm -f -- "$d/$job.pending"; return 0; }
  exec 9>"$d/$job.lock"
  flock 9
  touch -- "$d/$job.started"
  t0=$(date +%s)
  styx_log INFO "$job: start"
  STYX_FIRST_BOOT_JOB=$job STYX_ACTION=create timeout -k 15 "$STYX_FIRST_BOOT_LIMIT_S" bash "$d/$job.sh" || rc=$?
  rm -f -- "$d/$job.pending"
  styx_log INFO "$job: done in $(($(date +%s) - t0))s (exit status $rc)"
  exec 9>&-
}

main() {
  local job pids=()
  [[ $STYX_FIRST_BOOT_LIMIT_S =~ ^[1-9][0-9]*$ ]] || { echo "STYX_FIRST_BOOT_LIMIT_S must be seconds" >&2; exit 2; }
  mkdir -p -- "$STYX_FIRST_BOOT_DIR" "$(dirname -- "$STYX_FIRST_BOOT_LOG")"
  exec >>"$STYX_FIRST_BOOT_LOG" 2>&1
  styx_log INFO "jobs: $*"
  for job in "$@"; do
    run_job "$job" &
    pids+=("$!")
  done
  for job in "${pids[@]}"; do
    wait "$job" || true
  done
  styx_log INFO "all done"
}

main "$@"
