#!/usr/bin/env bash
# Builds what the real single-node Kubernetes of toolchain/run-k8s.sh and the Kubernetes backend
# need, all from official sources served by the Go module proxy, cached by version:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl
#     from k8s.io/kubernetes v$K8S_VERSION through a wrapper module (the staging modules
#     k8s.io/<x> => k8s.io/<x> v0.<minor>.<patch>, the replace block of kubernetes' own go.mod);
#   pulumi-resource-kubernetes, the official provider, from
#     github.com/pulumi/pulumi-kubernetes/provider/v4@$PROVIDER_MODULE_VERSION (the one pseudo-version
#     the proxy serves), its schema-embed.json written by its own generate.go, registered in styx's
#     PULUMI_HOME as resource-kubernetes v$PROVIDER_VERSION (the pulumi-kubernetes pin in
#     pyproject.toml: the version the Python SDK asks the engine for);
#   the KubeRay operator (manager) from github.com/ray-project/kuberay/ray-operator v$KUBERAY_VERSION,
#     with its CRDs (config/crd/bases) and ClusterRole (config/rbac/role.yaml) in $BIN/kuberay/;
#   coredns (cluster DNS: only the plugins errors, cache, kubernetes, forward) from
#     github.com/coredns/coredns v$COREDNS_VERSION through a wrapper module (CoreDNS's own way to
#     choose plugins).
# Prints the bin folder (kube binaries, coredns, kuberay-operator, kuberay/). A second run is instant; parallel
# runs wait on a flock and then find the results. Cold on 2 cores: see README ("Kubernetes").
#
# Env (defaults):
#   STYX_HOME                 ~/.styx
#   STYX_TOOLCHAIN_DIR        $STYX_HOME/toolchain
#   PULUMI_HOME               $STYX_HOME/pulumi
#   STYX_K8S_VERSION          1.34.2
#   STYX_K8S_PROVIDER_VERSION 4.34.2  (must equal the pulumi-kubernetes pin in pyproject.toml)
#   STYX_KUBERAY_VERSION      1.4.2
#   STYX_COREDNS_VERSION      1.12.4
#   STYX_K8S_PARTS            "kube dns provider kuberay" (a subset builds only those)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh" toolchain-k8s  # STYX_HOME, STYX_TOOLCHAIN_DIR, PULUMI_HOME, BUILD, log, die, need_go
K8S_VERSION="${STYX_K8S_VERSION:-1.34.2}"
PROVIDER_VERSION="${STYX_K8S_PROVIDER_VERSION:-4.34.2}"
PROVIDER_MODULE="github.com/pulumi/pulumi-kubernetes/provider/v4"
PROVIDER_MODULE_VERSION="v4.0.0-20260115033456-f47bc2d6f199"
KUBERAY_VERSION="${STYX_KUBERAY_VERSION:-1.4.2}"
KUBERAY_MODULE="github.com/ray-project/kuberay/ray-operator"
COREDNS_VERSION="${STYX_COREDNS_VERSION:-1.12.4}"
PARTS="${STYX_K8S_PARTS:-kube dns provider kuberay}"

BIN="$STYX_TOOLCHAIN_DIR/k8s-v$K8S_VERSION-kuberay-v$KUBERAY_VERSION/bin"
KUBE_BINS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
# The string every official pulumi-resource-kubernetes binary carries.
PROVIDER_MARK="github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"

# module_dir MODULE VERSION: the read-only folder of a module in the module cache (downloads it).
module_dir() {
  local d
  d="$(cd "$BUILD" && go mod download -json "$1@$2" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$d" ] || die "the module proxy did not serve $1@$2"
  echo "$d"
}

# -------------------------------------------------------------------- kube binaries (one go build)

build_kube() {
  local w="$BUILD/kube-$K8S_VERSION" origin="official source build: k8s.io/kubernetes v$K8S_VERSION" b ok=1
  for b in $KUBE_BINS; do [ -x "$w/bin/$b" ] || ok=0; done
  if [ "$ok" = 1 ] && [ "$(cat "$w/.origin" 2>/dev/null)" = "$origin" ]; then
    log "INFO kubernetes v$K8S_VERSION binaries cached in $w/bin, skipping"
  else
    need_go "kubernetes v$K8S_VERSION"
    local kdir minor staging t0=$SECONDS
    kdir="$(module_dir k8s.io/kubernetes "v$K8S_VERSION")"
    minor="0.${K8S_VERSION#*.}"  # 1.34.2 -> 0.34.2, the staging modules' version
    rm -rf "$w" && mkdir -p "$w/bin"
    staging="$(sed -n '/^replace (/,/^)/s/^[[:space:]]*\(k8s\.io\/[a-z0-9-]*\) => \.\/staging.*/\1/p' "$kdir/go.mod")"
    [ -n "$staging" ] || die "$kdir/go.mod has no staging replace block"
    {
      printf 'module styx.local/kube\n\ngo 1.25\n\nrequire k8s.io/kubernetes v%s\n\nreplace (\n' "$K8S_VERSION"
      for b in $staging; do printf '\t%s => %s v%s\n' "$b" "$b" "$minor"; done
      printf ')\n'
    } > "$w/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport (\n' > "$w/tools.go"
    for b in $KUBE_BINS; do
      printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$b" >> "$w/tools.go"
    done
    printf ')\n' >> "$w/tools.go"
    log "INFO building kubernetes v$K8S_VERSION ($KUBE_BINS) through a wrapper module (~4-8 min on 2 cores)"
    local ld="-s -w" pkgs=()
    for b in $KUBE_BINS; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
    for b in gitVersion=v$K8S_VERSION gitMajor=1 gitMinor="$(echo "$K8S_VERSION" | cut -d. -f2)" gitTreeState=clean; do
      ld="$ld -X k8s.io/component-base/version.$b -X k8s.io/client-go/pkg/version.$b"
    done
    (cd "$w" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "$ld" -o "$w/bin/" \
       "${pkgs[@]}") >"$w/build.log" 2>&1 \
      || { tail -20 "$w/build.log" >&2; die "building kubernetes failed (log: $w/build.log)"; }
    echo "$origin" > "$w/.origin"
    log "INFO built kubernetes v$K8S_VERSION in $((SECONDS - t0)) s"
  fi
  for b in $KUBE_BINS; do cmp -s "$w/bin/$b" "$BIN/$b" || install -m 0755 "$w/bin/$b" "$BIN/$b"; done
}

# ------------------------------------------------------------------- pulumi-kubernetes provider

provider_registered() {
  local plugin="$PULUMI_HOME/plugins/resource-kubernetes-v$PROVIDER_VERSION/pulumi-resource-kubernetes"
  [ -x "$plugin" ] && [ -x "$BIN/pulumi-resource-kubernetes" ] && cmp -s "$plugin" "$BIN/pulumi-resource-kubernetes" \
    && cmp -s "$PULUMI_HOME/.styx-kubernetes-origin" "$BIN/.kubernetes-origin"
}

build_provider() {
  local w="$BUILD/kubernetes-provider-$PROVIDER_MODULE_VERSION-as-$PROVIDER_VERSION" src pdir t0=$SECONDS
  local origin="official source build: $PROVIDER_MODULE@$PROVIDER_MODULE_VERSION (module proxy), version $PROVIDER_VERSION"
  if [ -x "$w/pulumi-resource-kubernetes" ] && [ "$(cat "$w/.origin" 2>/dev/null)" = "$origin" ]; then
    log "INFO pulumi-resource-kubernetes cached in $w, skipping"
  else
    need_go "pulumi-resource-kubernetes"
    src="$(module_dir "$PROVIDER_MODULE" "$PROVIDER_MODULE_VERSION")"
    rm -rf "$w" && mkdir -p "$w"
    cp -r "$src" "$w/provider" && chmod -R u+w "$w/provider"
    pdir="$w/provider"
    # In its repo the provider builds against ../sdk; here the released sdk/v4 its go.mod requires.
    (cd "$pdir" && go mod edit -dropreplace=github.com/pulumi/pulumi-kubernetes/sdk/v4)
    if grep -q '=> \.\.' "$pdir/go.mod"; then die "$pdir/go.mod still replaces a module by a local path"; fi
    log "INFO building pulumi-resource-kubernetes from $PROVIDER_MODULE@$PROVIDER_MODULE_VERSION (~5-10 min on 2 cores)"
    (cd "$pdir/cmd/pulumi-resource-kubernetes" && VERSION="$PROVIDER_VERSION" go run ./generate.go \
       && cd "$pdir" && go build -trimpath -o "$w/pulumi-resource-kubernetes.tmp" \
         -ldflags "-s -w -X $PROVIDER_MODULE/pkg/version.Version=$PROVIDER_VERSION" ./cmd/pulumi-resource-kubernetes) \
      >"$w/build.log" 2>&1 || { tail -20 "$w/build.log" >&2; die "building pulumi-resource-kubernetes failed (log: $w/build.log)"; }
    grep -qF "$PROVIDER_MARK" "$w/pulumi-resource-kubernetes.tmp" || die "the build in $w does not look like pulumi-kubernetes"
    mv "$w/pulumi-resource-kubernetes.tmp" "$w/pulumi-resource-kubernetes"
    rm -rf "$pdir"
    echo "$origin" > "$w/.origin"
    log "INFO built pulumi-resource-kubernetes in $((SECONDS - t0)) s"
  fi
  cmp -s "$w/pulumi-resource-kubernetes" "$BIN/pulumi-resource-kubernetes" \
    || install -m 0755 "$w/pulumi-resource-kubernetes" "$BIN/pulumi-resource-kubernetes"
  echo "$origin" > "$BIN/.kubernetes-origin"
}

register_provider() {
  if provider_registered; then
    log "INFO resource-kubernetes v$PROVIDER_VERSION registered in $PULUMI_HOME ($(cat "$BIN/.kubernetes-origin")), skipping"
    return 0
  fi
  local pulumi out
  pulumi="$(bash "$HERE/install-pulumi.sh")/pulumi"
  out="$("$pulumi" plugin install resource kubernetes "$PROVIDER_VERSION" --file "$BIN/pulumi-resource-kubernetes" \
    --reinstall 2>&1)" || { printf '%s\n' "$out" >&2; die "pulumi plugin install --file $BIN/pulumi-resource-kubernetes failed"; }
  cp "$BIN/.kubernetes-origin" "$PULUMI_HOME/.styx-kubernetes-origin"
  log "INFO registered resource-kubernetes v$PROVIDER_VERSION in $PULUMI_HOME"
}

# ------------------------------------------------------------------------------ KubeRay operator

build_kuberay() {
  local w="$BUILD/kuberay-$KUBERAY_VERSION" origin="official source build: $KUBERAY_MODULE v$KUBERAY_VERSION" src t0=$SECONDS
  if [ -x "$w/kuberay-operator" ] && [ -s "$w/role.yaml" ] && [ "$(cat "$w/.origin" 2>/dev/null)" = "$origin" ]; then
    log "INFO kuberay-operator v$KUBERAY_VERSION cached in $w, skipping"
  else
    need_go "the KubeRay operator"
    src="$(module_dir "$KUBERAY_MODULE" "v$KUBERAY_VERSION")"
    rm -rf "$w" && mkdir -p "$w/crds"
    cp -r "$src" "$w/src" && chmod -R u+w "$w/src"
    if grep -q '=> \.\.' "$w/src/go.mod"; then die "$w/src/go.mod replaces a module by a local path"; fi
    log "INFO building kuberay-operator v$KUBERAY_VERSION (~2-4 min on 2 cores)"
    (cd "$w/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$w/kuberay-operator.tmp" .) \
      >"$w/build.log" 2>&1 || { tail -20 "$w/build.log" >&2; die "building kuberay-operator failed (log: $w/build.log)"; }
    cp "$w/src/config/crd/bases/"*.yaml "$w/crds/"
    cp "$w/src/config/rbac/role.yaml" "$w/role.yaml"
    mv "$w/kuberay-operator.tmp" "$w/kuberay-operator"
    rm -rf "$w/src"
    echo "$origin" > "$w/.origin"
    log "INFO built kuberay-operator in $((SECONDS - t0)) s"
  fi
  cmp -s "$w/kuberay-operator" "$BIN/kuberay-operator" || install -m 0755 "$w/kuberay-operator" "$BIN/kuberay-operator"
  mkdir -p "$BIN/kuberay/crds" && cp "$w/crds/"*.yaml "$BIN/kuberay/crds/" && cp "$w/role.yaml" "$BIN/kuberay/role.yaml"
}

# ------------------------------------------------------------------------------------- CoreDNS

build_coredns() {
  local w="$BUILD/coredns-$COREDNS_VERSION" origin="official source build: github.com/coredns/coredns v$COREDNS_VERSION (plugins r2: bind added)" t0=$SECONDS
  if [ -x "$w/coredns" ] && [ "$(cat "$w/.origin" 2>/dev/null)" = "$origin" ]; then
    log "INFO coredns v$COREDNS_VERSION cached in $w, skipping"
  else
    need_go "coredns"
    rm -rf "$w" && mkdir -p "$w/src"
    printf 'module styx.local/coredns\n\ngo 1.25\n\nrequire github.com/coredns/coredns v%s\n' "$COREDNS_VERSION" > "$w/src/go.mod"
    cat > "$w/src/main.go" <<'GO'
// CoreDNS with the plugins a cluster DNS needs (CoreDNS's documented way to pick plugins).
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	"github.com/coredns/coredns/coremain"
)

func init() {
	dnsserver.Directives = []string{"bind", "errors", "log", "health", "ready", "cache", "loop", "kubernetes", "forward"}
}

func main() { coremain.Run() }
GO
    log "INFO building coredns v$COREDNS_VERSION (~2-4 min on 2 cores)"
    (cd "$w/src" && go mod tidy && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$w/coredns.tmp" .) \
      >"$w/build.log" 2>&1 || { tail -20 "$w/build.log" >&2; die "building coredns failed (log: $w/build.log)"; }
    mv "$w/coredns.tmp" "$w/coredns"
    echo "$origin" > "$w/.origin"
    log "INFO built coredns in $((SECONDS - t0)) s"
  fi
  cmp -s "$w/coredns" "$BIN/coredns" || install -m 0755 "$w/coredns" "$BIN/coredns"
}

main() {
  mkdir -p "$BIN" "$BUILD" "$PULUMI_HOME"
  local p
  for p in $PARTS; do
    # one build of each part at a time: a second run waits, then finds the result
    one_build_at_a_time ".install-k8s-$p.lock" "'$p'"
    case "$p" in
      kube) build_kube ;;
      provider) build_provider; register_provider ;;
      dns) build_coredns ;;
      kuberay) build_kuberay ;;
      *) die "STYX_K8S_PARTS: unknown part '$p' (allowed: kube, dns, provider, kuberay)" ;;
    esac
    exec 9>&-
  done
  echo "$BIN"
}

main "$@"
