#!/usr/bin/env bash
# Installs the Pulumi engine pieces styx needs, at versions matching the pinned Python SDKs:
#   pulumi (CLI), pulumi-language-python (+ pulumi-language-python-exec), pulumi-resource-command.
# Order: a matching `pulumi` on PATH -> Pulumi's official installer -> build from Go modules.
# Binaries are cached by version under $STYX_TOOLCHAIN_DIR (a second run is instant); the command
# provider is registered in $PULUMI_HOME with `pulumi plugin install --file`.
#
# Env (defaults):
#   STYX_HOME            ~/.styx
#   STYX_TOOLCHAIN_DIR   $STYX_HOME/toolchain
#   PULUMI_HOME          $STYX_HOME/pulumi
#   STYX_PULUMI_VERSION  3.259.0   (must equal the `pulumi` pin in pyproject.toml)
#   STYX_LANGHOST_SDK    3.79.0    (newest sdk/v3 that still carries the Python language host; see README)
#   STYX_COMMAND_VERSION 1.2.1     (must equal the `pulumi-command` pin in pyproject.toml)
#   STYX_TRY_INSTALLER   1         (0: skip the official installer attempt)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STYX_HOME="${STYX_HOME:-$HOME/.styx}"
STYX_TOOLCHAIN_DIR="${STYX_TOOLCHAIN_DIR:-$STYX_HOME/toolchain}"
PULUMI_VERSION="${STYX_PULUMI_VERSION:-3.259.0}"
LANGHOST_SDK="${STYX_LANGHOST_SDK:-3.79.0}"
COMMAND_VERSION="${STYX_COMMAND_VERSION:-1.2.1}"
export PULUMI_HOME="${PULUMI_HOME:-$STYX_HOME/pulumi}"
export PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

BIN="$STYX_TOOLCHAIN_DIR/pulumi-v$PULUMI_VERSION-cmd-v$COMMAND_VERSION/bin"

log() { printf '[%s] toolchain %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR $*"; exit 1; }

have_matching_pulumi() {
  local p; p="$(command -v pulumi 2>/dev/null)" || return 1
  [ "$("$p" version 2>/dev/null)" = "v$PULUMI_VERSION" ] || return 1
  command -v pulumi-language-python >/dev/null 2>&1 || return 1
  ln -sf "$p" "$BIN/pulumi"
  ln -sf "$(command -v pulumi-language-python)" "$BIN/pulumi-language-python"
  if command -v pulumi-language-python-exec >/dev/null 2>&1; then
    ln -sf "$(command -v pulumi-language-python-exec)" "$BIN/pulumi-language-python-exec"
  fi
  log "INFO using pulumi v$PULUMI_VERSION found on PATH ($p)"
}

try_official_installer() {
  [ "${STYX_TRY_INSTALLER:-1}" = 1 ] || return 1
  command -v curl >/dev/null 2>&1 || return 1
  local tmp; tmp="$(mktemp -d)"
  log "INFO trying Pulumi's official installer"
  if curl -fsSL --max-time 20 https://get.pulumi.com/install.sh -o "$tmp/install.sh" 2>/dev/null \
     && sh "$tmp/install.sh" --version "$PULUMI_VERSION" --install-root "$tmp/root" --no-edit-path >/dev/null 2>&1; then
    cp "$tmp/root/bin/"pulumi "$tmp/root/bin/"pulumi-language-python* "$BIN/"
    langhost_stamp > "$BIN/.langhost-stamp"  # the official host is current: no fix needed
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

go_build_langhost() {
  # github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 (its own module since sdk 3.80)
  # is refused by the module proxy here (403 for every version and pseudo-version tried), so the
  # language host is built from the last sdk/v3 release that still carried it, with one fix so it
  # can start policy packs for a current engine (toolchain/langhost/runplugin_info.go: newer engines
  # send the pack's folder in RunPluginRequest.info, which that release does not read).
  local w="$STYX_TOOLCHAIN_DIR/build/langhost-$LANGHOST_SDK" src
  rm -rf "$w" && mkdir -p "$w"
  printf 'module styx.local/langhost\n\ngo 1.21\n\nrequire github.com/pulumi/pulumi/sdk/v3 v%s\n' "$LANGHOST_SDK" > "$w/go.mod"
  printf '//go:build tools\n\npackage main\n\nimport _ "github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"\n' > "$w/tools.go"
  log "INFO building pulumi-language-python from github.com/pulumi/pulumi/sdk/v3@v$LANGHOST_SDK"
  (cd "$w" && go mod tidy) >"$w/build.log" 2>&1 || { tail -20 "$w/build.log" >&2; die "go mod tidy for the language host failed"; }
  src="$(cd "$w" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python"
  rm -f "$w/tools.go"
  find "$src" -maxdepth 1 -name '*.go' ! -name '*_test.go' -exec cp {} "$w/" \;
  chmod u+w "$w"/*.go
  grep -q 'args := \[\]string{req.Program}' "$w/main.go" || die "language host source changed: cannot apply the policy-pack fix"
  sed -i 's/args := \[\]string{req.Program}/args := []string{runPluginProgram(req)}/' "$w/main.go"
  cp "$HERE/langhost/runplugin_info.go" "$w/"
  (cd "$w" && go mod tidy && go build -trimpath -o "$BIN/pulumi-language-python" -ldflags "-s -w" .) >>"$w/build.log" 2>&1 \
    || { tail -20 "$w/build.log" >&2; die "building pulumi-language-python failed (log: $w/build.log)"; }
  langhost_stamp > "$BIN/.langhost-stamp"
}

langhost_stamp() { { cat "$HERE/langhost/"*.go; echo "$LANGHOST_SDK"; } | sha256sum | cut -c1-16; }

go_build_command_provider() {
  # github.com/pulumi/pulumi-command/provider is refused by the module proxy (403), so styx builds
  # its own wire-compatible provider from toolchain/command-provider (see its README).
  local src="$HERE/command-provider" w="$STYX_TOOLCHAIN_DIR/build/command-$COMMAND_VERSION"
  mkdir -p "$w"
  log "INFO building pulumi-resource-command $COMMAND_VERSION from $src"
  (cd "$src" && go build -trimpath -o "$BIN/pulumi-resource-command" -ldflags "-s -w -X main.version=$COMMAND_VERSION" .) \
    >"$w/build.log" 2>&1 || { tail -20 "$w/build.log" >&2; die "building pulumi-resource-command failed (log: $w/build.log)"; }
}

provider_stamp() { (cd "$HERE/command-provider" && cat go.mod ./*.go 2>/dev/null | sha256sum | cut -c1-16); }

main() {
  mkdir -p "$BIN" "$PULUMI_HOME"
  if [ -x "$BIN/pulumi" ] && [ -x "$BIN/pulumi-language-python-exec" ]; then
    log "INFO pulumi v$PULUMI_VERSION cached in $BIN, skipping"
  elif ! have_matching_pulumi && ! try_official_installer; then
    command -v go >/dev/null 2>&1 || die "no Go toolchain: install Go >= 1.25 (needed to build Pulumi here)"
    go_build_cli
  fi
  if [ -L "$BIN/pulumi-language-python" ] || [ "$(cat "$BIN/.langhost-stamp" 2>/dev/null)" = "$(langhost_stamp)" ]; then
    log "INFO pulumi-language-python cached (or from PATH), skipping"
  else
    go_build_langhost
  fi
  local stamp; stamp="$(provider_stamp)"
  if [ -x "$BIN/pulumi-resource-command" ] && [ "$(cat "$BIN/.command-stamp" 2>/dev/null)" = "$stamp" ]; then
    log "INFO pulumi-resource-command cached, skipping"
  else
    go_build_command_provider
    echo "$stamp" > "$BIN/.command-stamp"
  fi
  if [ "$(cat "$PULUMI_HOME/.styx-command-stamp" 2>/dev/null)" != "$stamp" ]; then
    "$BIN/pulumi" plugin install resource command "$COMMAND_VERSION" --file "$BIN/pulumi-resource-command" --reinstall >/dev/null
    echo "$stamp" > "$PULUMI_HOME/.styx-command-stamp"
    log "INFO registered resource plugin command $COMMAND_VERSION in $PULUMI_HOME"
  fi
  echo "$BIN"
}

main "$@"
