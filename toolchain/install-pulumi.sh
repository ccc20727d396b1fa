#!/usr/bin/env bash
# Installs the Pulumi engine pieces styx needs, at the versions of the pinned Python SDKs, all of
# them Pulumi's own code:
#   pulumi (CLI) + pulumi-language-python-exec, pulumi-language-python (the official Python language
#   host), pulumi-resource-command (the official command provider).
# Each piece: the official release first, else a build of the official source.
#   CLI + language host: a matching `pulumi` on PATH -> Pulumi's official installer -> the CLI built
#     from github.com/pulumi/pulumi/pkg/v3 (module proxy) and the language host built from the
#     vendored source archive $STYX_VENDOR_DIR/pulumi-language-python-<v>-src.tar.gz.
#   command provider: `pulumi plugin install resource command <v>` (the release) -> a build of the
#     vendored source archive $STYX_VENDOR_DIR/pulumi-command-<v>-src.tar.gz, registered with
#     `pulumi plugin install --file`.
# The vendored archives are checked against the sha256 below (see $STYX_VENDOR_DIR/SOURCE.md); their
# dependencies come from the Go module proxy. Builds are cached by version + archive sha256 under
# $STYX_TOOLCHAIN_DIR/build/ (a second run is instant). Where each piece came from is written next to
# it: $BIN/.command-origin, $PULUMI_HOME/.styx-command-origin, $BIN/.langhost-origin (`styx check`
# shows them). Plugins go into styx's own PULUMI_HOME ($STYX_HOME/pulumi); a source build is never
# registered in a PULUMI_HOME shared with other projects (unless STYX_ALLOW_SHARED_PULUMI_HOME=1).
# To try the official release again after a source build: rm "$PULUMI_HOME/.styx-command-origin".
#
# Env (defaults):
#   STYX_HOME            ~/.styx
#   STYX_TOOLCHAIN_DIR   $STYX_HOME/toolchain
#   STYX_VENDOR_DIR      <repo>/../shared/vendor
#   PULUMI_HOME          $STYX_HOME/pulumi (styx's own)
#   STYX_PULUMI_VERSION  3.259.0   (must equal the `pulumi` pin in pyproject.toml)
#   STYX_COMMAND_VERSION 1.2.1     (must equal the `pulumi-command` pin in pyproject.toml)
#   STYX_TRY_INSTALLER   1         (0: skip the official installer and the release download)
#   STYX_ALLOW_SHARED_PULUMI_HOME 0 (1: register a source build in a PULUMI_HOME that is not styx's)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh" toolchain  # STYX_HOME, STYX_TOOLCHAIN_DIR, PULUMI_HOME, BUILD, log, die, need_go
STYX_VENDOR_DIR="${STYX_VENDOR_DIR:-$ROOT/../shared/vendor}"
PULUMI_VERSION="${STYX_PULUMI_VERSION:-3.259.0}"
COMMAND_VERSION="${STYX_COMMAND_VERSION:-1.2.1}"

BIN="$STYX_TOOLCHAIN_DIR/pulumi-v$PULUMI_VERSION-cmd-v$COMMAND_VERSION/bin"
# The string every official pulumi-resource-command binary carries (its remote package).
COMMAND_MARK="github.com/pulumi/pulumi-command/provider/pkg/provider/remote"

# The vendored official sources: "<sha256 of the archive> <upstream commit>" (from SOURCE.md).
command_source() {
  case "$1" in
    1.2.1) echo "aa296005008475babb795c1c36337ff03e712bccf312ca04e2dab338b7a6a7be 7f3eb6f3b77cd0fa3895ba437a695dd393f7dd25" ;;
    *) return 1 ;;
  esac
}
langhost_source() {
  case "$1" in
    3.259.0) echo "6e3c8438b9d34b0250e4b62f26d0534d35f2bffed988c5570791c5aa21246adf 0ac56e876614aedf12771d73ef7e80959b8a6fd4" ;;
    *) return 1 ;;
  esac
}

# verified_archive NAME SHA: the archive's path once its sha256 is the expected one.
verified_archive() {
  local archive="$STYX_VENDOR_DIR/$1" want="$2" have
  [ -f "$archive" ] || die "$archive not found: the official source archives live in ../shared/vendor beside the repo (or set STYX_VENDOR_DIR)"
  have="$(sha256sum "$archive" | cut -d' ' -f1)"
  [ "$have" = "$want" ] || die "$archive: sha256 $have, expected $want (see SOURCE.md): refusing to build it"
  echo "$archive"
}

# ------------------------------------------------------------------------------------------- CLI

have_matching_pulumi() {
  local p; p="$(command -v pulumi 2>/dev/null)" || return 1
  [ "$("$p" version 2>/dev/null)" = "v$PULUMI_VERSION" ] || return 1
  command -v pulumi-language-python >/dev/null 2>&1 || return 1
  ln -sf "$p" "$BIN/pulumi"
  ln -sf "$(command -v pulumi-language-python)" "$BIN/pulumi-language-python"
  if command -v pulumi-language-python-exec >/dev/null 2>&1; then
    ln -sf "$(command -v pulumi-language-python-exec)" "$BIN/pulumi-language-python-exec"
  fi
  echo "on PATH: pulumi-language-python (beside pulumi v$PULUMI_VERSION): $(command -v pulumi-language-python)" \
    > "$BIN/.langhost-origin"
  log "INFO using pulumi v$PULUMI_VERSION found on PATH ($p)"
}

try_official_installer() {
  [ "${STYX_TRY_INSTALLER:-1}" = 1 ] || return 1
  command -v curl >/dev/null 2>&1 || return 1
  local tmp; tmp="$(mktemp -d)"
  log "INFO trying Pulumi's official installer"
  if curl -fsSL --connect-timeout 5 --max-time 20 https://get.pulumi.com/install.sh -o "$tmp/install.sh" 2>/dev/null \
     && sh "$tmp/install.sh" --version "$PULUMI_VERSION" --install-root "$tmp/root" --no-edit-path >/dev/null 2>&1; then
    cp "$tmp/root/bin/"pulumi "$tmp/root/bin/"pulumi-language-python* "$BIN/"
    echo "official release: pulumi-language-python v$PULUMI_VERSION (Pulumi's installer)" > "$BIN/.langhost-origin"
    rm -rf "$tmp"; return 0
  fi
  rm -rf "$tmp"; log "INFO official installer not reachable; building from Go modules"; return 1
}

go_build_cli() {
  local w="$STYX_TOOLCHAIN_DIR/build/cli-$PULUMI_VERSION"
  mkdir -p "$w"
  cat > "$w/go.mod" <<MOD
module styx.local/pulumi-cli

go 1.25

require (
	github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION
)

// pkg/v3 carries this replace itself; replaces are not inherited, so the wrapper repeats it.
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
MOD
  printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > "$w/tools.go"
  log "INFO building pulumi v$PULUMI_VERSION from github.com/pulumi/pulumi/pkg/v3 (takes ~4 min on 2 cores)"
  (cd "$w" && go mod tidy && go build -trimpath -o "$BIN/pulumi" \
     -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
     github.com/pulumi/pulumi/pkg/v3/cmd/pulumi) >"$w/build.log" 2>&1 \
    || { tail -20 "$w/build.log" >&2; die "building the pulumi CLI failed (log: $w/build.log)"; }
  # The exec shim of the matching SDK (a Python script the language host runs).
  local sdk; sdk="$(cd "$w" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$BIN/pulumi-language-python-exec"
}

install_cli() {
  if [ -x "$BIN/pulumi" ] && [ -x "$BIN/pulumi-language-python-exec" ]; then
    log "INFO pulumi v$PULUMI_VERSION cached in $BIN, skipping"
  elif ! have_matching_pulumi && ! try_official_installer; then
    need_go "the pulumi CLI"
    go_build_cli
  fi
}

# --------------------------------------------------------------------------- Python language host

go_build_langhost() {
  local src sha commit archive w d origin
  src="$(langhost_source "$PULUMI_VERSION")" \
    || die "no vendored source known for pulumi-language-python v$PULUMI_VERSION (only 3.259.0)"
  read -r sha commit <<<"$src"
  w="$BUILD/langhost-$PULUMI_VERSION-${sha:0:12}"
  origin="official source build: pulumi-language-python v$PULUMI_VERSION (commit $commit, archive sha256 $sha)"
  if [ -x "$w/pulumi-language-python" ] && [ "$(cat "$w/.origin" 2>/dev/null)" = "$origin" ]; then
    log "INFO pulumi-language-python v$PULUMI_VERSION source build cached in $w"
  else
    archive="$(verified_archive "pulumi-language-python-$PULUMI_VERSION-src.tar.gz" "$sha")"
    need_go "pulumi-language-python"
    rm -rf "$w" && mkdir -p "$w/src"
    tar -xzf "$archive" -C "$w/src"
    d="$w/src/pulumi-language-python-$PULUMI_VERSION/sdk/python/cmd/pulumi-language-python"
    [ -f "$d/go.mod" ] || die "$archive has no sdk/python/cmd/pulumi-language-python/go.mod"
    # In the pulumi repo the host builds against the sdk/pkg next to it (replace => ../../../..);
    # here they are the released modules of the same version, from the module proxy.
    (cd "$d" && go mod edit -dropreplace=github.com/pulumi/pulumi/pkg/v3 -dropreplace=github.com/pulumi/pulumi/sdk/v3 \
       -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_VERSION" -require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION")
    if grep -q '=> \.\.' "$d/go.mod"; then die "$d/go.mod still replaces a module by a local path"; fi
    grep -q 'github.com/atotto/clipboard =>' "$d/go.mod" || die "$d/go.mod lost its clipboard replace"
    log "INFO building pulumi-language-python v$PULUMI_VERSION from the official source ($archive; 15 s after the CLI build, ~4 min cold on 2 cores)"
    local t0=$SECONDS
    (cd "$d" && go build -trimpath -o "$w/pulumi-language-python.tmp" \
       -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" .) \
      >"$w/build.log" 2>&1 || { tail -20 "$w/build.log" >&2; die "building pulumi-language-python failed (log: $w/build.log)"; }
    mv "$w/pulumi-language-python.tmp" "$w/pulumi-language-python"
    echo "$origin" > "$w/.origin"
    log "INFO built pulumi-language-python in $((SECONDS - t0)) s"
  fi
  [ ! -L "$BIN/pulumi-language-python" ] || rm -f "$BIN/pulumi-language-python"
  cmp -s "$w/pulumi-language-python" "$BIN/pulumi-language-python" \
    || install -m 0755 "$w/pulumi-language-python" "$BIN/pulumi-language-python"
  echo "$origin" > "$BIN/.langhost-origin"
}

langhost_cached() {
  [ -x "$BIN/pulumi-language-python" ] || return 1
  case "$(cat "$BIN/.langhost-origin" 2>/dev/null)" in
    "official release: pulumi-language-python v$PULUMI_VERSION "*|"on PATH: "*) return 0 ;;
    *) return 1 ;;  # a source build: go_build_langhost checks its own cache
  esac
}

install_langhost() {
  if langhost_cached; then
    log "INFO pulumi-language-python cached ($(cat "$BIN/.langhost-origin")), skipping"
  else
    rm -f "$BIN/.langhost-stamp"  # of earlier styx versions (a patched v3.79 host)
    go_build_langhost
  fi
}

# ------------------------------------------------------------------------------- command provider

# Is what PULUMI_HOME holds for command <v> an official build that styx registered?
command_registered() {
  local plugin="$PULUMI_HOME/plugins/resource-command-v$COMMAND_VERSION/pulumi-resource-command"
  [ -x "$plugin" ] && [ -x "$BIN/pulumi-resource-command" ] && [ -s "$PULUMI_HOME/.styx-command-origin" ] \
    && cmp -s "$PULUMI_HOME/.styx-command-origin" "$BIN/.command-origin" \
    && cmp -s "$plugin" "$BIN/pulumi-resource-command" && grep -qF "$COMMAND_MARK" "$plugin"
}

try_command_release() {
  [ "${STYX_TRY_INSTALLER:-1}" = 1 ] || return 1
  local w="$BUILD/command-release-$COMMAND_VERSION" plugin rc=0 why cause
  plugin="$PULUMI_HOME/plugins/resource-command-v$COMMAND_VERSION/pulumi-resource-command"
  mkdir -p "$w"
  log "INFO trying the official release: pulumi plugin install resource command $COMMAND_VERSION"
  timeout 30 "$BIN/pulumi" plugin install resource command "$COMMAND_VERSION" --reinstall >"$w/install.log" 2>&1 || rc=$?
  if [ "$rc" = 0 ] && [ -x "$plugin" ] && grep -qF "$COMMAND_MARK" "$plugin"; then
    install -m 0755 "$plugin" "$BIN/pulumi-resource-command"
    echo "official release: pulumi-command v$COMMAND_VERSION" | tee "$BIN/.command-origin" > "$PULUMI_HOME/.styx-command-origin"
    log "INFO installed the official release of pulumi-resource-command v$COMMAND_VERSION in $PULUMI_HOME"
    return 0
  fi
  # The last line says what failed, the first download warning why (e.g. "lookup get.pulumi.com ...: no such host").
  why="$(grep -v '^[[:space:]]*$' "$w/install.log" | tail -n 1 || true)"
  cause="$(grep -m1 -o 'Error downloading plugin: .*' "$w/install.log" || true)"
  [ "$rc" = 124 ] && why="no answer within 30 s${why:+; last output: $why}"
  log "INFO official release not reachable (rc=$rc: ${why:-no output}${cause:+; $cause}; log: $w/install.log); building the official source"
  return 1
}

go_build_command() {
  local src sha commit archive w origin
  src="$(command_source "$COMMAND_VERSION")" \
    || die "no vendored source known for pulumi-command v$COMMAND_VERSION (only 1.2.1)"
  read -r sha commit <<<"$src"
  w="$BUILD/command-$COMMAND_VERSION-${sha:0:12}"
  origin="official source build: pulumi-command v$COMMAND_VERSION (commit $commit, archive sha256 $sha)"
  if [ -x "$w/pulumi-resource-command" ] && [ "$(cat "$w/.origin" 2>/dev/null)" = "$origin" ]; then
    log "INFO pulumi-resource-command v$COMMAND_VERSION source build cached in $w"
  else
    archive="$(verified_archive "pulumi-command-$COMMAND_VERSION-src.tar.gz" "$sha")"
    need_go "pulumi-resource-command"
    rm -rf "$w" && mkdir -p "$w/src"
    tar -xzf "$archive" -C "$w/src"
    log "INFO building pulumi-resource-command v$COMMAND_VERSION from the official source ($archive; 3-7 min on 2 cores)"
    local t0=$SECONDS
    (cd "$w/src/pulumi-command-$COMMAND_VERSION/provider" && go build -trimpath -o "$w/pulumi-resource-command.tmp" \
       -ldflags "-s -w -X github.com/pulumi/pulumi-command/provider/pkg/version.Version=$COMMAND_VERSION" \
       ./cmd/pulumi-resource-command) >"$w/build.log" 2>&1 \
      || { tail -20 "$w/build.log" >&2; die "building pulumi-resource-command failed (log: $w/build.log)"; }
    grep -qF "$COMMAND_MARK" "$w/pulumi-resource-command.tmp" || die "the build in $w does not look like pulumi-command"
    mv "$w/pulumi-resource-command.tmp" "$w/pulumi-resource-command"
    echo "$origin" > "$w/.origin"
    log "INFO built pulumi-resource-command in $((SECONDS - t0)) s"
  fi
  cmp -s "$w/pulumi-resource-command" "$BIN/pulumi-resource-command" \
    || install -m 0755 "$w/pulumi-resource-command" "$BIN/pulumi-resource-command"
  echo "$origin" > "$BIN/.command-origin"
}

register_command() {
  local out
  out="$("$BIN/pulumi" plugin install resource command "$COMMAND_VERSION" --file "$BIN/pulumi-resource-command" \
    --reinstall 2>&1)" || { printf '%s\n' "$out" >&2; die "pulumi plugin install --file $BIN/pulumi-resource-command failed"; }
  cp "$BIN/.command-origin" "$PULUMI_HOME/.styx-command-origin"
  log "INFO registered pulumi-resource-command v$COMMAND_VERSION ($(cat "$BIN/.command-origin")) in $PULUMI_HOME"
}

shared_home_guard() {
  [ "$(realpath -m "$PULUMI_HOME")" = "$(realpath -m "$STYX_PULUMI_HOME")" ] && return 0
  [ "${STYX_ALLOW_SHARED_PULUMI_HOME:-0}" = 1 ] && { log "WARN registering a source build in PULUMI_HOME=$PULUMI_HOME (STYX_ALLOW_SHARED_PULUMI_HOME=1)"; return 0; }
  die "PULUMI_HOME=$PULUMI_HOME is not styx's own ($STYX_PULUMI_HOME): a source build of pulumi-resource-command registered there would stand in for the official release for every project that uses it. Unset PULUMI_HOME (styx then uses $STYX_PULUMI_HOME), or set STYX_ALLOW_SHARED_PULUMI_HOME=1 to register it there anyway."
}

install_command() {
  rm -f "$BIN/.command-stamp" "$PULUMI_HOME/.styx-command-stamp"  # stamps of earlier styx versions
  if command_registered; then
    log "INFO pulumi-resource-command v$COMMAND_VERSION registered in $PULUMI_HOME ($(cat "$PULUMI_HOME/.styx-command-origin")), skipping"
    return 0
  fi
  try_command_release && return 0
  shared_home_guard
  go_build_command
  register_command
}

main() {
  mkdir -p "$BIN" "$PULUMI_HOME" "$BUILD"
  one_build_at_a_time .install.lock "the toolchain"
  install_cli
  install_command
  install_langhost
  echo "$BIN"
}

main "$@"
