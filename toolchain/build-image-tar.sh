#!/usr/bin/env bash
# Builds container images as docker-archive tarballs without a registry or a Docker daemon, from the
# Debian rootfs the local backend caches (sandbox/sandboxctl.sh base), for `ctr images import` (or
# `docker load`). Cached by recipe under $STYX_IMAGE_DIR; prints the tarball's path.
#   build-image-tar.sh pause               -> styx.local/pause:3.10      (a static Go `pause`)
#   build-image-tar.sh ray [RAY_VERSION]   -> styx.local/ray:<version>   (Debian + Python venv
#                                             /opt/styx/venv with ray[default]==<version>, on PATH):
#                                             the Kubernetes backend's pods and setup.ray.container
#                                             (tests/e2e/test_ray_container.py) both run it
#   build-image-tar.sh binary NAME PATH TAG -> styx.local/NAME:TAG      (one static binary /NAME)
# Needs root (chroot into a copy of the rootfs for pip), Go (pause), network to PyPI (ray).
#
# Env (defaults):
#   STYX_HOME        ~/.styx
#   STYX_IMAGE_DIR   $STYX_HOME/images
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
STYX_HOME="${STYX_HOME:-$HOME/.styx}"
IMAGE_DIR="${STYX_IMAGE_DIR:-$STYX_HOME/images}"
PAUSE_TAG="3.10"
RECIPE=1
RAY_RECIPE=2  # 2: ray on a login shell's PATH (KubeRay runs bash -lc), a wget for its probes

log() { printf '[%s] image %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR $*"; exit 1; }

# docker_archive ROOTFS NAME:TAG OUT CMD_JSON ENV_JSON: one-layer docker-archive of ROOTFS.
docker_archive() {
  local rootfs="$1" ref="$2" out="$3" cmd="$4" env="$5" w layer_sha cfg_sha
  w="$(mktemp -d "$IMAGE_DIR/.tmp.XXXXXX")"
  tar -C "$rootfs" --numeric-owner --xattrs -cf "$w/layer.tar" .
  layer_sha="$(sha256sum "$w/layer.tar" | cut -d' ' -f1)"
  mkdir -p "$w/$layer_sha" && mv "$w/layer.tar" "$w/$layer_sha/layer.tar"
  printf '{"architecture":"amd64","os":"linux","config":{"Env":%s,"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$env" "$cmd" "$layer_sha" > "$w/config.json"
  cfg_sha="$(sha256sum "$w/config.json" | cut -d' ' -f1)"
  mv "$w/config.json" "$w/$cfg_sha.json"
  printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg_sha" "$ref" "$layer_sha" \
    > "$w/manifest.json"
  tar -C "$w" -cf "$out.tmp" manifest.json "$cfg_sha.json" "$layer_sha"
  mv "$out.tmp" "$out"
  rm -rf "$w"
}

build_pause() {
  local out="$IMAGE_DIR/pause-$PAUSE_TAG-r$RECIPE.tar" w
  if [ -s "$out" ]; then echo "$out"; return; fi
  command -v go >/dev/null 2>&1 || die "no Go toolchain (builds the pause binary)"
  w="$(mktemp -d "$IMAGE_DIR/.pause.XXXXXX")"
  mkdir -p "$w/src" "$w/rootfs"
  cat > "$w/src/main.go" <<'GO'
// pause: the pod sandbox's process; sleeps until SIGINT/SIGTERM, reaps orphans.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range sigs {
		if s == syscall.SIGCHLD {
			for {
				var ws syscall.WaitStatus
				if pid, _ := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 {
					break
				}
			}
			continue
		}
		os.Exit(0)
	}
}
GO
  printf 'module styx.local/pause\n\ngo 1.25\n' > "$w/src/go.mod"
  (cd "$w/src" && CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags "-s -w" -o "$w/rootfs/pause" .)
  docker_archive "$w/rootfs" "styx.local/pause:$PAUSE_TAG" "$out" '["/pause"]' '[]'
  rm -rf "$w"
  log "INFO built $out"
  echo "$out"
}

build_ray() {
  local ver="${1:-2.60.0}" base out w t0=$SECONDS
  out="$IMAGE_DIR/ray-$ver-r$RAY_RECIPE.tar"
  if [ -s "$out" ]; then echo "$out"; return; fi
  [ "$(id -u)" = 0 ] || die "building the Ray image needs root (chroot)"
  base="$(bash "$ROOT/sandbox/sandboxctl.sh" base)"
  [ -x "$base/usr/bin/python3" ] || die "$base has no python3"
  w="$(mktemp -d "$IMAGE_DIR/.ray.XXXXXX")"
  RAY_WORK="$w"
  trap 'umount "$RAY_WORK/rootfs/proc" 2>/dev/null; umount -l "$RAY_WORK/rootfs/dev" 2>/dev/null; rm -rf --one-file-system "$RAY_WORK"' EXIT
  log "INFO building styx.local/ray:$ver from $base (pip install ray[default]==$ver; ~1-2 min)"
  cp -a "$base" "$w/rootfs"
  # the host's CA bundle (outbound TLS here may be intercepted; see FACTS.md) for pip inside
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$w/rootfs/etc/ssl/certs/"
  cp /etc/resolv.conf "$w/rootfs/etc/resolv.conf"
  mount -t proc proc "$w/rootfs/proc"
  mount --rbind /dev "$w/rootfs/dev"
  chroot "$w/rootfs" /bin/sh -ec "
    python3 -m venv /opt/styx/venv
    /opt/styx/venv/bin/pip install -q --disable-pip-version-check --no-cache-dir 'ray[default]==$ver'
    /opt/styx/venv/bin/ray --version
  " >"$w/pip.log" 2>&1 || { tail -20 "$w/pip.log" >&2; die "pip install ray[default]==$ver failed"; }
  # KubeRay starts Ray with `bash -lc` (a login shell resets PATH from /etc/profile)
  # shellcheck disable=SC2016  # $PATH expands in the login shell
  printf 'export PATH=/opt/styx/venv/bin:$PATH\nexport RAY_USAGE_STATS_ENABLED=0\n' > "$w/rootfs/etc/profile.d/styx-ray.sh"
  # KubeRay's probes run `wget -T 2 -q -O- URL`: a minimal one (the base has no wget)
  cat > "$w/rootfs/usr/local/bin/wget" <<'PY'
#!/usr/bin/python3
"""Minimal wget for probes: wget [-T SECONDS] [-q] -O- URL (prints the body; exit 1 on failure)."""
import sys
import urllib.request

args, timeout, url = sys.argv[1:], 10.0, None
while args:
    a = args.pop(0)
    if a == "-T":
        timeout = float(args.pop(0))
    elif a.startswith("http"):
        url = a
try:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        sys.stdout.write(r.read().decode(errors="replace"))
except Exception as e:  # a probe: any failure is exit 1
    print(f"wget: {e}", file=sys.stderr)
    sys.exit(1)
PY
  chmod 0755 "$w/rootfs/usr/local/bin/wget"
  umount -l "$w/rootfs/dev" 2>/dev/null || true
  umount "$w/rootfs/proc"
  : > "$w/rootfs/etc/resolv.conf"
  rm -rf "$w/rootfs/root/.cache" "$w/rootfs/var/lib/apt/lists/"*
  docker_archive "$w/rootfs" "styx.local/ray:$ver" "$out" '["sleep","infinity"]' \
    '["PATH=/opt/styx/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","RAY_USAGE_STATS_ENABLED=0"]'
  rm -rf --one-file-system "$w"
  trap - EXIT
  log "INFO built $out ($(du -h "$out" | cut -f1)) in $((SECONDS - t0)) s"
  echo "$out"
}

# build_binary NAME BINARY TAG: an image of one static binary (+ the CA bundle), run as uid 65532.
build_binary() {
  local name="$1" bin="$2" tag="$3" out w sum
  [ -x "$bin" ] || die "$bin not found (toolchain/install-k8s.sh builds it)"
  sum="$(sha256sum "$bin" | cut -c1-12)"
  out="$IMAGE_DIR/$name-$tag-$sum.tar"
  if [ -s "$out" ]; then echo "$out"; return; fi
  w="$(mktemp -d "$IMAGE_DIR/.bin.XXXXXX")"
  mkdir -p "$w/rootfs/etc/ssl/certs" "$w/rootfs/tmp"
  chmod 1777 "$w/rootfs/tmp"
  install -m 0755 "$bin" "$w/rootfs/$name"
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$w/rootfs/etc/ssl/certs/"
  docker_archive "$w/rootfs" "styx.local/$name:$tag" "$out" "[\"/$name\"]" '[]'
  rm -rf "$w"
  log "INFO built $out"
  echo "$out"
}

main() {
  mkdir -p "$IMAGE_DIR"
  exec 8>"$IMAGE_DIR/.lock"
  flock 8
  case "${1:-}" in
    pause) build_pause ;;
    ray) build_ray "${2:-}" ;;
    binary) build_binary "${2:?name}" "${3:?binary}" "${4:?tag}" ;;
    *) die "usage: build-image-tar.sh pause | ray [RAY_VERSION] | binary NAME PATH TAG (got '${1:-}')" ;;
  esac
}

main "$@"
