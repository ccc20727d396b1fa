#!/usr/bin/env bash
# sandboxctl.sh - host side of styx's `local` backend.
#
# Every cluster node becomes a "sandbox host" on this Linux machine: its own
# network namespace (veth on a per-cluster bridge, NAT to the outside), its own
# overlayfs root on top of a cached Debian bookworm base, and its own mount,
# PID and UTS namespaces, with sshd as PID 1.
#
# Usage: sandboxctl.sh SUBCOMMAND   (configured ONLY through environment variables)
#   preflight | base | net-up | net-down | node-up | node-down | status | image-create | image-delete
# See sandbox/README.md. Logs go to stderr, results to stdout.
# Exit codes: 0 ok, 1 runtime failure, 2 preflight/configuration error,
#             3 (test-only) InsufficientCapacity.
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SUB=${1:-help}

SUITE=bookworm
# Bump when the base recipe (not only the package list) changes.
BASE_RECIPE=2
BASE_PKGS=(openssh-server python3 python3-venv python3-pip sudo iproute2
  ca-certificates curl procps less)
HOST_CA=/etc/ssl/certs/ca-certificates.crt

CACHE_DIR=${STYX_CACHE_DIR:-/var/cache/styx}
STATE_DIR=${STYX_SB_STATE_DIR:-/var/lib/styx/sandbox}
LOCK_DIR=${STYX_SB_LOCK_DIR:-/run/lock/styx-sandbox}
MTU=${STYX_SB_MTU:-1400}

# ---------------------------------------------------------------- helpers --

log() {
  printf '[%s] sandbox %s %s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$SUB" "$1" "$2" >&2
}

die() { # die CODE MESSAGE
  log ERROR "$2"
  exit "$1"
}

need_env() { # need_env VAR...
  local v
  for v in "$@"; do
    [[ -n ${!v:-} ]] || die 2 "environment variable $v is required for '$SUB'"
  done
}

valid_cluster() {
  [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$ ]] ||
    die 2 "invalid cluster name '$1' (allowed: [A-Za-z0-9_.-], max 63 chars)"
}

valid_node() {
  [[ $1 =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] ||
    die 2 "invalid node name '$1' (must be a valid hostname label)"
}

valid_ifname() {
  [[ $1 =~ ^[A-Za-z0-9_.-]{1,15}$ ]] ||
    die 2 "invalid interface name '$1' (max 15 chars of [A-Za-z0-9_.-])"
}

valid_path() { # overlay options and mount lists cannot cope with these
  [[ $1 == /* && ! $1 =~ [[:space:],:\\] ]] ||
    die 2 "path '$1' must be absolute and contain no spaces, commas, colons or backslashes"
}

short_hash() { printf '%s' "$1" | sha256sum | cut -c1-"${2:-10}"; }

ns_name() { printf 'sx-%s' "$(short_hash "$1/$2")"; }   # 13 chars
veth_name() { printf 'sxh%s' "$(short_hash "$1/$2")"; } # 13 chars (IFNAMSIZ 15)

ip2int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  printf '%d' $(((10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d))
}

int2ip() {
  local n=$1
  printf '%d.%d.%d.%d' $(((n >> 24) & 255)) $(((n >> 16) & 255)) $(((n >> 8) & 255)) $((n & 255))
}

valid_ipv4() {
  local o re='^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$'
  [[ $1 =~ $re ]] || return 1
  for o in "${BASH_REMATCH[@]:1}"; do ((10#$o <= 255)) || return 1; done
}

mask_of() { # mask_of PREFIX
  if (($1 == 0)); then echo 0; else echo $(((0xffffffff << (32 - $1)) & 0xffffffff)); fi
}

# parse_cidr CIDR -> sets CIDR_NET (int, masked) and CIDR_LEN
parse_cidr() {
  local addr=${1%/*} len=32
  [[ $1 == */* ]] && len=${1#*/}
  valid_ipv4 "$addr" && [[ $len =~ ^[0-9]{1,2}$ ]] && ((len <= 32)) || return 1
  CIDR_LEN=$len
  CIDR_NET=$(($(ip2int "$addr") & $(mask_of "$len")))
}

overlaps() { # overlaps NET1 LEN1 NET2 LEN2
  local len=$(($2 < $4 ? $2 : $4)) m
  m=$(mask_of "$len")
  ((($1 & m) == ($3 & m)))
}

lock() { # lock FILE [TIMEOUT] -> sets LOCK_FD
  mkdir -p "$(dirname "$1")"
  exec {LOCK_FD}>"$1"
  flock -w "${2:-600}" "$LOCK_FD" || die 1 "timed out waiting for lock $1"
}

link_exists() { [[ -e /sys/class/net/$1 ]]; }

link_alias() { cat "/sys/class/net/$1/ifalias" 2>/dev/null || true; }

netns_exists() { [[ -e /run/netns/$1 ]]; }

json_str() {
  local s=$1
  s=${s//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/\\t}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/}
  printf '"%s"' "$s"
}

json_list() { # json_list ITEM... (items are strings)
  local out="" i
  for i in "$@"; do out+="${out:+, }$(json_str "$i")"; done
  printf '[%s]' "$out"
}

# Mount points (from our mount namespace) at or under a directory, deepest first.
mounts_under() {
  local dir=${1%/}
  awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
    awk '{ print length($0) " " $0 }' | sort -rn | cut -d' ' -f2-
}

umount_tree() { # umount_tree DIR : unmounts everything under DIR (lazy as fallback)
  local m
  while read -r m; do
    [[ -n $m ]] || continue
    if ! umount "$m" 2>/dev/null; then
      log WARN "umount $m busy, detaching lazily"
      umount -l "$m" || true
    fi
  done < <(mounts_under "$1")
}

# ------------------------------------------------------------- preflight --

check_root() {
  local uid
  uid=$(id -u)
  [[ $uid == 0 ]] ||
    die 2 "must run as root (current uid $uid); fix: re-run with sudo / as root"
}

check_tools() {
  local t missing=()
  for t in unshare ip iptables debootstrap nsenter setsid flock mount umount \
    pivot_root ss sha256sum ssh-keygen hostname awk; do
    command -v "$t" >/dev/null 2>&1 || missing+=("$t")
  done
  ((${#missing[@]} == 0)) ||
    die 2 "missing host tools: ${missing[*]}; fix: run sandbox/host-deps.sh (apt-get install -y debootstrap iptables iproute2 openssh-client procps psmisc util-linux)"
  ip netns list >/dev/null 2>&1 ||
    die 2 "'ip netns' does not work on this host; fix: install a recent iproute2 (sandbox/host-deps.sh)"
  unshare --help 2>/dev/null | grep -q -- '--kill-child' ||
    die 2 "unshare lacks --kill-child (util-linux too old); fix: upgrade util-linux"
  if ! grep -qw overlay /proc/filesystems; then
    modprobe overlay >/dev/null 2>&1 || true
    grep -qw overlay /proc/filesystems ||
      die 2 "overlayfs is not available in this kernel; fix: modprobe overlay (or use a kernel with CONFIG_OVERLAY_FS)"
  fi
  [[ -r /proc/self/ns/pid && -r /proc/self/ns/uts && -r /proc/self/ns/mnt ]] ||
    die 2 "kernel lacks PID/UTS/mount namespaces; fix: use a kernel with CONFIG_NAMESPACES"
}

# Subnet must not overlap any IPv4 address or route on the host that is not
# the bridge of this very cluster.
check_subnet() {
  local subnet=$1 cluster=${2:-} bridge=${3:-} ours=""
  parse_cidr "$subnet" || die 2 "invalid STYX_SB_SUBNET '$subnet' (expected e.g. 10.77.0.0/24)"
  local net=$CIDR_NET len=$CIDR_LEN
  ((len <= 30)) || die 2 "STYX_SB_SUBNET $subnet is too small (need at most /30)"
  if [[ -n $bridge && -n $cluster ]] && link_exists "$bridge"; then
    if [[ $(link_alias "$bridge") == "styx:$cluster" ]]; then
      ours=$bridge
    else
      die 2 "interface $bridge already exists and is not the bridge of styx cluster '$cluster'; fix: choose another STYX_SB_BRIDGE"
    fi
  fi
  local line dev cidr what
  local -a tok
  # addresses: "2: eth0    inet 192.0.2.2/24 ..."
  while read -r line; do
    read -ra tok <<<"$line"
    dev=${tok[1]}
    cidr=${tok[3]}
    [[ -n $ours && $dev == "$ours" ]] && continue
    parse_cidr "$cidr" || continue
    if overlaps "$net" "$len" "$CIDR_NET" "$CIDR_LEN"; then
      what="address $cidr on $dev"
      subnet_conflict "$subnet" "$what"
    fi
  done < <(ip -4 -o addr show 2>/dev/null)
  # routes in all tables (skip the default route)
  local i dest
  while read -r line; do
    read -ra tok <<<"$line"
    ((${#tok[@]})) || continue
    i=0
    case ${tok[0]} in
    unicast | local | broadcast | multicast | anycast | blackhole | unreachable | prohibit | throw | nat) i=1 ;;
    esac
    dest=${tok[$i]:-}
    [[ -n $dest && $dest != default ]] || continue
    dev=""
    for ((j = i; j < ${#tok[@]} - 1; j++)); do
      [[ ${tok[$j]} == dev ]] && dev=${tok[$((j + 1))]}
    done
    [[ -n $ours && $dev == "$ours" ]] && continue
    parse_cidr "$dest" || continue
    if overlaps "$net" "$len" "$CIDR_NET" "$CIDR_LEN"; then
      subnet_conflict "$subnet" "route $dest${dev:+ on $dev}"
    fi
  done < <(ip -4 route show table all 2>/dev/null)
}

subnet_conflict() {
  local hint="" n
  for n in $(seq 77 120); do
    if ! ip -4 -o addr show | grep -q " 10\.$n\." && ! ip -4 route show table all | grep -q "^10\.$n\."; then
      hint=" (e.g. 10.$n.0.0/24)"
      break
    fi
  done
  die 2 "STYX_SB_SUBNET $1 overlaps $2 already present on this host and not owned by this styx cluster; fix: choose a free STYX_SB_SUBNET$hint"
}

cmd_preflight() {
  check_root
  check_tools
  if [[ -n ${STYX_SB_SUBNET:-} ]]; then
    [[ -z ${STYX_SB_CLUSTER:-} ]] || valid_cluster "$STYX_SB_CLUSTER"
    [[ -z ${STYX_SB_BRIDGE:-} ]] || valid_ifname "$STYX_SB_BRIDGE"
    check_subnet "$STYX_SB_SUBNET" "${STYX_SB_CLUSTER:-}" "${STYX_SB_BRIDGE:-}"
  else
    log INFO "STYX_SB_SUBNET not set, subnet overlap check skipped"
  fi
  valid_path "$CACHE_DIR"
  valid_path "$STATE_DIR"
  log INFO "ok"
}

# ------------------------------------------------------------------ base --

# Mirror used by debootstrap: STYX_SB_MIRROR, else the host's apt sources.
host_mirror() { # host_mirror SUITE
  local suite=$1 f uris="" suites="" types="" line key val
  if [[ -n ${STYX_SB_MIRROR:-} && $suite == "$SUITE" ]]; then
    echo "$STYX_SB_MIRROR"
    return
  fi
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -r $f ]] || continue
    line=$(awk -v s="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i + 1) == s) { print $i; exit } }' "$f")
    [[ -n $line ]] && { echo "${line%/}"; return; }
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -r $f ]] || continue
    # deb822 stanzas, separated by blank lines
    while IFS= read -r line || [[ -n $line ]]; do
      if [[ -z ${line//[[:space:]]/} ]]; then
        if [[ " $types " == *" deb "* && " $suites " == *" $suite "* && -n $uris ]]; then
          uris=${uris%% *}
          while [[ $uris == */ ]]; do uris=${uris%/}; done
          echo "$uris"
          return
        fi
        uris="" suites="" types=""
        continue
      fi
      [[ $line == \#* ]] && continue
      key=${line%%:*}
      val=${line#*:}
      read -r val <<<"$val" || true
      case ${key,,} in
      uris) uris=$val ;;
      suites) suites=$val ;;
      types) types=$val ;;
      esac
    done < <(cat "$f" && echo)
  done
  if [[ $suite == *-security ]]; then
    echo "http://deb.debian.org/debian-security"
  else
    echo "http://deb.debian.org/debian"
  fi
}

host_apt_proxy() {
  command -v apt-config >/dev/null 2>&1 || return 0
  apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n1 |
    grep -Evi '^(direct|false)?$' || true
}

base_dir() {
  local h
  h=$(short_hash "$SUITE minbase recipe=$BASE_RECIPE $(printf '%s\n' "${BASE_PKGS[@]}" | sort | tr '\n' ' ')" 12)
  printf '%s/base/%s-%s' "$CACHE_DIR" "$SUITE" "$h"
}

# Split a PEM bundle into one cert per line (base64 bodies joined).
pem_bodies() {
  awk '/-----BEGIN CERTIFICATE-----/ { b = ""; on = 1; next }
       /-----END CERTIFICATE-----/ { if (on) print b; on = 0; next }
       on { gsub(/[ \r]/, ""); b = b $0 }' "$1"
}

install_host_ca() { # install_host_ca ROOTFS
  local root=$1 n=0 body
  [[ -r $HOST_CA ]] || { log WARN "host CA bundle $HOST_CA not found, skipping"; return 0; }
  mkdir -p "$root/usr/local/share/ca-certificates/styx-host"
  local theirs
  theirs=$(pem_bodies "$root/etc/ssl/certs/ca-certificates.crt" 2>/dev/null || true)
  # Certificates the host trusts but Debian does not (e.g. a TLS-intercepting
  # proxy CA) become local CAs, so update-ca-certificates keeps them.
  while read -r body; do
    [[ -n $body ]] || continue
    grep -qxF "$body" <<<"$theirs" && continue
    n=$((n + 1))
    {
      echo "-----BEGIN CERTIFICATE-----"
      fold -w 64 <<<"$body"
      echo "-----END CERTIFICATE-----"
    } >"$root/usr/local/share/ca-certificates/styx-host/host-$n.crt"
  done < <(pem_bodies "$HOST_CA")
  if ((n > 0)); then
    chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 ||
      log WARN "update-ca-certificates failed inside the base rootfs"
  fi
  install -m 0644 "$HOST_CA" "$root/etc/ssl/certs/ca-certificates.crt"
  log INFO "host CA bundle installed ($n host-only certificates)"
}

configure_base() { # configure_base ROOTFS MIRROR SECURITY_MIRROR PROXY
  local root=$1 mirror=$2 sec=$3 proxy=$4
  install_host_ca "$root"
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main
deb $mirror $SUITE-updates main
deb $sec $SUITE-security main
EOF
  if [[ -n $proxy ]]; then
    printf 'Acquire::http::Proxy "%s";\n' "$proxy" >"$root/etc/apt/apt.conf.d/01styx-proxy"
  fi
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"
  cat >>"$root/etc/environment" <<'EOF'
SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
PIP_CERT=/etc/ssl/certs/ca-certificates.crt
EOF
  local cfg=$root/etc/ssh/sshd_config
  sed -i -E '/^[[:space:]]*(PermitRootLogin|PasswordAuthentication|KbdInteractiveAuthentication|ChallengeResponseAuthentication|UseDNS|AcceptEnv)([[:space:]]|$)/Id' "$cfg"
  # sshd uses the first value it sees: put ours before the Include.
  {
    echo "# styx sandbox (local backend)"
    echo "PermitRootLogin prohibit-password"
    echo "PasswordAuthentication no"
    echo "KbdInteractiveAuthentication no"
    echo "UseDNS no"
    echo "HostKey /etc/ssh/ssh_host_ed25519_key"
    echo "HostKey /etc/ssh/ssh_host_ecdsa_key"
    echo "# AcceptEnv: none (no client environment is accepted)"
    echo
    cat "$cfg"
  } >"$cfg.new"
  mv "$cfg.new" "$cfg"
  rm -f "$root"/etc/ssh/ssh_host_*
  rm -f "$root"/etc/ssh/sshd_config.d/*.conf 2>/dev/null || true
  mkdir -p "$root/.styx-oldroot" "$root/root/.ssh"
  chmod 0700 "$root/root/.ssh"
  echo "styx-sandbox" >"$root/etc/hostname"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*_* 2>/dev/null || true
}

# Prints the rootfs path; builds it once (locked, cached).
ensure_base() {
  local dir
  dir=$(base_dir)
  if [[ -e $dir/.complete ]]; then
    echo "$dir/rootfs"
    return
  fi
  lock "$CACHE_DIR/base/.lock" 1800
  if [[ -e $dir/.complete ]]; then # someone else built it while we waited
    exec {LOCK_FD}>&-
    echo "$dir/rootfs"
    return
  fi
  check_tools
  local tmp=$dir.tmp mirror sec proxy t0=$SECONDS
  mirror=$(host_mirror "$SUITE")
  sec=$(host_mirror "$SUITE-security")
  proxy=$(host_apt_proxy)
  umount_tree "$tmp"
  rm -rf --one-file-system "$tmp" "$dir"
  mkdir -p "$tmp"
  local inc
  inc=$(IFS=,; echo "${BASE_PKGS[*]}")
  log INFO "building base rootfs $dir (debootstrap $SUITE from $mirror${proxy:+ via proxy $proxy}); log: $dir.log"
  # downloaded .debs are kept, so a rebuild (new recipe) does not refetch them
  mkdir -p "$CACHE_DIR/debs/$SUITE"
  if ! env ${proxy:+http_proxy=$proxy} debootstrap --variant=minbase --include="$inc" \
    --cache-dir="$CACHE_DIR/debs/$SUITE" \
    "$SUITE" "$tmp/rootfs" "$mirror" >"$dir.log" 2>&1; then
    umount_tree "$tmp"
    tail -n 15 "$dir.log" >&2 || true
    die 1 "debootstrap failed (see $dir.log)"
  fi
  umount_tree "$tmp"
  configure_base "$tmp/rootfs" "$mirror" "$sec" "$proxy"
  {
    echo "suite=$SUITE"
    echo "recipe=$BASE_RECIPE"
    echo "packages=${BASE_PKGS[*]}"
    echo "mirror=$mirror"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$tmp/manifest"
  touch "$tmp/.complete"
  mv "$tmp" "$dir"
  exec {LOCK_FD}>&-
  log INFO "base rootfs ready in $((SECONDS - t0)) s"
  echo "$dir/rootfs"
}

cmd_base() {
  check_root
  valid_path "$CACHE_DIR"
  ensure_base
}

# ------------------------------------------------------------- apt lists --

# apt lists once per cluster (setup.apt_cache: auto): this host runs `apt-get update` for the base
# rootfs's sources and keys (APT_CONFIG pointing into the rootfs, lists under $CACHE_DIR/apt/<key>/),
# unless lists.tar there is younger than STYX_SB_APT_REFRESH seconds (600), and packs the lists as
# lists.tar with a `styx-fetched` stamp dated when that update started. The nodes take them only while
# that stamp is younger than their STYX_APT_LISTS_MAX_AGE (lib.sh), else run apt-get update themselves.
# Never fails a cluster: a failed update is a warning (an older tarball is still printed; the nodes
# judge its age). Prints the tarball's path below $CACHE_DIR/apt (empty when there is none).
apt_lists_key() { # apt_lists_key ROOTFS: the sources, the keys' names and the architecture
  short_hash "$(cat "$1/etc/apt/sources.list" "$1"/etc/apt/sources.list.d/* 2>/dev/null
    ls "$1/etc/apt/trusted.gpg.d" 2>/dev/null
    dpkg --print-architecture 2>/dev/null)" 12
}

cmd_apt_lists() {
  check_root
  valid_path "$CACHE_DIR"
  local rootfs key dir refresh=${STYX_SB_APT_REFRESH:-600} t0
  [[ $refresh =~ ^[0-9]+$ ]] || die 2 "invalid STYX_SB_APT_REFRESH '$refresh' (seconds)"
  rootfs=$(ensure_base)
  key=$(apt_lists_key "$rootfs")
  dir=$CACHE_DIR/apt/$key
  mkdir -p "$dir"
  lock "$dir/.lock" 600
  if [[ -f $dir/lists.tar && -n $(find "$dir/lists.tar" -newermt "-$refresh seconds" 2>/dev/null) ]]; then
    log INFO "apt lists $key packed less than ${refresh}s ago: kept"
  else
    t0=$(date +%s)
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/.pack"
    printf '%s\n' "Dir::Etc \"$rootfs/etc/apt/\";" "Dir::Etc::Parts \"$rootfs/etc/apt/apt.conf.d/\";" \
      "Dir::State::Lists \"$dir/lists/\";" "Dir::State::status \"$rootfs/var/lib/dpkg/status\";" \
      "Dir::Cache \"$dir/cache/\";" "Dir::Log \"$dir/\";" >"$dir/apt.conf"
    if APT_CONFIG=$dir/apt.conf apt-get -q -o DPkg::Lock::Timeout=60 update >"$dir/update.log" 2>&1; then
      touch -d "@$t0" "$dir/.pack/styx-fetched"
      tar -cf "$dir/lists.tar.new" -C "$dir/lists" --exclude=./lock --exclude=./partial . \
        -C "$dir/.pack" ./styx-fetched
      mv -f "$dir/lists.tar.new" "$dir/lists.tar"
      log INFO "apt lists $key fetched in $(($(date +%s) - t0)) s ($(du -h "$dir/lists.tar" | cut -f1) packed)"
    else
      log WARN "apt-get update on this host failed (see $dir/update.log): the nodes run it themselves"
    fi
  fi
  exec {LOCK_FD}>&-
  [[ ! -f $dir/lists.tar ]] || echo "$key/lists.tar"
}

# --------------------------------------------------------------- network --

net_rules() { # net_rules SUBNET BRIDGE TAG -> lines "table chain spec..."
  local s=$1 b=$2 tag=$3
  echo "nat POSTROUTING -s $s ! -o $b -m comment --comment $tag -j MASQUERADE"
  echo "filter FORWARD -i $b -m comment --comment $tag -j ACCEPT"
  echo "filter FORWARD -o $b -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment $tag -j ACCEPT"
}

# Rules (as "-t TABLE -A ...") that carry a tag.
tagged_rules() { # tagged_rules TAG_REGEX
  local t
  for t in nat filter; do
    iptables -w -t "$t" -S 2>/dev/null |
      grep -E -- "--comment \"?$1\"?( |$)" | sed "s/^/-t $t /" || true
  done
}

# Delete every rule tagged TAG_REGEX; sets DROPPED to how many.
drop_rules() { # drop_rules TAG_REGEX
  local rule
  local -a args
  DROPPED=0
  while read -r rule; do
    [[ -n $rule ]] || continue
    rule=${rule//\"/} # iptables -S quotes the comment; names contain no spaces
    read -ra args <<<"${rule/ -A / -D }"
    if iptables -w "${args[@]}"; then
      DROPPED=$((DROPPED + 1))
    else
      log WARN "could not delete rule: $rule"
    fi
  done < <(tagged_rules "$1")
}

# A private node (ssh.jump): this machine may not open connections to it (replies to the node's own
# connections, e.g. to an apt proxy here, still pass); only the head (or a bastion) reaches it.
private_rule() { # private_rule CLUSTER NODE IP 0|1
  local tag="styx:$1:$2"
  local -a spec=(OUTPUT -d "$3/32" -m conntrack --ctstate NEW -m comment --comment "$tag"
    -j REJECT --reject-with icmp-net-unreachable)
  if [[ $4 == 1 ]]; then
    iptables -w -C "${spec[@]}" 2>/dev/null || iptables -w -I "${spec[@]}"
  else
    drop_rules "${tag//./\\.}"
  fi
}

cmd_net_up() {
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_SUBNET STYX_SB_BRIDGE
  local c=$STYX_SB_CLUSTER br=$STYX_SB_BRIDGE
  valid_cluster "$c"
  valid_ifname "$br"
  [[ $MTU =~ ^[0-9]+$ ]] || die 2 "invalid STYX_SB_MTU '$MTU'"
  check_tools
  lock "$LOCK_DIR/$c.net.lock"
  check_subnet "$STYX_SB_SUBNET" "$c" "$br"
  parse_cidr "$STYX_SB_SUBNET"
  local subnet gw tag="styx:$c"
  subnet="$(int2ip "$CIDR_NET")/$CIDR_LEN"
  gw=$(int2ip $((CIDR_NET + 1)))
  if ! link_exists "$br"; then
    ip link add name "$br" type bridge
    ip link set "$br" alias "$tag"
    log INFO "created bridge $br"
  fi
  ip link set "$br" mtu "$MTU"
  ip addr replace "$gw/$CIDR_LEN" dev "$br"
  ip link set "$br" up
  echo 1 >/proc/sys/net/ipv4/ip_forward
  local table chain spec added=0
  while read -r table chain spec; do
    # shellcheck disable=SC2086 # spec is a word list by construction
    if ! iptables -w -t "$table" -C "$chain" $spec 2>/dev/null; then
      # shellcheck disable=SC2086
      iptables -w -t "$table" -I "$chain" 1 $spec
      added=$((added + 1))
    fi
  done < <(net_rules "$subnet" "$br" "$tag")
  mkdir -p "$STATE_DIR/$c"
  cat >"$STATE_DIR/$c/net.env" <<EOF
STYX_SB_SUBNET=$subnet
STYX_SB_BRIDGE=$br
STYX_SB_GATEWAY=$gw
STYX_SB_MTU=$MTU
EOF
  log INFO "bridge $br $gw/$CIDR_LEN mtu $MTU up, NAT for $subnet ($added rules added)"
  echo "$gw"
}

cmd_net_down() {
  check_root
  need_env STYX_SB_CLUSTER
  local c=$STYX_SB_CLUSTER tag="styx:$STYX_SB_CLUSTER" did=0 rule br
  valid_cluster "$c"
  lock "$LOCK_DIR/$c.net.lock"
  drop_rules "${tag//./\\.}"
  did=$((did + DROPPED))
  for br in /sys/class/net/*; do
    br=${br##*/}
    [[ -d /sys/class/net/$br/bridge && $(link_alias "$br") == "$tag" ]] || continue
    ip link del "$br"
    log INFO "removed bridge $br"
    did=$((did + 1))
  done
  if compgen -G "$STATE_DIR/$c/*/node.env" >/dev/null; then
    log WARN "nodes of cluster $c still exist (run node-down for them); they lost their network"
  fi
  if [[ -n ${STYX_SB_BRIDGE:-} ]] && link_exists "$STYX_SB_BRIDGE"; then
    log WARN "bridge $STYX_SB_BRIDGE exists but is not tagged $tag; left alone"
  fi
  if [[ -e $STATE_DIR/$c/net.env ]]; then
    rm -f "$STATE_DIR/$c/net.env"
    did=$((did + 1))
  fi
  rmdir "$STATE_DIR/$c" 2>/dev/null || true
  if ((did == 0)); then log INFO "nothing to do"; else log INFO "network of cluster $c removed ($did objects)"; fi
}

# ------------------------------------------------------------------ nodes --

# Is the recorded init process alive and inside the node's netns?
node_running() { # node_running DIR NS
  local pid
  pid=$(cat "$1/init.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -e /proc/$pid ]] || return 1
  netns_exists "$2" || return 1
  [[ $(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) == "$(stat -L -c %i "/run/netns/$2")" ]]
}

# Write a file inside ROOT without following symlinks planted in the node. (Text files: the content
# goes through a shell variable; the parent is found without `dirname`, the temp file is made by bash
# itself and gets its mode from the umask: node-up writes ~10 files, and 32 node-ups side by side on 2
# cores pay for every process they start; bench/README.md §19.) The temp name holds 64 random bits
# ($SRANDOM) and is opened with O_EXCL (noclobber), so nothing planted in the node can be followed.
put_file() { # put_file ROOT RELPATH MODE  (content on stdin; MODE 0600 or 0644)
  local root=$1 rel=$2 mode=$3 d="" part tmp parent=. data="" um rc=0
  local -a parts
  case $mode in
  0600) um=077 ;;
  0644) um=022 ;;
  *) die 1 "put_file: mode $mode is not 0600 or 0644" ;;
  esac
  [[ $rel == */* ]] && parent=${rel%/*}
  IFS=/ read -ra parts <<<"$parent"
  for part in "${parts[@]}"; do
    [[ -n $part && $part != . ]] || continue
    d+="/$part"
    [[ -L $root$d ]] && die 1 "refusing to write $rel: $root$d is a symlink"
    [[ -d $root$d ]] || mkdir -m 0755 "$root$d"
  done
  : "${SRANDOM:?put_file needs bash 5.1 or newer (SRANDOM)}"
  tmp="$root$d/.styx.$SRANDOM$SRANDOM"
  IFS= read -r -d '' data || true
  UMASK0=${UMASK0:-$(umask)}
  set -C
  umask "$um"
  printf '%s' "$data" >"$tmp" || rc=$?
  umask "$UMASK0"
  set +C
  ((rc == 0)) || die 1 "cannot write $rel in $root"
  mv -f "$tmp" "$root/$rel"
}

# Install KEY as the node's ed25519 host key; false when it already is.
install_host_key() { # install_host_key ROOT NODE KEY
  local root=$1 n=$2 key=$3 kd pub
  if [[ -s $root/etc/ssh/ssh_host_ed25519_key ]] && [[ $(<"$root/etc/ssh/ssh_host_ed25519_key") == "$key" ]]; then
    return 1
  fi
  kd=$(mktemp -d)
  (umask 077 && printf '%s\n' "$key" >"$kd/key")
  pub=$(ssh-keygen -y -f "$kd/key") || { rm -rf "$kd"; die 2 "node $n: the SSH host key on stdin is not usable"; }
  rm -rf "$kd"
  printf '%s\n' "$key" | put_file "$root" etc/ssh/ssh_host_ed25519_key 0600
  printf '%s root@%s\n' "$pub" "$n" | put_file "$root" etc/ssh/ssh_host_ed25519_key.pub 0644
}

check_refuse() {
  local f=${STYX_SB_REFUSE_FILE:-} zone=${STYX_SB_ZONE:-}
  [[ -n $f && -n $zone && -f $f ]] || return 0
  # the file lists zones separated by newlines, blanks or commas
  if tr -s '[:blank:],' '[\n*]' <"$f" | grep -qxF -- "$zone"; then
    die 3 "InsufficientCapacity: zone $zone has no capacity for ${STYX_SB_NODE:-node}"
  fi
}

# Is something listening on TCP port 22 in the network namespace of PID? (its /proc/PID/net/tcp{,6}:
# local port 0016, state 0A = LISTEN; what `ip netns exec NS ss -Hltn 'sport = :22'` tells)
sshd_listening() { # sshd_listening PID
  local f _sl local_addr _rem st _rest
  for f in "/proc/$1/net/tcp" "/proc/$1/net/tcp6"; do
    [[ -r $f ]] || continue
    while read -r _sl local_addr _rem st _rest; do
      [[ $local_addr == *:0016 && $st == 0A ]] && return 0
    done <"$f"
  done
  return 1
}

# Start sshd as PID 1 of fresh mount/PID/UTS namespaces inside the netns (node-up, node-start).
start_init() { # start_init DIR NS NODE IP SHM T0 [DOCKERDIR CGROUPS]
  local dir=$1 ns=$2 n=$3 ipaddr=$4 shm=$5 t0=$6 dockerdir=${7:-} cgroups=${8:-} m=$1/merged
  : >"$dir/sshd.log"
  setsid ip netns exec "$ns" \
    unshare --mount --pid --uts --fork --kill-child --mount-proc="$m/proc" \
    env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    STYX_I_ROOT="$m" STYX_I_NODE="$n" STYX_I_SHM="$shm" STYX_I_DOCKER="$dockerdir" STYX_I_CGROUPS="$cgroups" \
    "$SELF" _init >>"$dir/sshd.log" 2>&1 </dev/null {LOCK_FD}>&- &
  local launcher=$! init="" i
  echo "$launcher" >"$dir/launcher.pid"
  # both waits read /proc (no process started per poll: 16 node-ups poll side by side)
  for ((i = 0; i < 250; i++)); do
    init=""
    read -r init _ <"/proc/$launcher/task/$launcher/children" 2>/dev/null || true # no newline: read fails, sets init
    [[ -n $init ]] && break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.02
  done
  [[ -n $init ]] || { tail -n 20 "$dir/sshd.log" >&2 || true; die 1 "node $n: namespace init did not start"; }
  echo "$init" >"$dir/init.pid"
  for ((i = 0; i < 500; i++)); do
    if sshd_listening "$init"; then
      log INFO "node $n up: $ipaddr (netns $ns, pid $init, /dev/shm $shm) in $((SECONDS - t0)) s"
      echo "$ipaddr"
      return 0
    fi
    if ! kill -0 "$init" 2>/dev/null; then break; fi
    sleep 0.02
  done
  tail -n 20 "$dir/sshd.log" >&2 || true
  die 1 "node $n: sshd is not listening on $ipaddr:22 (log: $dir/sshd.log)"
}

# Kill every process of the node (its PID-namespace init, then anything left in its netns) and
# the launcher; echo how many kills it took.
kill_node() { # kill_node DIR NS
  local dir=$1 ns=$2 did=0 pid i pids
  if node_running "$dir" "$ns"; then
    pid=$(cat "$dir/init.pid")
    kill -KILL "$pid" 2>/dev/null && did=$((did + 1))
  fi
  if netns_exists "$ns"; then
    for ((i = 0; i < 50; i++)); do
      pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
      [[ -n ${pids// /} ]] || break
      # shellcheck disable=SC2086
      kill -KILL $pids 2>/dev/null || true
      did=$((did + 1))
      sleep 0.1
    done
  fi
  pid=$(cat "$dir/launcher.pid" 2>/dev/null || true)
  if [[ $pid =~ ^[0-9]+$ ]] && grep -qa "$SELF" "/proc/$pid/cmdline" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  echo "$did"
}

cmd_node_up() {
  check_refuse # test hook: must fail before anything is created
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_NODE STYX_SB_IP STYX_SB_PUBKEY
  local c=$STYX_SB_CLUSTER n=$STYX_SB_NODE ipaddr=$STYX_SB_IP
  valid_cluster "$c"
  valid_node "$n"
  valid_path "$STATE_DIR"
  valid_path "$CACHE_DIR"
  valid_ipv4 "$ipaddr" || die 2 "invalid STYX_SB_IP '$ipaddr'"
  local dir=$STATE_DIR/$c/$n ns vh h
  h=$(short_hash "$c/$n") # what ns_name and veth_name hash: one sha256sum, not two
  UMASK0=$(umask)         # put_file's files get their mode from the umask; it restores this one
  ns=sx-$h vh=sxh$h
  # defaults from net-up's record
  local netenv=$STATE_DIR/$c/net.env rec_bridge="" rec_gw="" rec_subnet="" key value
  if [[ -r $netenv ]]; then
    while IFS='=' read -r key value; do
      case $key in
      STYX_SB_BRIDGE) rec_bridge=$value ;;
      STYX_SB_GATEWAY) rec_gw=$value ;;
      STYX_SB_SUBNET) rec_subnet=$value ;;
      esac
    done <"$netenv"
  fi
  local br=${STYX_SB_BRIDGE:-$rec_bridge} gw=${STYX_SB_GATEWAY:-$rec_gw}
  local prefix=${STYX_SB_PREFIX:-${rec_subnet#*/}} shm=${STYX_SB_SHM_SIZE:-2g}
  prefix=${prefix:-24}
  [[ -n $br ]] || die 2 "STYX_SB_BRIDGE is not set and cluster $c has no network (run net-up first)"
  valid_ifname "$br"
  valid_ipv4 "$gw" || die 2 "invalid or missing STYX_SB_GATEWAY '$gw'"
  if ! [[ $prefix =~ ^[0-9]+$ ]] || ((prefix < 8 || prefix > 30)); then
    die 2 "invalid STYX_SB_PREFIX '$prefix'"
  fi
  [[ $shm =~ ^[0-9]+[kKmMgG%]?$ ]] || die 2 "invalid STYX_SB_SHM_SIZE '$shm' (e.g. 2g, 512m)"
  [[ $MTU =~ ^[0-9]+$ ]] || die 2 "invalid STYX_SB_MTU '$MTU'"
  if parse_cidr "$ipaddr/$prefix"; then
    local host=$(($(ip2int "$ipaddr") - CIDR_NET)) last=$(((1 << (32 - prefix)) - 1))
    ((host > 0 && host < last)) || die 2 "STYX_SB_IP $ipaddr is the network or broadcast address of /$prefix"
    [[ $ipaddr != "$gw" ]] || die 2 "STYX_SB_IP $ipaddr is the gateway address"
    parse_cidr "$gw/$prefix"
    (($(ip2int "$ipaddr") - host == CIDR_NET)) || die 2 "STYX_SB_IP $ipaddr and STYX_SB_GATEWAY $gw are not in the same /$prefix"
  fi
  local pubkey=$STYX_SB_PUBKEY
  [[ $pubkey != *$'\n'* && $pubkey =~ ^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+\ [A-Za-z0-9+/=]+ ]] ||
    die 2 "STYX_SB_PUBKEY is not an OpenSSH public key line"
  local private=${STYX_SB_PRIVATE:-0}
  [[ $private == 0 || $private == 1 ]] || die 2 "STYX_SB_PRIVATE: '$private' is not allowed (allowed: 0, 1)"
  local docker=${STYX_SB_DOCKER:-0}
  [[ $docker == 0 || $docker == 1 ]] || die 2 "STYX_SB_DOCKER: '$docker' is not allowed (allowed: 0, 1)"
  # STYX_SB_HOST_KEY=stdin: the node's ed25519 SSH host key (OpenSSH private key) comes on stdin,
  # never in the environment or a command line; it replaces the one node-up would generate.
  local hostkey=""
  if [[ ${STYX_SB_HOST_KEY:-} == stdin ]]; then
    hostkey=$(cat)
    [[ $hostkey == "-----BEGIN OPENSSH PRIVATE KEY-----"*"-----END OPENSSH PRIVATE KEY-----" ]] ||
      die 2 "STYX_SB_HOST_KEY=stdin: stdin is not an OpenSSH private key"
  elif [[ -n ${STYX_SB_HOST_KEY:-} ]]; then
    die 2 "STYX_SB_HOST_KEY: '${STYX_SB_HOST_KEY}' is not allowed (allowed: stdin, or unset)"
  fi

  lock "$LOCK_DIR/$c.$n.lock"
  if node_running "$dir" "$ns"; then
    if [[ -n $hostkey ]] && install_host_key "$dir/merged" "$n" "$hostkey"; then
      kill -HUP "$(cat "$dir/init.pid")" # sshd re-executes itself and loads the new key
      log INFO "node $n of cluster $c: new SSH host key installed, sshd reloaded"
    fi
    private_rule "$c" "$n" "$ipaddr" "$private"
    log INFO "node $n of cluster $c already running, skipping (pid $(cat "$dir/init.pid"))"
    echo "$ipaddr"
    return 0
  fi
  link_exists "$br" || die 1 "bridge $br does not exist; run net-up for cluster $c first"
  [[ $(link_alias "$br") == "styx:$c" ]] || die 1 "bridge $br is not the bridge of cluster $c"
  check_tools
  local t0=$SECONDS rootfs
  if [[ -n ${STYX_SB_IMAGE:-} ]]; then # a node's `image`: an image made by image-create, not the base
    valid_image "$STYX_SB_IMAGE"
    rootfs=$(image_rootfs "$STYX_SB_IMAGE")
  else
    rootfs=$(ensure_base)
  fi
  valid_path "$rootfs"

  mkdir -p "$dir" "$STATE_DIR/.netns"
  printf '%s %s\n' "$c" "$n" >"$STATE_DIR/.netns/$ns"
  cat >"$dir/node.env" <<EOF
STYX_SB_CLUSTER=$c
STYX_SB_NODE=$n
NETNS=$ns
VETH=$vh
STYX_SB_IP=$ipaddr
STYX_SB_PREFIX=$prefix
STYX_SB_GATEWAY=$gw
STYX_SB_BRIDGE=$br
STYX_SB_SHM_SIZE=$shm
STYX_SB_DOCKER=$docker
ROOTFS=$rootfs
EOF

  # network namespace + veth
  netns_exists "$ns" || ip netns add "$ns"
  if ! link_exists "$vh"; then
    ip netns exec "$ns" ip link del eth0 2>/dev/null || true
    ip link add "$vh" mtu "$MTU" type veth peer name eth0 mtu "$MTU" netns "$ns"
  fi
  ip link set "$vh" alias "styx:$c:$n"
  ip link set "$vh" mtu "$MTU" master "$br" up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 mtu "$MTU" up
  ip -n "$ns" addr replace "$ipaddr/$prefix" dev eth0
  ip -n "$ns" route replace default via "$gw" dev eth0
  private_rule "$c" "$n" "$ipaddr" "$private"

  # root filesystem: overlay on the shared base
  local m=$dir/merged
  mkdir -p "$dir/upper" "$dir/work" "$m"
  if ! mountpoint -q "$m"; then
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$dir/upper,workdir=$dir/work" "$m"
  fi
  put_file "$m" root/.ssh/authorized_keys 0600 <<<"$pubkey"
  chmod 0700 "$m/root/.ssh"
  put_file "$m" etc/hostname 0644 <<<"$n"
  {
    echo "127.0.0.1 localhost"
    echo "::1 localhost ip6-localhost ip6-loopback"
    local hl has_self=0
    local -a hw
    while IFS= read -r hl; do
      read -ra hw <<<"${hl%%#*}"
      hl="${hw[*]}"
      [[ -n $hl ]] || continue
      [[ $hl =~ ^[0-9A-Fa-f.:]+(\ [A-Za-z0-9._-]+)+$ ]] || { log WARN "ignoring hosts line '$hl'"; continue; }
      [[ " $hl " == *" $n "* ]] && has_self=1
      echo "$hl"
    done <<<"${STYX_SB_HOSTS:-}"
    ((has_self)) || echo "$ipaddr $n"
  } | put_file "$m" etc/hosts 0644
  local resolv=/etc/resolv.conf
  if grep -qE '^nameserver[[:space:]]+127\.' /etc/resolv.conf 2>/dev/null &&
    [[ -r /run/systemd/resolve/resolv.conf ]]; then
    resolv=/run/systemd/resolve/resolv.conf
  fi
  put_file "$m" etc/resolv.conf 0644 <"$resolv"
  # open-file limit for SSH sessions (pam_limits would reset the soft limit
  # to 1024); Ray wants 65536, capped by what this host lets us have.
  local nofile
  nofile=$(ulimit -Hn)
  [[ $nofile =~ ^[0-9]+$ ]] && ((nofile < 65536)) || nofile=65536
  printf '%s %s nofile %s\n' '*' soft "$nofile" '*' hard "$nofile" root soft "$nofile" root hard "$nofile" |
    put_file "$m" etc/security/limits.d/90-styx-nofile.conf 0644
  [[ -z $hostkey ]] || install_host_key "$m" "$n" "$hostkey" || true
  local kt
  for kt in ed25519 ecdsa; do # no RSA: keygen costs 1-2 s per node
    if [[ ! -s $m/etc/ssh/ssh_host_${kt}_key ]]; then
      local kd
      kd=$(mktemp -d)
      ssh-keygen -q -t "$kt" -N '' -C "root@$n" -f "$kd/key"
      put_file "$m" "etc/ssh/ssh_host_${kt}_key" 0600 <"$kd/key"
      put_file "$m" "etc/ssh/ssh_host_${kt}_key.pub" 0644 <"$kd/key.pub"
      rm -rf "$kd"
    fi
  done
  mkdir -p "$m/.styx-oldroot"
  # STYX_SB_DOCKER=1: what a Docker daemon needs and an overlay root lacks (see docker_mounts)
  local dockerdir="" cgroups=""
  if [[ $docker == 1 ]]; then
    dockerdir=$dir/docker
    cgroups=$(host_cgroups)
    mkdir -p "$dockerdir" "$m/var/lib/docker"
  fi

  start_init "$dir" "$ns" "$n" "$ipaddr" "$shm" "$t0" "$dockerdir" "$cgroups"
}

# The host's cgroup mounts under /sys/fs/cgroup, one "RELPATH FSTYPE FS-OPTIONS" a line ("." for
# /sys/fs/cgroup itself). `ip netns exec` gives the node a fresh /sys without them.
host_cgroups() {
  findmnt -rn -o TARGET,FSTYPE,FS-OPTIONS | awk '$1 == "/sys/fs/cgroup" { print ".", $2, $3 }
    index($1, "/sys/fs/cgroup/") == 1 && ($2 == "cgroup" || $2 == "cgroup2") { print substr($1, 16), $2, $3 }'
}

# STYX_SB_DOCKER=1 (the node runs a Docker daemon): the host's cgroup hierarchies (v1 controllers,
# cgroup2, or both) mounted again at the node's /sys/fs/cgroup, and a /var/lib/docker on the host's
# own filesystem (a per-node dir, gone with node-down), since overlay2 cannot stack on the node's
# overlay root. iptables needs nothing here: the node's network namespace has its own tables.
docker_mounts() { # docker_mounts ROOT DOCKER_DIR CGROUPS  (in the node's mount namespace)
  local m=$1 rel fstype opts
  while read -r rel fstype opts; do
    [[ -n $rel ]] || continue
    case $fstype in
    tmpfs) mount -t tmpfs -o mode=0755,nosuid,nodev,noexec,size=1m cgroup-root "$m/sys/fs/cgroup" ;;
    cgroup | cgroup2)
      mkdir -p "$m/sys/fs/cgroup/$rel"
      mount -t "$fstype" -o "$opts,nosuid,nodev,noexec" cgroup "$m/sys/fs/cgroup/$rel"
      ;;
    esac
  done <<<"$3"
  mount --bind "$2" "$m/var/lib/docker"
}

# Runs as PID 1 of the node's namespaces (hidden subcommand).
cmd_init() {
  local m=$STYX_I_ROOT
  hostname "$STYX_I_NODE"
  # Ray wants many open files: raise the hard limit where the host allows it
  ulimit -Hn 65536 2>/dev/null || true
  ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
  mount --bind /dev "$m/dev" # not --rbind: own shm/pts below
  mount -t tmpfs -o "size=$STYX_I_SHM,mode=1777,nosuid,nodev" shm "$m/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5 devpts "$m/dev/pts"
  mount --bind "$m/dev/pts/ptmx" "$m/dev/ptmx"
  # sysfs of this netns, read-only (psutil/ray read it; cgroup files optional)
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$m/sys"
  mount -t tmpfs -o mode=0755,nosuid,nodev,size=256m tmpfs "$m/run"
  [[ -z ${STYX_I_DOCKER:-} ]] || docker_mounts "$m" "$STYX_I_DOCKER" "${STYX_I_CGROUPS:-}"
  mkdir -p "$m/run/sshd" "$m/run/lock"
  chmod 1777 "$m/run/lock"
  cd "$m"
  pivot_root . .styx-oldroot
  cd /
  /bin/umount -l /.styx-oldroot
  exec /usr/sbin/sshd -D -e
}

# exit 0: the node's sandbox runs; 1: it does not (gone); 2: cannot tell; 3: stopped (node-stop)
cmd_node_alive() {
  need_env STYX_SB_CLUSTER STYX_SB_NODE
  valid_cluster "$STYX_SB_CLUSTER"
  valid_node "$STYX_SB_NODE"
  local dir=$STATE_DIR/$STYX_SB_CLUSTER/$STYX_SB_NODE
  if node_running "$dir" "$(ns_name "$STYX_SB_CLUSTER" "$STYX_SB_NODE")"; then
    echo "running"
    return 0
  fi
  if [[ -e $dir/stopped && -d $dir/upper ]]; then
    echo "stopped"
    return 3
  fi
  echo "gone"
  return 1
}

# Stop a node: every process ends, its root (overlay upper), addresses and host keys stay; node-start
# brings it back. Stopping a stopped node does nothing.
cmd_node_stop() {
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_NODE
  local c=$STYX_SB_CLUSTER n=$STYX_SB_NODE
  valid_cluster "$c"
  valid_node "$n"
  local dir=$STATE_DIR/$c/$n ns
  ns=$(ns_name "$c" "$n")
  [[ -r $dir/node.env && -d $dir/upper ]] || die 1 "node $n of cluster $c does not exist (nothing to stop)"
  lock "$LOCK_DIR/$c.$n.lock"
  if [[ -e $dir/stopped ]] && ! node_running "$dir" "$ns"; then
    log INFO "node $n of cluster $c already stopped, skipping"
    return 0
  fi
  kill_node "$dir" "$ns" >/dev/null
  if [[ -n $(mounts_under "$dir") ]]; then umount_tree "$dir"; fi
  [[ -z $(mounts_under "$dir") ]] || die 1 "could not unmount everything under $dir"
  rm -f "$dir/init.pid" "$dir/launcher.pid"
  date -u +%Y-%m-%dT%H:%M:%SZ >"$dir/stopped"
  log INFO "node $n of cluster $c stopped (root kept in $dir/upper)"
}

# Start a stopped node again from its kept root: same address, host keys and files.
cmd_node_start() {
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_NODE
  local c=$STYX_SB_CLUSTER n=$STYX_SB_NODE
  valid_cluster "$c"
  valid_node "$n"
  local dir=$STATE_DIR/$c/$n ns ipaddr shm rootfs
  ns=$(ns_name "$c" "$n")
  [[ -r $dir/node.env && -d $dir/upper ]] || die 1 "node $n of cluster $c does not exist (nothing to start)"
  ipaddr=$(sed -n 's/^STYX_SB_IP=//p' "$dir/node.env")
  shm=$(sed -n 's/^STYX_SB_SHM_SIZE=//p' "$dir/node.env")
  rootfs=$(sed -n 's/^ROOTFS=//p' "$dir/node.env")
  valid_path "$rootfs"
  [[ -d $rootfs ]] || die 1 "node $n: its base image $rootfs is gone"
  netns_exists "$ns" || die 1 "node $n: its network namespace $ns is gone (make the node again: styx launch)"
  lock "$LOCK_DIR/$c.$n.lock"
  if node_running "$dir" "$ns"; then
    rm -f "$dir/stopped"
    log INFO "node $n of cluster $c already running, skipping"
    return 0
  fi
  local t0=$SECONDS m=$dir/merged
  if ! mountpoint -q "$m"; then
    mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$dir/upper,workdir=$dir/work" "$m"
  fi
  local dockerdir="" cgroups=""
  if [[ -d $dir/docker ]]; then  # a docker node (local.docker): its daemon's dir and the cgroups again
    dockerdir=$dir/docker
    cgroups=$(host_cgroups)
  fi
  start_init "$dir" "$ns" "$n" "$ipaddr" "$shm" "$t0" "$dockerdir" "$cgroups" >/dev/null
  rm -f "$dir/stopped"
  log INFO "node $n of cluster $c started"
}

cmd_node_down() {
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_NODE
  local c=$STYX_SB_CLUSTER n=$STYX_SB_NODE
  valid_cluster "$c"
  valid_node "$n"
  local dir=$STATE_DIR/$c/$n ns vh did=0
  ns=$(ns_name "$c" "$n")
  vh=$(veth_name "$c" "$n")
  lock "$LOCK_DIR/$c.$n.lock"
  # 1. processes: the PID-namespace init (kills the whole namespace), then
  #    anything else still living in the netns.
  did=$(kill_node "$dir" "$ns")
  # 2. mounts under the node's state dir
  if [[ -n $(mounts_under "$dir") ]]; then
    umount_tree "$dir"
    did=$((did + 1))
  fi
  [[ -z $(mounts_under "$dir") ]] || die 1 "could not unmount everything under $dir"
  # 3. network
  if link_exists "$vh"; then
    ip link del "$vh" 2>/dev/null || true
    did=$((did + 1))
  fi
  if netns_exists "$ns"; then
    ip netns del "$ns"
    did=$((did + 1))
  fi
  drop_rules "styx:${c//./\\.}:$n" # a private node's rule
  did=$((did + DROPPED))
  # 4. state
  if [[ -e $dir ]]; then
    rm -rf --one-file-system "$dir"
    did=$((did + 1))
  fi
  rm -f "$STATE_DIR/.netns/$ns"
  rmdir "$STATE_DIR/.netns" "$STATE_DIR/$c" 2>/dev/null || true
  if ((did == 0)); then
    log INFO "node $n of cluster $c: nothing to do"
  else
    log INFO "node $n of cluster $c removed"
  fi
}

# ------------------------------------------------------------------ images --
# A node's root as its phases left it, as the root of later nodes (`styx image create`; a node's
# `image` on cloud local): $CACHE_DIR/images/NAME/{rootfs,manifest,.complete}. The image is the node's
# merged view (base + its overlay) copied by tar, without what belongs to that node or its cluster
# (IMAGE_STRIP: never written into the image, and removed again after the copy). A node from an image
# mounts its overlay on the image's rootfs instead of the base (node-up STYX_SB_IMAGE); node-up writes
# its own authorized key, host keys, hostname and hosts as on the base.
IMAGE_STRIP=(
  root/.ssh/authorized_keys 'home/*/.ssh/authorized_keys' # the cluster's SSH key
  'etc/ssh/ssh_host_*'                                     # the node's host keys
  'etc/styx/*'                                             # env vars, secret env, Ray's token and client env
  'var/log/styx/*'                                         # the phases' logs
  'tmp/*' 'var/tmp/*'                                      # Ray's sessions, sockets and spill files
  var/lib/styx/generations var/lib/styx/autostop var/lib/styx/file_sync
  var/lib/styx/file_sync.manifest var/lib/styx/ray.started # the node's phase records
  root/.cache root/.bash_history                           # pip/uv caches, shell history
)

valid_image() {
  [[ $1 =~ ^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$ ]] ||
    die 2 "invalid image name '$1' (allowed: lowercase letters, digits and '-', max 63 chars)"
}

image_dir() { printf '%s/images/%s' "$CACHE_DIR" "$1"; }

# The rootfs a node from image NAME mounts its overlay on (node-up STYX_SB_IMAGE).
image_rootfs() { # image_rootfs NAME
  local d
  d=$(image_dir "$1")
  [[ -e $d/.complete && -d $d/rootfs ]] ||
    die 2 "no local image '$1' in $CACHE_DIR/images (made with: styx image create --node NODE --name $1)"
  printf '%s/rootfs' "$d"
}

cmd_image_create() {
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_NODE STYX_SB_IMAGE
  local c=$STYX_SB_CLUSTER n=$STYX_SB_NODE name=$STYX_SB_IMAGE
  valid_cluster "$c"
  valid_node "$n"
  valid_image "$name"
  valid_path "$CACHE_DIR"
  local dir=$STATE_DIR/$c/$n d tmp p
  d=$(image_dir "$name")
  tmp=$d.tmp
  [[ ! -e $d/.complete ]] || die 2 "image '$name' already exists ($d): styx image delete $name first"
  [[ -d $dir/merged/etc ]] || die 1 "node $n of cluster $c has no root here ($dir/merged): is it launched (and running: styx start)?"
  mkdir -p "$CACHE_DIR/images"
  lock "$CACHE_DIR/images/.$name.lock"
  rm -rf --one-file-system "$tmp"
  mkdir -p "$tmp/rootfs"
  # STYX_SB_IMAGE_STRIP: more absolute paths, one a line (the cluster's synced folders and workdir)
  local -a excl=() extra=()
  [[ -z ${STYX_SB_IMAGE_STRIP:-} ]] || mapfile -t extra <<<"$STYX_SB_IMAGE_STRIP"
  for p in "${extra[@]}"; do
    [[ $p == /?* && $p != *..* && $p != *[*?[]* ]] || die 2 "STYX_SB_IMAGE_STRIP: '$p' is not an absolute path"
  done
  for p in "${IMAGE_STRIP[@]}" "${extra[@]}"; do
    excl+=("--exclude=./${p#/}")
  done
  local t0=$SECONDS
  # the node's root as its processes see it; --one-file-system: nothing mounted below it (node-up's
  # mounts live in the node's own mount namespace anyway)
  tar -C "$dir/merged" --one-file-system --numeric-owner --xattrs --acls "${excl[@]}" -cf - . |
    tar -C "$tmp/rootfs" --numeric-owner --xattrs --acls -xpf -
  # what tar's patterns may have missed (a file created between the two), gone for sure
  for p in "${IMAGE_STRIP[@]}"; do
    # shellcheck disable=SC2086 # the patterns are globs on purpose
    (cd "$tmp/rootfs" && rm -rf --one-file-system -- $p)
  done
  for p in "${extra[@]}"; do rm -rf --one-file-system -- "$tmp/rootfs/${p#/}"; done
  install -d -m 0700 "$tmp/rootfs/root/.ssh"
  install -d -m 1777 "$tmp/rootfs/tmp"
  local rootfs
  rootfs=$(sed -n 's/^ROOTFS=//p' "$dir/node.env" 2>/dev/null || true)
  {
    echo "name=$name"
    echo "cluster=$c"
    echo "node=$n"
    echo "base=$rootfs"
    echo "stripped=${IMAGE_STRIP[*]} ${extra[*]}"
    echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } >"$tmp/manifest"
  touch "$tmp/.complete"
  rm -rf --one-file-system "$d"
  mv "$tmp" "$d"
  log INFO "image $name made from node $n of cluster $c in $((SECONDS - t0)) s ($(du -sh "$d/rootfs" | cut -f1))"
  printf '%s\n' "$d"
}

# The nodes whose root sits on image NAME ("cluster/node" a line).
image_users() { # image_users NAME
  local rootfs f
  rootfs=$(image_dir "$1")/rootfs
  for f in "$STATE_DIR"/*/*/node.env; do
    [[ -r $f ]] || continue
    grep -qxF "ROOTFS=$rootfs" "$f" && printf '%s\n' "${f#"$STATE_DIR"/}" | sed 's#/node.env$##'
  done
  return 0
}

cmd_image_delete() {
  check_root
  need_env STYX_SB_IMAGE
  local name=$STYX_SB_IMAGE d users
  valid_image "$name"
  valid_path "$CACHE_DIR"
  d=$(image_dir "$name")
  users=$(image_users "$name")
  [[ -z $users ]] || die 1 "image $name is the root of running nodes ($(tr '\n' ' ' <<<"$users")): take them down first"
  if [[ ! -e $d && ! -e $d.tmp ]]; then
    log INFO "image $name: nothing to do"
    return 0
  fi
  rm -rf --one-file-system "$d" "$d.tmp"
  log INFO "image $name removed"
}

# ---------------------------------------------------------------- autostop --
# setup.autostop: the head's watcher (setup_scripts/autostop.sh) writes its request into the head's
# own root (/var/lib/styx/autostop/requested: "stop|down ISO"); a node cannot stop its own sandbox,
# so a reaper on this host, one per cluster, polls the head's overlay upper dir for it and stops the
# cluster's sandboxes (workers first, the head last), then records what it did in
# $STATE_DIR/CLUSTER/.autostop/record (at=, action=, nodes=) for styx to read (`styx status`).
# A "down" request (setup.autostop.down) destroys the cluster instead, through the engine: the reaper
# starts `styx down --stack STACK --yes` detached (with the engine settings it was started with, kept
# 0600 in .autostop/down.env) and ends; when that fails, the sandboxes are stopped as for "stop".

AUTOSTOP_REQ=var/lib/styx/autostop/requested

reaper_dir() { printf '%s/%s/.autostop' "$STATE_DIR" "$1"; }

# the head's request, when there is a well-formed one (the node owns these files: no symlinks followed)
autostop_request() { # autostop_request CLUSTER
  local root=$STATE_DIR/$1/head/upper d="" part line
  for part in ${AUTOSTOP_REQ//\// }; do
    d+=/$part
    [[ ! -L $root$d ]] || return 1
  done
  [[ -f $root/$AUTOSTOP_REQ ]] || return 1
  line=$(head -c 200 -- "$root/$AUTOSTOP_REQ" | head -n 1)
  if [[ ! $line =~ ^(stop|down)\ [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$ ]]; then
    log WARN "cluster $1: ignoring a malformed autostop request"
    return 1
  fi
  printf '%s\n' "$line"
}

# where a down by autostop logs (outside the cluster's own state: it outlives the cluster)
down_log() { printf '%s/.autostop-down/%s.log' "$STATE_DIR" "$1"; }

# one pass: act on the head's request when there is one
reap_once() { # reap_once CLUSTER NODES...
  local c=$1 req action at
  shift
  req=$(autostop_request "$c") || return 0
  action=${req%% *} at=${req#* }
  if [[ $action == down && -f $(reaper_dir "$c")/down.env ]]; then
    # one down per request: a reaper started again while it runs (or after it failed) leaves it alone
    [[ $(cat "$(reaper_dir "$c")/down.taken" 2>/dev/null) != "$at" ]] || return 0
    printf '%s\n' "$at" >"$(reaper_dir "$c")/down.taken"
    log INFO "cluster $c: autostop requested down at $at: destroying it (styx down; log $(down_log "$c"))"
    mkdir -p "$(dirname "$(down_log "$c")")"
    # detached: `styx down` deletes this reaper on its way (autostop-reaper-stop)
    env -i PATH="$PATH" LANG=C.UTF-8 STYX_SB_CLUSTER="$c" STYX_SB_STATE_DIR="$STATE_DIR" \
      STYX_SB_LOCK_DIR="$LOCK_DIR" STYX_SB_AUTOSTOP_AT="$at" \
      setsid bash "$SELF" _autostop_down "$@" >>"$(down_log "$c")" 2>&1 </dev/null &
    return 2
  fi
  [[ $action == stop ]] || log WARN "cluster $c: autostop requested down, but this reaper has no engine settings: stopping"
  stop_nodes "$c" "$action" "$at" "$@"
}

# stop the nodes, workers first, and record it (the request is done once the head is stopped)
stop_nodes() { # stop_nodes CLUSTER ACTION AT NODES...
  local c=$1 action=$2 at=$3 n rd tmp
  shift 3
  local -a stopped=() failed=()
  log INFO "cluster $c: autostop requested ($action at $at): stopping $*"
  for n in "$@"; do
    if STYX_SB_CLUSTER=$c STYX_SB_NODE=$n bash "$SELF" node-stop; then stopped+=("$n"); else failed+=("$n"); fi
  done
  if ((${#failed[@]})); then
    log WARN "cluster $c: autostop could not stop ${failed[*]}; trying again"
    return 1
  fi
  # the head is stopped: its root is no longer in use, the request is done
  rm -f -- "$STATE_DIR/$c/head/upper/$AUTOSTOP_REQ"
  rd=$(reaper_dir "$c")
  mkdir -p "$rd"
  tmp=$(mktemp "$rd/.record.XXXXXX")
  printf 'at=%s\naction=%s\nnodes=%s\n' "$at" "$action" "${stopped[*]}" >"$tmp"
  mv -f "$tmp" "$rd/record"
  log INFO "cluster $c: stopped by autostop ($action) at $at"
}

cmd_reaper() { # hidden: the loop (STYX_SB_AUTOSTOP_NODES, head last)
  local c=$STYX_SB_CLUSTER interval=${STYX_SB_REAPER_INTERVAL:-5}
  local -a nodes
  read -ra nodes <<<"$STYX_SB_AUTOSTOP_NODES"
  log INFO "cluster $c: autostop reaper watching the head's requests (every $interval s; nodes ${nodes[*]})"
  while :; do
    local rc=0
    reap_once "$c" "${nodes[@]}" || rc=$?
    if ((rc == 2)); then
      log INFO "cluster $c: the down is under way; the reaper ends"
      exit 0
    fi
    sleep "$interval"
  done
}

cmd_autostop_down() { # hidden: `styx down` of the cluster's stack (args: its nodes, head last, for the fallback)
  local c=$STYX_SB_CLUSTER at=$STYX_SB_AUTOSTOP_AT envf
  envf=$(reaper_dir "$c")/down.env
  # written by autostop-reaper-start (root, 0600): the engine's settings, the passphrase among them
  # shellcheck source=/dev/null
  . "$envf"
  log INFO "cluster $c: styx down --stack $STYX_SB_DOWN_STACK (autostop down at $at)"
  if "$STYX_SB_DOWN_PYTHON" -m styx down --stack "$STYX_SB_DOWN_STACK" --yes; then
    log INFO "cluster $c: destroyed by autostop (down) at $at"
    return 0
  fi
  log WARN "cluster $c: styx down failed: stopping the sandboxes instead (run \`styx down\` yourself)"
  [[ -d $STATE_DIR/$c/head ]] || return 1
  stop_nodes "$c" stop "$at" "$@"
}

reaper_pid() { # reaper_pid CLUSTER -> the running reaper's pid
  local pid
  pid=$(cat "$(reaper_dir "$1")/reaper.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$SELF _reaper" || return 1
  echo "$pid"
}

# The engine settings a down by autostop needs (STYX_SB_DOWN_STACK and STYX_SB_DOWN_PYTHON from the
# program, the rest from the engine that runs this command), kept 0600 for `_autostop_down`: never in
# a command line, never in Pulumi's state. No STYX_SB_DOWN_STACK: no file (a down request stops).
DOWN_ENV_VARS=(STYX_SB_DOWN_STACK STYX_SB_DOWN_PYTHON STYX_HOME STYX_PULUMI_BIN_DIR PULUMI_HOME
  PULUMI_BACKEND_URL PULUMI_CONFIG_PASSPHRASE PULUMI_CONFIG_PASSPHRASE_FILE PYTHONPATH HOME
  RAY_USAGE_STATS_ENABLED)

write_down_env() { # write_down_env REAPER_DIR
  local v tmp
  rm -f -- "$1/down.env"
  [[ -n ${STYX_SB_DOWN_STACK:-} && -n ${STYX_SB_DOWN_PYTHON:-} ]] || return 0
  [[ -z ${STYX_BACKEND_URL:-} ]] || export PULUMI_BACKEND_URL=$STYX_BACKEND_URL
  tmp=$(umask 077 && mktemp "$1/.down.env.XXXXXX")
  for v in "${DOWN_ENV_VARS[@]}"; do
    [[ -z ${!v:-} ]] || declare -p "$v" | sed 's/^declare -[-a-z]* /declare -x /' >>"$tmp"
  done
  mv -f "$tmp" "$1/down.env"
}

cmd_autostop_reaper_start() {
  check_root
  need_env STYX_SB_CLUSTER STYX_SB_AUTOSTOP_NODES
  local c=$STYX_SB_CLUSTER n rd pid
  valid_cluster "$c"
  valid_path "$STATE_DIR"
  for n in $STYX_SB_AUTOSTOP_NODES; do valid_node "$n"; done
  [[ " $STYX_SB_AUTOSTOP_NODES " == *" head " ]] || die 2 "STYX_SB_AUTOSTOP_NODES must end with head"
  rd=$(reaper_dir "$c")
  mkdir -p "$rd"
  if pid=$(reaper_pid "$c"); then
    kill "$pid" 2>/dev/null || true
    log INFO "cluster $c: restarting the autostop reaper (was pid $pid)"
  fi
  # a clean environment: the reaper outlives this command and needs nothing of its caller's (secrets)
  write_down_env "$rd"
  env -i PATH="$PATH" LANG=C.UTF-8 STYX_SB_CLUSTER="$c" STYX_SB_AUTOSTOP_NODES="$STYX_SB_AUTOSTOP_NODES" \
    STYX_SB_STATE_DIR="$STATE_DIR" STYX_SB_LOCK_DIR="$LOCK_DIR" STYX_SB_REAPER_INTERVAL="${STYX_SB_REAPER_INTERVAL:-5}" \
    setsid bash "$SELF" _reaper >>"$rd/reaper.log" 2>&1 </dev/null &
  echo "$!" >"$rd/reaper.pid"
  sleep 0.2
  pid=$(reaper_pid "$c") || { tail -n 5 "$rd/reaper.log" >&2 || true; die 1 "cluster $c: the autostop reaper did not start"; }
  log INFO "cluster $c: autostop reaper running (pid $pid)"
}

cmd_autostop_reaper_stop() {
  check_root
  need_env STYX_SB_CLUSTER
  local c=$STYX_SB_CLUSTER rd pid
  valid_cluster "$c"
  rd=$(reaper_dir "$c")
  if pid=$(reaper_pid "$c"); then kill "$pid" 2>/dev/null || true; fi
  if [[ -e $rd ]]; then
    rm -rf --one-file-system -- "$rd"
    rmdir "$STATE_DIR/$c" 2>/dev/null || true
    log INFO "cluster $c: autostop reaper stopped"
  else
    log INFO "cluster $c: no autostop reaper, skipping"
  fi
}

# ----------------------------------------------------------------- status --

cmd_status() {
  local c=${STYX_SB_CLUSTER:-}
  [[ -z $c ]] || valid_cluster "$c"
  local -a netns=() veths=() bridges=() rules=() mounts=() procs=() state=()
  local f ns cl nd l a
  # netns: recorded mapping (+ unmapped sx-* when no cluster given)
  local -A mine=()
  for f in "$STATE_DIR"/.netns/sx-*; do
    [[ -e $f ]] || continue
    read -r cl nd <"$f" || true
    [[ -z $c || $cl == "$c" ]] && mine[${f##*/}]=1
  done
  if [[ -n $c && -d $STATE_DIR/$c ]]; then
    for f in "$STATE_DIR/$c"/*/; do
      [[ -d $f ]] || continue
      nd=${f%/}
      nd=${nd##*/}
      mine[$(ns_name "$c" "$nd")]=1
    done
  fi
  while read -r ns _; do
    [[ -n $ns ]] || continue
    if [[ -n ${mine[$ns]:-} || (-z $c && $ns == sx-*) ]]; then netns+=("$ns"); fi
  done < <(ip netns list 2>/dev/null)
  local tagre="styx:${c:-[A-Za-z0-9_.-]+}"
  for l in /sys/class/net/*; do
    l=${l##*/}
    a=$(link_alias "$l")
    [[ -n $a ]] || continue
    if [[ -d /sys/class/net/$l/bridge ]]; then
      [[ $a =~ ^${tagre//./\\.}$ ]] && bridges+=("$l")
    else
      [[ $a =~ ^${tagre//./\\.}: ]] && veths+=("$l")
    fi
  done
  while read -r l; do [[ -n $l ]] && rules+=("$l"); done < <(tagged_rules "${tagre//./\\.}(:[A-Za-z0-9_-]+)?")
  while read -r l; do [[ -n $l ]] && mounts+=("$l"); done < <(mounts_under "$STATE_DIR${c:+/$c}")
  local p cmd
  for ns in "${netns[@]}"; do
    while read -r p; do
      [[ $p =~ ^[0-9]+$ ]] || continue
      cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null || true)
      procs+=("$p $ns ${cmd% }")
    done < <(ip netns pids "$ns" 2>/dev/null)
  done
  for f in "$STATE_DIR/${c:-*}"/*/launcher.pid; do
    [[ -e $f ]] || continue
    p=$(cat "$f" 2>/dev/null || true)
    [[ " ${procs[*]%% *} " != *" $p "* ]] || continue
    if [[ $p =~ ^[0-9]+$ ]] && grep -qa "$SELF" "/proc/$p/cmdline" 2>/dev/null; then
      procs+=("$p launcher $(tr '\0' ' ' <"/proc/$p/cmdline")")
    fi
  done
  if [[ -n $c ]]; then
    [[ -e $STATE_DIR/$c ]] && while read -r f; do state+=("$f"); done < <(find "$STATE_DIR/$c" -mindepth 1 -maxdepth 1)
    for f in "$STATE_DIR"/.netns/sx-*; do
      [[ -e $f ]] || continue
      read -r cl _ <"$f" || true
      [[ $cl == "$c" ]] && state+=("$f")
    done
  elif [[ -d $STATE_DIR ]]; then
    while read -r f; do state+=("$f"); done < <(find "$STATE_DIR" -mindepth 1 -maxdepth 2 ! -path "$STATE_DIR/.netns")
  fi
  local clean=true
  ((${#netns[@]} + ${#veths[@]} + ${#bridges[@]} + ${#rules[@]} + ${#mounts[@]} + ${#procs[@]} + ${#state[@]} == 0)) || clean=false
  printf '{"cluster": %s, "clean": %s, "netns": %s, "veths": %s, "bridges": %s, "iptables": %s, "mounts": %s, "processes": %s, "state": %s}\n' \
    "$(json_str "$c")" "$clean" "$(json_list "${netns[@]}")" "$(json_list "${veths[@]}")" \
    "$(json_list "${bridges[@]}")" "$(json_list "${rules[@]}")" "$(json_list "${mounts[@]}")" \
    "$(json_list "${procs[@]}")" "$(json_list "${state[@]}")"
}

usage() {
  cat >&2 <<'EOF'
usage: sandboxctl.sh preflight|base|base-id|apt-lists|net-up|net-down|node-up|node-down|node-alive|node-stop|node-start|status
       sandboxctl.sh autostop-reaper-start|autostop-reaper-stop
       sandboxctl.sh image-create|image-delete
All parameters come from STYX_SB_* / STYX_CACHE_DIR environment variables;
see sandbox/README.md.
EOF
}

main() {
  case $SUB in
  preflight) cmd_preflight ;;
  base) cmd_base ;;
  base-id) basename -- "$(base_dir)" ;; # what the base image is (its suite and recipe hash): nothing is built
  apt-lists) cmd_apt_lists ;;
  net-up) cmd_net_up ;;
  net-down) cmd_net_down ;;
  node-up) cmd_node_up ;;
  node-down) cmd_node_down ;;
  status) cmd_status ;;
  node-alive) cmd_node_alive ;;
  node-stop) cmd_node_stop ;;
  node-start) cmd_node_start ;;
  image-create) cmd_image_create ;;
  image-delete) cmd_image_delete ;;
  autostop-reaper-start) cmd_autostop_reaper_start ;;
  autostop-reaper-stop) cmd_autostop_reaper_stop ;;
  _init) cmd_init ;;
  _reaper) cmd_reaper ;;
  _autostop_down) shift && cmd_autostop_down "$@" ;;
  help | -h | --help) usage ;;
  *)
    usage
    die 2 "unknown subcommand '$SUB'"
    ;;
  esac
}

main "$@"
