# shellcheck shell=bash
# The shared start of the toolchain installers (install-pulumi.sh, install-k8s.sh): where styx keeps
# its toolchain and its own PULUMI_HOME, the Pulumi and Go settings every build runs with, logging, the
# Go check and the one-build-at-a-time lock. Sourced, with the installer's log name:
#   . "$HERE/lib.sh" toolchain-k8s
#
# Env (defaults):
#   STYX_HOME            ~/.styx
#   STYX_TOOLCHAIN_DIR   $STYX_HOME/toolchain
#   PULUMI_HOME          $STYX_HOME/pulumi (styx's own)
TOOLCHAIN_LOG_NAME="${1:?usage: . toolchain/lib.sh LOG_NAME}"
STYX_HOME="${STYX_HOME:-$HOME/.styx}"
STYX_TOOLCHAIN_DIR="${STYX_TOOLCHAIN_DIR:-$STYX_HOME/toolchain}"
STYX_PULUMI_HOME="$STYX_HOME/pulumi"
export PULUMI_HOME="${PULUMI_HOME:-$STYX_PULUMI_HOME}"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"
# shellcheck disable=SC2034  # used by the installers that source this
BUILD="$STYX_TOOLCHAIN_DIR/build"

log() { printf '[%s] %s %s\n' "$(date -u +%FT%TZ)" "$TOOLCHAIN_LOG_NAME" "$*" >&2; }
die() { log "ERROR $*"; exit 1; }

# need_go WHAT: Go on PATH, or stop saying what needed it
need_go() {
  command -v go >/dev/null 2>&1 || die "no Go toolchain: install Go >= 1.25 (needed to build $1 here from the official source)"
}

# one_build_at_a_time LOCK WHAT: holds $STYX_TOOLCHAIN_DIR/LOCK on fd 9 (`exec 9>&-` lets it go): a
# second run (another checkout, a parallel test job) waits for the first, then finds its results
one_build_at_a_time() {
  command -v flock >/dev/null 2>&1 || return 0
  exec 9>"$STYX_TOOLCHAIN_DIR/$1"
  flock -n 9 || { log "INFO another install of $2 is running: waiting for it"; flock 9; }
}
