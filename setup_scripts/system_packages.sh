#!/usr/bin/env bash
# styx phase: system_packages -- install the apt packages that are missing.
#
# Environment:
#   STYX_APT_PACKAGES  package names, one per line, each optionally pinned as
#                      name=version; each line reaches apt-get as one argument
#                      (default: empty -> skipped)
#   STYX_APT_DOWNLOAD_ONLY  1: fresh lists and the packages' files in apt's
#                      cache, nothing installed (the node's first-boot work,
#                      setup.first_boot; runs with no packages too) (default 0)
#
# Idempotent: installed packages are left alone; apt-get update only runs when
# lists are stale or a wanted package is unknown (see lib.sh).
# stdout: `styx system_packages: ok|skipped: ...`; apt output goes to
# /var/log/styx/system_packages.log.
: "${STYX_PHASE:=system_packages}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_APT_PACKAGES=${STYX_APT_PACKAGES:-}
STYX_APT_DOWNLOAD_ONLY=${STYX_APT_DOWNLOAD_ONLY:-0}

main() {
  local -a pkgs
  mapfile -t pkgs < <(printf '%s' "$STYX_APT_PACKAGES")
  if [[ $STYX_APT_DOWNLOAD_ONLY == 1 ]]; then
    styx_apt_download "${pkgs[@]}"
    local got=$STYX_APT_INSTALLED
    styx_result ok "apt lists fresh; downloaded: ${got:-nothing}"
    return 0
  fi
  if [[ ${#pkgs[@]} -eq 0 ]]; then
    styx_result skipped "no packages requested (STYX_APT_PACKAGES empty)"
    return 0
  fi
  styx_apt_install "${pkgs[@]}"
  if [[ -z $STYX_APT_INSTALLED ]]; then
    styx_result skipped "all ${#pkgs[@]} packages already installed"
  else
    local -a done_pkgs
    read -r -a done_pkgs <<<"$STYX_APT_INSTALLED"
    styx_result ok "installed ${#done_pkgs[@]}/${#pkgs[@]} packages: $STYX_APT_INSTALLED"
  fi
}

# styx drift: every requested package still installed (at its pinned version)
check_drift() {
  local -a pkgs problems=()
  local p
  mapfile -t pkgs < <(printf '%s' "$STYX_APT_PACKAGES")
  for p in "${pkgs[@]}"; do
    styx_pkg_installed "$p" || problems+=("package $p not installed")
  done
  styx_verdict "${#pkgs[@]} packages installed" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
