#!/usr/bin/env bash
# docker-archive.sh FSDIR OUT.tar TAG [CMD] -- writes the format `docker load` reads (manifest.json,
# an image config, one layer.tar) from a root filesystem directory. Reproducible: sorted names,
# mtime 0, numeric owners. CMD (default /bin/sh) is the image's command.
set -euo pipefail

main() {
  local fs=${1:?usage: docker-archive.sh FSDIR OUT.tar TAG [CMD]} out=${2:?} tag=${3:?} cmd=${4:-/bin/sh}
  [[ -d $fs ]] || { echo "docker-archive: $fs is not a directory" >&2; exit 1; }
  img=$(mktemp -d "$(dirname "$out")/.docker-archive.XXXXXX") # global: the EXIT trap needs it
  trap 'rm -rf "$img"' EXIT
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --one-file-system \
    --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -C "$fs" -cf "$img/layer.tar" .
  local diff cfg
  diff=$(sha256sum "$img/layer.tar" | cut -d' ' -f1)
  printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["%s"],"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$cmd" "$diff" >"$img/config.json"
  cfg=$(sha256sum "$img/config.json" | cut -d' ' -f1)
  mv "$img/config.json" "$img/$cfg.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["layer.tar"]}]' "$cfg" "$tag" >"$img/manifest.json"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$img" -cf "$out" .
  echo "$out: $tag (image id sha256:${cfg:0:12})"
}

main "$@"
