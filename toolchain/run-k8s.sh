#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, started by the project, and the k8s-local stack
# (stacks/Pulumi.k8s-local.yaml) launched on it:
#   bash toolchain/run-k8s.sh            # cluster up (idempotent), then styx launch the stack
#   bash toolchain/run-k8s.sh cluster    # only the cluster (prints the kubeconfig path)
#   bash toolchain/run-k8s.sh prepare    # only build and cache what the cluster needs (starts nothing)
#   bash toolchain/run-k8s.sh down       # destroy the stack, stop the cluster, remove everything
#   bash toolchain/run-k8s.sh status     # which parts run
# Parts (all on this machine, nothing pulled): etcd (Debian etcd-server), kube-apiserver,
# kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl built by
# toolchain/install-k8s.sh; CoreDNS (host process, cluster DNS on the bridge address); containerd +
# runc + CNI bridge (Debian); the pause and Ray images built by toolchain/build-image-tar.sh and
# imported with `ctr -n k8s.io images import`; the KubeRay operator (a Deployment in namespace
# styx-kuberay, with its CRDs). Everything listens on loopback or on the k8s0 bridge
# (172.31.0.1): the pod network 172.31.0.0/16, Services 172.30.0.0/16.
# TLS everywhere: a CA, the apiserver's serving certificate, an admin client certificate
# (system:masters, in the kubeconfig), a service-account key pair; the kubelet accepts only
# clients with a certificate of that CA.
#
# Env (defaults):
#   STYX_HOME          ~/.styx (kubeconfig: $STYX_HOME/k8s/kubeconfig)
#   STYX_K8S_STATE     /var/lib/styx-k8s
#   STYX_K8S_STACK     k8s-local      STYX_K8S_STACK_FILE stacks/Pulumi.k8s-local.yaml
#   STYX_RAY_VERSION   2.60.0         (the Ray image's version)
#   STYX_K8S_KUBERAY   1              (0: no KubeRay operator)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STYX_HOME="${STYX_HOME:-$HOME/.styx}"
STATE="${STYX_K8S_STATE:-/var/lib/styx-k8s}"
RUN="$STATE/run"
LOGS="$STATE/log"
PKI="$STATE/pki"
KUBECONFIG_OUT="$STYX_HOME/k8s/kubeconfig"
STACK="${STYX_K8S_STACK:-k8s-local}"
STACK_FILE="${STYX_K8S_STACK_FILE:-stacks/Pulumi.k8s-local.yaml}"
RAY_VERSION="${STYX_RAY_VERSION:-2.60.0}"
KUBERAY_TAG="${STYX_KUBERAY_VERSION:-1.4.2}"
NODE=styx-k8s-node
BRIDGE=k8s0
BRIDGE_IP=172.31.0.1
POD_CIDR=172.31.0.0/16
SERVICE_CIDR=172.30.0.0/16
SERVICE_IP=172.30.0.1
ETCD_PORT=23790
APISERVER="https://$BRIDGE_IP:6443"
# Debian packages the node needs (sandbox/host-deps.sh installs what is missing): the etcd, the
# container runtime, CNI's plugins, conntrack for kube-proxy, openssl for the PKI, curl for probes
HOST_PKGS=(etcd-server containerd runc containernetworking-plugins conntrack openssl curl)
export RAY_USAGE_STATS_ENABLED=0

log() { printf '[%s] run-k8s %s\n' "$(date -u +%FT%TZ)" "$*" >&2; }
die() { log "ERROR $*"; exit 1; }

# ------------------------------------------------------------------------------- processes

pid_of() { local f="$RUN/$1.pid"; [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

# start NAME CMD...: a daemon in its own session, log in $LOGS/NAME.log, pid in $RUN/NAME.pid.
start() {
  local name="$1"; shift
  if pid_of "$name" >/dev/null; then log "INFO $name already running (pid $(pid_of "$name"))"; return 0; fi
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
  log "INFO started $name (pid $!, log $LOGS/$name.log)"
}

stop() {
  local name="$1" pid
  pid="$(pid_of "$name")" || { rm -f "$RUN/$name.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
  log "INFO stopped $name (pid $pid)"
}

# wait_for WHAT SECONDS CMD...: until CMD succeeds.
wait_for() {
  local what="$1" t="$2"; shift 2
  for _ in $(seq 1 "$t"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  die "$what not ready after ${t}s (logs: $LOGS)"
}

# --------------------------------------------------------------------------------------- PKI

pki() {
  [ -s "$PKI/admin.crt" ] && return 0
  log "INFO making the cluster's CA, certificates and service-account key pair in $PKI"
  mkdir -p "$PKI" && chmod 700 "$PKI"
  (
    cd "$PKI"
    umask 077
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=styx-k8s-ca" 2>/dev/null
    cat > apiserver.ext <<EXT
subjectAltName=IP:$BRIDGE_IP,IP:127.0.0.1,IP:$SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost
extendedKeyUsage=serverAuth
EXT
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 \
      -extfile apiserver.ext 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\n' > client.ext
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=styx-admin" 2>/dev/null
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 \
      -extfile client.ext 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr
  )
}

kubeconfig() { # kubeconfig FILE
  (umask 077 && cat > "$1" <<KC
apiVersion: v1
kind: Config
clusters:
- name: styx-k8s
  cluster:
    server: $APISERVER
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: styx-admin
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/admin.crt")
    client-key-data: $(base64 -w0 < "$PKI/admin.key")
contexts:
- name: styx-k8s
  context: {cluster: styx-k8s, user: styx-admin}
current-context: styx-k8s
KC
  )
}

# ----------------------------------------------------------------------------------- configs

write_configs() {
  mkdir -p "$STATE/cni/net.d" "$STATE/kubelet" "$STATE/containerd"
  cat > "$STATE/containerd.toml" <<TOML
version = 2
root = "$STATE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$RUN/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "styx.local/pause:3.10"
  # this VM refuses to lower oom_score_adj: without it every sandbox fails in runc (FACTS.md)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
TOML
  cat > "$STATE/cni/net.d/10-styx-k8s.conflist" <<CNI
{"cniVersion": "0.4.0", "name": "styx-k8s", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true, "mtu": 1400,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni/ipam",
            "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
CNI
  cat > "$STATE/kubelet.yaml" <<KUBELET
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$RUN/containerd.sock
clusterDNS: [$BRIDGE_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "100Mi", nodefs.available: "2%", imagefs.available: "2%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
maxPods: 30
KUBELET
  cat > "$STATE/Corefile" <<DNS
.:53 {
    bind $BRIDGE_IP
    errors
    cache 30
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_OUT styx-k8s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
}
DNS
}

bridge_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  # (the address list read whole: `ip | grep -q` fails under pipefail when grep stops reading first)
  case "$(ip -4 -o addr show dev "$BRIDGE")" in *" inet $BRIDGE_IP/"*) ;; *) ip addr add "$BRIDGE_IP/16" dev "$BRIDGE" ;; esac
  ip link set "$BRIDGE" mtu 1400 up
  sysctl -qw net.ipv4.ip_forward=1
  modprobe br_netfilter 2>/dev/null || true
}

# ------------------------------------------------------------------------------------- up/down

images() {
  local ctr=(ctr -a "$RUN/containerd.sock" -n k8s.io) tar ref
  for ref in "styx.local/pause:3.10 pause" "styx.local/ray:$RAY_VERSION ray $RAY_VERSION"; do
    read -r name what ver <<<"$ref"
    if grep -qx "docker.io/$name\|$name" <<<"$("${ctr[@]}" images ls -q)"; then continue; fi
    # shellcheck disable=SC2086
    tar="$(bash "$ROOT/toolchain/build-image-tar.sh" $what $ver)"
    "${ctr[@]}" images import --no-unpack=false "$tar" >/dev/null
    log "INFO imported $name ($tar)"
  done
}

# Everything the cluster needs, built and cached (host packages, the Kubernetes binaries, CoreDNS, the
# provider, KubeRay, the pause/Ray/operator images), nothing started: toolchain/test.sh runs this in
# the background, at low priority, while the other test layers run.
prepare() {
  [ "$(id -u)" = 0 ] || die "needs root (host packages, the images' chroot)"
  local parts="kube dns provider kuberay" bin
  [ "${STYX_K8S_KUBERAY:-1}" = 0 ] && parts="kube dns provider"
  bash "$ROOT/sandbox/host-deps.sh" "${HOST_PKGS[@]}"
  bin="$(STYX_K8S_PARTS="$parts" bash "$ROOT/toolchain/install-k8s.sh")"
  bash "$ROOT/toolchain/build-image-tar.sh" pause >/dev/null
  bash "$ROOT/toolchain/build-image-tar.sh" ray "$RAY_VERSION" >/dev/null
  if [ "${STYX_K8S_KUBERAY:-1}" != 0 ]; then
    bash "$ROOT/toolchain/build-image-tar.sh" binary kuberay-operator "$bin/kuberay-operator" "$KUBERAY_TAG" >/dev/null
  fi
  log "INFO prepared: $bin and the images"
}

cluster_up() {
  [ "$(id -u)" = 0 ] || die "needs root (containerd, kubelet, the bridge)"
  local bin kc t0=$SECONDS
  local parts="kube dns provider kuberay"
  [ "${STYX_K8S_KUBERAY:-1}" = 0 ] && parts="kube dns provider"
  bash "$ROOT/sandbox/host-deps.sh" "${HOST_PKGS[@]}"
  bin="$(STYX_K8S_PARTS="$parts" bash "$ROOT/toolchain/install-k8s.sh")"
  mkdir -p "$RUN" "$LOGS" "$(dirname "$KUBECONFIG_OUT")"
  pki
  kubeconfig "$KUBECONFIG_OUT"
  kc="$KUBECONFIG_OUT"
  write_configs
  bridge_up
  start etcd etcd --name styx-k8s --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
    --initial-cluster styx-k8s=http://127.0.0.1:23800
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
  start kube-apiserver "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address "$BRIDGE_IP" --advertise-address "$BRIDGE_IP" --secure-port 6443 \
    --service-cluster-ip-range "$SERVICE_CIDR" --tls-cert-file "$PKI/apiserver.crt" \
    --tls-private-key-file "$PKI/apiserver.key" --client-ca-file "$PKI/ca.crt" \
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --authorization-mode Node,RBAC --anonymous-auth=false --allow-privileged=true \
    --kubelet-preferred-address-types InternalIP \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount,LimitRanger,ResourceQuota,DefaultStorageClass
  wait_for kube-apiserver 120 "$bin/kubectl" --kubeconfig "$kc" get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" --kubeconfig "$kc" \
    --authentication-kubeconfig "$kc" --authorization-kubeconfig "$kc" --bind-address 127.0.0.1 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials --service-cluster-ip-range "$SERVICE_CIDR" --leader-elect=false
  start kube-scheduler "$bin/kube-scheduler" --kubeconfig "$kc" --authentication-kubeconfig "$kc" \
    --authorization-kubeconfig "$kc" --bind-address 127.0.0.1 --leader-elect=false
  start containerd containerd --config "$STATE/containerd.toml"
  wait_for containerd 30 ctr -a "$RUN/containerd.sock" version
  images
  start kubelet "$bin/kubelet" --config "$STATE/kubelet.yaml" --kubeconfig "$kc" --root-dir "$STATE/kubelet" \
    --hostname-override "$NODE" --node-ip "$BRIDGE_IP"
  start kube-proxy "$bin/kube-proxy" --kubeconfig "$kc" --hostname-override "$NODE" --proxy-mode iptables \
    --cluster-cidr "$POD_CIDR" --bind-address "$BRIDGE_IP" --metrics-bind-address 127.0.0.1:10249 \
    --healthz-bind-address 127.0.0.1:10256 --conntrack-max-per-core 0 --iptables-localhost-nodeports=false
  start coredns "$bin/coredns" -conf "$STATE/Corefile"
  wait_for "node $NODE" 120 "$bin/kubectl" --kubeconfig "$kc" wait --for=condition=Ready "node/$NODE" --timeout=1s
  [ "${STYX_K8S_KUBERAY:-1}" = 0 ] || kuberay_up "$bin" "$kc"
  log "INFO cluster up in $((SECONDS - t0)) s; kubeconfig: $kc"
  echo "$kc"
}

# The KubeRay operator as a Deployment in namespace styx-kuberay (its CRDs, ClusterRole, a
# ServiceAccount bound to it), from an image of the binary install-k8s.sh built.
kuberay_up() {
  local bin="$1" kc="$2" tar k
  k=("$bin/kubectl" --kubeconfig "$kc")
  tar="$(bash "$ROOT/toolchain/build-image-tar.sh" binary kuberay-operator "$bin/kuberay-operator" "$KUBERAY_TAG")"
  ctr -a "$RUN/containerd.sock" -n k8s.io images import "$tar" >/dev/null
  "${k[@]}" apply --server-side --force-conflicts -f "$bin/kuberay/crds/" >/dev/null
  "${k[@]}" apply --server-side --force-conflicts -f "$bin/kuberay/role.yaml" >/dev/null
  "${k[@]}" apply --server-side --force-conflicts -f - >/dev/null <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: styx-kuberay}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: kuberay-operator, namespace: styx-kuberay}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: styx-kuberay-operator}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kuberay-operator}
subjects: [{kind: ServiceAccount, name: kuberay-operator, namespace: styx-kuberay}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: kuberay-operator, namespace: styx-kuberay}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector: {matchLabels: {app.kubernetes.io/name: kuberay-operator}}
  template:
    metadata: {labels: {app.kubernetes.io/name: kuberay-operator}}
    spec:
      serviceAccountName: kuberay-operator
      securityContext: {runAsNonRoot: true, runAsUser: 65532}
      containers:
      - name: kuberay-operator
        image: styx.local/kuberay-operator:$KUBERAY_TAG
        imagePullPolicy: Never
        command: [/kuberay-operator]
        securityContext: {allowPrivilegeEscalation: false}
        resources:
          requests: {cpu: 50m, memory: 128Mi}
          limits: {memory: 512Mi}
YAML
  "${k[@]}" -n styx-kuberay rollout status deployment/kuberay-operator --timeout=180s >&2 \
    || die "the KubeRay operator did not become ready (kubectl -n styx-kuberay logs deploy/kuberay-operator)"
  log "INFO KubeRay operator v$KUBERAY_TAG running (namespace styx-kuberay)"
}

stop_pods() {
  local c=(ctr -a "$RUN/containerd.sock" -n k8s.io) id
  [ -S "$RUN/containerd.sock" ] && pid_of containerd >/dev/null || return 0
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do "${c[@]}" tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 1
  for id in $("${c[@]}" tasks ls -q 2>/dev/null); do "${c[@]}" tasks rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $("${c[@]}" containers ls -q 2>/dev/null); do "${c[@]}" containers rm "$id" >/dev/null 2>&1 || true; done
}

# delete_jumps TABLE CHAIN TARGET_RE: every rule of the built-in CHAIN whose target matches TARGET_RE (an
# awk regex), one at a time by rule number: the rules carry quoted comments ("kubernetes health check
# service ports", CNI's `name: "styx-k8s"`) that a word split of `iptables -S` would break. None (or no
# such chain in TABLE): nothing to do.
delete_jumps() {
  local t="$1" chain="$2" re="$3" n
  while n="$(iptables -t "$t" -L "$chain" -n --line-numbers 2>/dev/null | awk -v re="$re" 'NR > 2 && $2 ~ re {print $1; exit}')" \
      && [ -n "$n" ]; do
    iptables -t "$t" -D "$chain" "$n" || break
  done
}

cluster_down() {
  local bin
  bin="$(STYX_K8S_PARTS=kube bash "$ROOT/toolchain/install-k8s.sh" 2>/dev/null)" || bin=""
  stop coredns; stop kube-proxy
  [ -n "$bin" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1 || true
  stop kubelet
  stop_pods
  stop containerd; stop kube-scheduler; stop kube-controller-manager; stop kube-apiserver; stop etcd
  # the pod network: CNI's masquerade chains of our network (its rules name it: `name: "styx-k8s"`; one
  # per pod, left by pods that were killed rather than deleted), the bridge; the veths went with the pods
  local chain
  for chain in $(iptables -t nat -S POSTROUTING 2>/dev/null | awk '/name: \\"styx-k8s\\"/ && /-j CNI-/ {for(i=1;i<=NF;i++) if($i=="-j") print $(i+1)}' | sort -u); do
    delete_jumps nat POSTROUTING "^$chain\$"
    iptables -t nat -F "$chain" 2>/dev/null || true; iptables -t nat -X "$chain" 2>/dev/null || true
  done
  # what the kubelet leaves in iptables (KUBE-KUBELET-CANARY, KUBE-FIREWALL, ...): jumps, then chains
  local t c
  for t in nat filter mangle; do
    for c in INPUT OUTPUT FORWARD PREROUTING POSTROUTING; do delete_jumps "$t" "$c" '^KUBE-'; done
    for c in $(iptables -t "$t" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do iptables -t "$t" -F "$c" 2>/dev/null || true; done
    for c in $(iptables -t "$t" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do iptables -t "$t" -X "$c" 2>/dev/null || true; done
  done
  # the pods' network namespaces (containerd names them cni-<uuid>): those no process is in any more
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-[0-9a-f-]+$/ {print $1}'); do
    [ -n "$(ip netns pids "$ns" 2>/dev/null)" ] || ip netns delete "$ns" 2>/dev/null || true
  done
  ip link del "$BRIDGE" 2>/dev/null || true
  if [ -d "$STATE" ]; then
    grep -F " $STATE/" /proc/mounts | cut -d' ' -f2 | sort -r | while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
    rm -rf --one-file-system "$STATE"
  fi
  rm -f "$KUBECONFIG_OUT"
  log "INFO cluster down: $STATE, $BRIDGE, the pods' network namespaces and the kubeconfig removed"
}

status() {
  local p
  for p in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns; do
    if pid_of "$p" >/dev/null; then echo "$p: running (pid $(pid_of "$p"))"; else echo "$p: not running"; fi
  done
}

main() {
  cd "$ROOT"
  case "${1:-up}" in
    cluster) cluster_up ;;
    prepare) prepare ;;
    up)
      bash toolchain/setup.sh
      local kc; kc="$(cluster_up)"
      KUBECONFIG="$kc" PATH="$(bash toolchain/install-k8s.sh):$PATH" \
        .venv/bin/styx launch "$STACK_FILE" --stack "$STACK" --yes
      KUBECONFIG="$kc" .venv/bin/styx status --stack "$STACK" || true
      ;;
    down)
      if [ -s "$KUBECONFIG_OUT" ] && pid_of kube-apiserver >/dev/null; then
        KUBECONFIG="$KUBECONFIG_OUT" PATH="$(bash toolchain/install-k8s.sh):$PATH" \
          .venv/bin/styx down --stack "$STACK" --yes || log "WARN styx down failed; removing the cluster anyway"
      fi
      cluster_down
      ;;
    status) status ;;
    *) die "usage: run-k8s.sh [up|cluster|prepare|down|status] (got '$1')" ;;
  esac
}

main "$@"
