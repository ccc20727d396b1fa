#!/usr/bin/env bash
# One-time (idempotent) setup of a fresh machine for styx: host packages for the local backend,
# the Python virtualenv (.venv), and the Pulumi engine pieces (toolchain/install-pulumi.sh).
# A second run skips what is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"

log() { printf '[%s] setup %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }

main() {
  cd "$ROOT"
  if [ "$(id -u)" = 0 ]; then
    bash sandbox/host-deps.sh
  else
    log "WARN not root: skipping host packages (the local backend needs root anyway)"
  fi
  if [ ! -x .venv/bin/python ]; then
    log "INFO creating .venv"
    "$PY" -m venv .venv
  fi
  local stamp; stamp="$(sha256sum pyproject.toml | cut -c1-16)"
  if [ "$(cat .venv/.styx-stamp 2>/dev/null)" != "$stamp" ]; then
    log "INFO installing styx and its pinned dependencies into .venv"
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$stamp" > .venv/.styx-stamp
  else
    log "INFO .venv up to date, skipping"
  fi
  bash toolchain/install-pulumi.sh >/dev/null
  log "INFO ready: $(.venv/bin/python -c 'from styx.app import engine; print(engine.toolchain_bin())')"
}

main "$@"
