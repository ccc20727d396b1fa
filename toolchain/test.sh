#!/usr/bin/env bash
# The test command (README, CI): set up, lint, then every test layer:
#   unit (mocks) -> setup scripts (shellcheck, bats, chroot double-run) -> stub provider (go test)
#   -> local sandbox hosts -> real engine end to end (local backend, real Ray).
# Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash toolchain/setup.sh
export RAY_USAGE_STATS_ENABLED=0 PYTHONUNBUFFERED=1
STYX_PULUMI_BIN_DIR="$(.venv/bin/python -c 'from styx.app import engine; print(engine.toolchain_bin())')"
export STYX_PULUMI_BIN_DIR
.venv/bin/ruff check .
.venv/bin/shellcheck -x setup_scripts/*.sh sandbox/*.sh toolchain/*.sh .ci/run
(cd toolchain/stub-provider && go vet ./... && go test ./...)
.venv/bin/python -m pytest "$@"
