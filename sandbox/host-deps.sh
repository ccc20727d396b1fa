#!/usr/bin/env bash
# Install the host packages the `local` sandbox backend needs (idempotent).
# Usage: sandbox/host-deps.sh [PKG...]   (as root; Debian/Ubuntu hosts; PKG: more packages, e.g. the
#        real Kubernetes of toolchain/run-k8s.sh asks for etcd-server, containerd, ...)
set -euo pipefail

PKGS=(debootstrap iptables iproute2 openssh-client openssh-server procps psmisc util-linux ca-certificates gpgv)

log() { printf '[%s] sandbox host-deps %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$2" >&2; }

main() {
  PKGS+=("$@")
  if [[ $(id -u) -ne 0 ]]; then
    log ERROR "must run as root (try: sudo $0)"
    exit 2
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log ERROR "apt-get not found: install manually: ${PKGS[*]}"
    exit 2
  fi
  local missing=() p
  for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [[ ${#missing[@]} -eq 0 ]]; then
    log INFO "all host packages present, nothing to do"
    return 0
  fi
  log INFO "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  log INFO "done"
}

main "$@"
