#!/usr/bin/env bash
# build-ray-image.sh -- a Ray image for tests, as a docker-archive the local backend's nodes can
# `docker load` (no registry is reachable here): the sandbox's cached Debian bookworm base rootfs +
# its Python + `ray[default]` of the configured version in /opt/ray (ray on PATH via
# /usr/local/bin). Needs root (chroot) and PyPI.
#
# Usage: toolchain/build-ray-image.sh [OUT.tar]   (default build/ray-image-<version>.tar)
#   STYX_RAY_VERSION  Ray version (default: setup.ray.version's default in styx/model/config.py)
#   STYX_CACHE_DIR    where sandboxctl.sh caches the base (default /var/cache/styx)
set -euo pipefail

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")

log() { printf '[%s] build-ray-image %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }

cleanup() {
  [[ -n ${work:-} ]] || return 0
  umount "$work/fs/proc" "$work/fs/dev" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}

main() {
  local version out base py=python3
  [[ -x $HERE/../.venv/bin/python ]] && py=$HERE/../.venv/bin/python
  version=${STYX_RAY_VERSION:-$(cd "$HERE/.." && "$py" -c 'from styx.model.config import RayConfig; print(RayConfig().version)')}
  [[ $version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { log "STYX_RAY_VERSION '$version' is not X.Y.Z"; exit 2; }
  out=${1:-$HERE/../build/ray-image-$version.tar}
  mkdir -p "$(dirname "$out")"
  base=$(STYX_CACHE_DIR=${STYX_CACHE_DIR:-/var/cache/styx} "$HERE/../sandbox/sandboxctl.sh" base)
  work=$(mktemp -d /var/tmp/styx-ray-image.XXXXXX) # global: the EXIT trap needs it
  trap cleanup EXIT
  log "copying the base rootfs $base"
  cp -a "$base" "$work/fs"
  cp /etc/resolv.conf "$work/fs/etc/resolv.conf"
  mount --bind /dev "$work/fs/dev"
  mount -t proc proc "$work/fs/proc"
  log "installing ray[default]==$version into /opt/ray"
  # env -i: the host's pip settings (local wheel folders, constraints) do not exist inside
  chroot "$work/fs" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
    /bin/sh -ec "python3 -m venv /opt/ray
    /opt/ray/bin/pip install --no-cache-dir --disable-pip-version-check -q 'ray[default]==$version'
    ln -sf /opt/ray/bin/ray /usr/local/bin/ray
    ln -sf /opt/ray/bin/python /usr/local/bin/ray-python
    /opt/ray/bin/ray --version"
  umount "$work/fs/proc" "$work/fs/dev"
  : >"$work/fs/etc/resolv.conf"
  bash "$HERE/docker-archive.sh" "$work/fs" "$out" "styx-ray:$version"
}

main "$@"
