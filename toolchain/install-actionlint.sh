#!/usr/bin/env bash
# Builds actionlint (the GitHub Actions workflow linter, github.com/rhysd/actionlint) from the Go
# module proxy at a pinned version, cached under $STYX_TOOLCHAIN_DIR/actionlint-v<version>/ (a
# second run is instant). Prints the binary's path on stdout. tests/ci/test_workflow.py runs it on
# .github/workflows/; CI on a fresh machine builds it the same way (needs Go >= 1.24).
#
# Env (defaults):
#   STYX_HOME                 ~/.styx
#   STYX_TOOLCHAIN_DIR        $STYX_HOME/toolchain
#   STYX_ACTIONLINT_VERSION   1.7.12
set -euo pipefail

STYX_HOME="${STYX_HOME:-$HOME/.styx}"
STYX_TOOLCHAIN_DIR="${STYX_TOOLCHAIN_DIR:-$STYX_HOME/toolchain}"
VERSION="${STYX_ACTIONLINT_VERSION:-1.7.12}"
DIR="$STYX_TOOLCHAIN_DIR/actionlint-v$VERSION"

log() { printf '[%s] toolchain %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

main() {
  if [ -x "$DIR/actionlint" ] && "$DIR/actionlint" -version >/dev/null 2>&1; then
    log "INFO actionlint v$VERSION already built, skipping"
    echo "$DIR/actionlint"
    return 0
  fi
  command -v go >/dev/null 2>&1 || { log "ERROR go not found: needed to build actionlint v$VERSION"; exit 1; }
  log "INFO building actionlint v$VERSION from the Go module proxy"
  mkdir -p "$DIR"
  local tmp; tmp="$(mktemp -d "$DIR/.build.XXXXXX")"
  GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -trimpath" GOTOOLCHAIN="${GOTOOLCHAIN:-local}" \
    go install -ldflags "-s -w" "github.com/rhysd/actionlint/cmd/actionlint@v$VERSION"
  mv -f "$tmp/actionlint" "$DIR/actionlint"
  rmdir "$tmp"
  "$DIR/actionlint" -version >/dev/null
  log "INFO actionlint v$VERSION built: $DIR/actionlint"
  echo "$DIR/actionlint"
}

main "$@"
