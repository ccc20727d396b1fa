#!/usr/bin/env bash
# build-test-image.sh -- a tiny docker-archive (the format `docker load` reads: manifest.json, an
# image config, one layer.tar) made from the local backend's cached Debian base rootfs, for tests
# that need an image where no registry can be reached. It holds sh, echo, cat and their libraries.
#
# Usage: toolchain/build-test-image.sh OUT.tar [TAG]   (TAG default styx-test:latest)
#   STYX_CACHE_DIR   where sandboxctl.sh caches the base (default /var/cache/styx)
#   STYX_IMAGE_ROOTFS  a rootfs to take the files from instead of the sandbox base
set -euo pipefail

main() {
  local out=${1:?usage: build-test-image.sh OUT.tar [TAG]} tag=${2:-styx-test:latest} root
  local -a files=(usr/bin/dash usr/bin/echo usr/bin/cat usr/lib/x86_64-linux-gnu/libc.so.6
    usr/lib64/ld-linux-x86-64.so.2)
  root=${STYX_IMAGE_ROOTFS:-$(STYX_CACHE_DIR=${STYX_CACHE_DIR:-/var/cache/styx} \
    "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../sandbox/sandboxctl.sh" base)}
  local f
  for f in "${files[@]}"; do
    [[ -e $root/$f ]] || { echo "build-test-image: $root/$f not found" >&2; exit 1; }
  done
  work=$(mktemp -d) # global: the EXIT trap needs it
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/fs/usr/bin" "$work/fs/usr/lib/x86_64-linux-gnu" "$work/fs/usr/lib64" "$work/fs/tmp"
  for f in "${files[@]}"; do cp -L "$root/$f" "$work/fs/$f"; done
  ln -s usr/bin "$work/fs/bin"
  ln -s usr/lib "$work/fs/lib"
  ln -s usr/lib64 "$work/fs/lib64"
  ln -s dash "$work/fs/usr/bin/sh"
  bash "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/docker-archive.sh" "$work/fs" "$out" "$tag"
}

main "$@"
