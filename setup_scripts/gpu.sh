#!/usr/bin/env bash
# styx phase: gpu -- NVIDIA driver, CUDA toolkit and cuDNN, then a verification.
#
# Environment:
#   STYX_GPU_MODE               auto (default: skipped when no NVIDIA GPU is
#                               detected) | force (proceed even when detection
#                               finds none; verification then still needs a
#                               GPU) | skip
#   STYX_NVIDIA_DRIVER_VERSION  driver branch (e.g. 580, default) or a full
#                               version (e.g. 580.95.05: exact match required)
#   STYX_NVIDIA_DRIVER_FLAVOR   server-open (default) | open | server |
#                               proprietary (open kernel modules are required
#                               for Blackwell and recommended for Hopper)
#   STYX_NVIDIA_DRIVER_SOURCE   auto (default: ubuntu -> distro packages
#                               nvidia-driver-<branch>[-server][-open];
#                               debian -> cuda-repo) | distro | cuda-repo
#                               (NVIDIA's CUDA repo: nvidia-driver-pinning-<v>
#                               + nvidia-open / cuda-drivers)
#   STYX_CUDA_VERSION           CUDA toolkit X.Y (e.g. 12.4) -> package
#                               cuda-toolkit-X-Y from NVIDIA's repo unless
#                               $STYX_CUDA_ROOT/cuda-X.Y/bin/nvcc exists
#                               (default: empty = no toolkit)
#   STYX_CUDNN_VERSION          cuDNN major (e.g. 9) -> cudnn<major>-cuda-<CUDA
#                               major> unless libcudnn.so.<major> is known to
#                               ldconfig (default: empty = no cuDNN)
#   STYX_GPU_EXPECTED_COUNT     optional: verification fails with fewer GPUs
#   STYX_NVIDIA_FABRIC_MANAGER  auto (default: when NVSwitches are detected,
#                               e.g. HGX H100) | yes | no
#   STYX_CUDA_REPO_URL          default https://developer.download.nvidia.com/compute/cuda/repos
#   STYX_CUDA_KEYRING_VERSION   cuda-keyring .deb version (default 1.1-1)
#   STYX_CUDA_ROOT              where toolkits live (default /usr/local)
#   STYX_SYSFS_ROOT/STYX_PROC_ROOT (lib.sh) detection roots
#
# The driver is judged by what is loaded (/proc/driver/nvidia/version and
# nvidia-smi), not by dpkg: images often ship drivers outside apt. A driver
# that is installed but cannot be loaded (old module still in use, nouveau,
# new kernel) fails the phase with a reboot hint.
# stdout: `styx gpu: ok: 8x NVIDIA H100 80GB HBM3, driver 580.95.05, CUDA 13.0`
#         or `styx gpu: skipped: ...`
: "${STYX_PHASE:=gpu}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_GPU_MODE=${STYX_GPU_MODE:-auto}
STYX_NVIDIA_DRIVER_VERSION=${STYX_NVIDIA_DRIVER_VERSION:-580}
STYX_NVIDIA_DRIVER_FLAVOR=${STYX_NVIDIA_DRIVER_FLAVOR:-server-open}
STYX_NVIDIA_DRIVER_SOURCE=${STYX_NVIDIA_DRIVER_SOURCE:-auto}
STYX_CUDA_VERSION=${STYX_CUDA_VERSION:-}
STYX_CUDNN_VERSION=${STYX_CUDNN_VERSION:-}
STYX_GPU_EXPECTED_COUNT=${STYX_GPU_EXPECTED_COUNT:-}
STYX_NVIDIA_FABRIC_MANAGER=${STYX_NVIDIA_FABRIC_MANAGER:-auto}
STYX_CUDA_REPO_URL=${STYX_CUDA_REPO_URL:-https://developer.download.nvidia.com/compute/cuda/repos}
STYX_CUDA_KEYRING_VERSION=${STYX_CUDA_KEYRING_VERSION:-1.1-1}
STYX_CUDA_ROOT=${STYX_CUDA_ROOT:-/usr/local}
CUDA_PROFILE="$STYX_PROFILE_DIR/styx-cuda.sh"

CHANGES=()
WANT=$STYX_NVIDIA_DRIVER_VERSION
BRANCH=${WANT%%.*}
REBOOT_HINT="reboot the node (sudo reboot) and run the phase again"

# ---------------------------------------------------------------- driver state

# version of the loaded kernel module, empty when none is loaded
loaded_driver_version() {
  local f="$STYX_PROC_ROOT/driver/nvidia/version"
  [[ -r $f ]] || return 0
  grep -m1 '^NVRM version' "$f" | grep -oE '[[:space:]][0-9]{2,4}\.[0-9]{1,3}(\.[0-9]{1,3})?([[:space:]]|$)' |
    head -n 1 | tr -d '[:space:]' || true
}

# driver version reported by nvidia-smi (userspace), empty when unavailable
smi_driver_version() {
  local out
  styx_have nvidia-smi || return 0
  out=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null) || return 0
  out=$(printf '%s\n' "$out" | head -n 1 | tr -d '[:space:]')
  [[ ! $out =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || printf '%s\n' "$out"
}

smi_mismatch() {
  styx_have nvidia-smi || return 1
  local out
  out=$(nvidia-smi 2>&1) || true
  [[ ${out,,} == *"driver/library version mismatch"* ]]
}

version_matches() {
  local have=$1
  [[ -n $have ]] || return 1
  [[ -n $WANT ]] || return 0
  if [[ $WANT == *.* ]]; then
    [[ $have == "$WANT" ]]
  else
    [[ ${have%%.*} == "$WANT" ]]
  fi
}

os_name() { local o; o=$(styx_os_id); printf '%s\n' "${o%% *}"; }

driver_source() {
  case $STYX_NVIDIA_DRIVER_SOURCE in
    distro | cuda-repo) echo "$STYX_NVIDIA_DRIVER_SOURCE" ;;
    auto) if [[ $(os_name) == ubuntu ]]; then echo distro; else echo cuda-repo; fi ;;
    *) styx_die "STYX_NVIDIA_DRIVER_SOURCE must be auto, distro or cuda-repo, got '$STYX_NVIDIA_DRIVER_SOURCE'" ;;
  esac
}

# ---------------------------------------------------------------- NVIDIA repo

cuda_repo_distro() {
  local o ver
  o=$(styx_os_id)
  ver=${o#* }
  case ${o%% *} in
    ubuntu) echo "ubuntu${ver//./}" ;;
    debian) echo "debian${ver%%.*}" ;;
    *) styx_die "NVIDIA's CUDA repository: unsupported OS $o" ;;
  esac
}

cuda_repo_arch() {
  case $(uname -m) in
    x86_64) echo x86_64 ;;
    aarch64) echo sbsa ;;
    *) styx_die "NVIDIA's CUDA repository: unsupported architecture $(uname -m)" ;;
  esac
}

ensure_cuda_repo() {
  local url tmpdir
  if styx_pkg_installed cuda-keyring; then
    return 0
  fi
  url="$STYX_CUDA_REPO_URL/$(cuda_repo_distro)/$(cuda_repo_arch)/cuda-keyring_${STYX_CUDA_KEYRING_VERSION}_all.deb"
  styx_have curl || styx_have wget || styx_apt_install curl ca-certificates
  styx_mktemp_var tmpdir -d
  styx_download "$url" "$tmpdir/cuda-keyring.deb"
  styx_run styx_sudo dpkg -i "$tmpdir/cuda-keyring.deb"
  styx_apt_update
  CHANGES+=("added NVIDIA CUDA repository")
}

apt_candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '$1 == "Candidate:" && $2 != "(none)" {print $2; exit}'
}

# apt version of package $1 that starts with $2 (for full driver versions)
apt_version_for() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/[[:space:]]/, "", $2); print $2}' |
    grep -m1 -E "^([0-9]+:)?${2//./\\.}([-.~+]|$)" || true
}

# ---------------------------------------------------------------- install

# sets DRIVER_PKGS to the apt packages for the wanted driver
DRIVER_PKGS=()
driver_packages() {
  local src=$1 pkg ver
  DRIVER_PKGS=()
  case $src in
    distro)
      case $STYX_NVIDIA_DRIVER_FLAVOR in
        server-open) pkg="nvidia-driver-$BRANCH-server-open" ;;
        open) pkg="nvidia-driver-$BRANCH-open" ;;
        server) pkg="nvidia-driver-$BRANCH-server" ;;
        proprietary) pkg="nvidia-driver-$BRANCH" ;;
        *) styx_die "STYX_NVIDIA_DRIVER_FLAVOR must be server-open, open, server or proprietary" ;;
      esac
      styx_apt_has_candidate "$pkg" || styx_apt_update
      styx_apt_has_candidate "$pkg" || styx_die "driver package $pkg is not available from apt on $(styx_os_id)"
      if [[ $WANT == *.* ]]; then
        ver=$(apt_version_for "$pkg" "$WANT")
        [[ -n $ver ]] || styx_die "driver $WANT is not available as $pkg (see apt-cache madison $pkg)"
        pkg="$pkg=$ver"
      fi
      DRIVER_PKGS=("$pkg")
      ;;
    cuda-repo)
      ensure_cuda_repo
      case $STYX_NVIDIA_DRIVER_FLAVOR in
        server-open | open) pkg="nvidia-open" ;;
        server | proprietary) pkg="cuda-drivers" ;;
        *) styx_die "STYX_NVIDIA_DRIVER_FLAVOR must be server-open, open, server or proprietary" ;;
      esac
      if [[ -n $WANT ]] && styx_apt_has_candidate "nvidia-driver-pinning-$WANT"; then
        # pinning package first: it locks the branch/version nvidia-open follows
        DRIVER_PKGS=("nvidia-driver-pinning-$WANT" "$pkg")
      elif [[ -n $WANT ]]; then
        styx_apt_has_candidate "$pkg-$BRANCH" ||
          styx_die "NVIDIA's repository has neither nvidia-driver-pinning-$WANT nor $pkg-$BRANCH for $(styx_os_id)"
        DRIVER_PKGS=("$pkg-$BRANCH")
      else
        DRIVER_PKGS=("$pkg")
      fi
      ;;
  esac
}

install_driver() {
  local src pkgs=() cand
  [[ $(styx_os_family) == debian ]] || styx_die "driver installation supports Debian/Ubuntu only, not $(styx_os_id)"
  src=$(driver_source)
  driver_packages "$src"
  pkgs=("${DRIVER_PKGS[@]}")
  if [[ ${pkgs[0]} == nvidia-driver-pinning-* ]]; then
    # the pinning package must be in place before apt resolves the driver
    styx_apt_install "${pkgs[0]}"
    [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed $STYX_APT_INSTALLED")
    cand=$(apt_candidate "${pkgs[1]}")
    [[ -n $cand ]] || styx_die "no installable ${pkgs[1]} for driver $WANT"
    pkgs=("${pkgs[1]}=$cand")
  fi
  # kernel headers for DKMS builds, when the running kernel has them packaged
  if styx_apt_has_candidate "linux-headers-$(uname -r)"; then
    pkgs+=("linux-headers-$(uname -r)")
  fi
  styx_log INFO "installing NVIDIA driver $WANT ($src): ${pkgs[*]}"
  styx_apt_install "${pkgs[@]}"
  [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed $STYX_APT_INSTALLED")
}

ensure_driver() {
  local loaded smi
  loaded=$(loaded_driver_version)
  smi=$(smi_driver_version)
  styx_log INFO "driver: wanted ${WANT:-any}, kernel module ${loaded:-none}, nvidia-smi ${smi:-none}"
  if version_matches "$loaded" && [[ $smi == "$loaded" ]]; then
    styx_log INFO "NVIDIA driver $loaded already loaded: keeping it"
    return 0
  fi
  if version_matches "$loaded" && smi_mismatch; then
    styx_die "NVIDIA kernel module $loaded is loaded but the driver libraries differ (Driver/library version mismatch): $REBOOT_HINT"
  fi
  install_driver
  if [[ -z $(loaded_driver_version) ]]; then
    styx_try styx_sudo modprobe nvidia || styx_log WARN "modprobe nvidia failed (see $(styx_log_file))"
  fi
  loaded=$(loaded_driver_version)
  smi=$(smi_driver_version)
  if ! version_matches "$loaded"; then
    styx_die "NVIDIA driver ${WANT:-packages} installed but the running kernel module is ${loaded:-not loaded}: $REBOOT_HINT"
  fi
  if [[ $smi != "$loaded" ]]; then
    styx_die "NVIDIA kernel module $loaded loaded but nvidia-smi reports '${smi:-nothing}': $REBOOT_HINT"
  fi
}

want_fabric_manager() {
  case $STYX_NVIDIA_FABRIC_MANAGER in
    yes | 1 | true) return 0 ;;
    no | 0 | false) return 1 ;;
    auto) [[ $(styx_detect_nvswitches) -gt 0 ]] ;;
    *) styx_die "STYX_NVIDIA_FABRIC_MANAGER must be auto, yes or no" ;;
  esac
}

ensure_fabric_manager() {
  local pkg=""
  want_fabric_manager || return 0
  if styx_pkg_installed "nvidia-fabricmanager-$BRANCH" || styx_pkg_installed nvidia-fabricmanager; then
    styx_log INFO "fabric manager already installed"
  else
    [[ $(driver_source) != cuda-repo ]] || ensure_cuda_repo
    for pkg in "nvidia-fabricmanager-$BRANCH" nvidia-fabricmanager; do
      styx_apt_has_candidate "$pkg" && break
      pkg=""
    done
    [[ -n $pkg ]] || styx_die "NVSwitch system but no nvidia-fabricmanager package is available"
    styx_apt_install "$pkg"
    [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed $STYX_APT_INSTALLED")
  fi
  if styx_systemd_running && ! systemctl is-active --quiet nvidia-fabricmanager 2>/dev/null; then
    styx_run styx_sudo systemctl enable --now nvidia-fabricmanager
    CHANGES+=("started nvidia-fabricmanager")
  fi
}

ensure_cuda() {
  local v=$STYX_CUDA_VERSION
  [[ -n $v ]] || return 0
  [[ $v =~ ^[0-9]+\.[0-9]+$ ]] || styx_die "STYX_CUDA_VERSION must be X.Y, got '$v'"
  if [[ -x $STYX_CUDA_ROOT/cuda-$v/bin/nvcc ]]; then
    styx_log INFO "CUDA toolkit $v present ($STYX_CUDA_ROOT/cuda-$v)"
  else
    ensure_cuda_repo
    styx_apt_install "cuda-toolkit-${v//./-}"
    [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed $STYX_APT_INSTALLED")
    [[ -x $STYX_CUDA_ROOT/cuda-$v/bin/nvcc ]] || styx_die "cuda-toolkit-${v//./-} installed but $STYX_CUDA_ROOT/cuda-$v/bin/nvcc is missing"
  fi
  styx_write_file_if_changed "$CUDA_PROFILE" 0644 < <(printf '%s\n' \
    '# managed by styx (gpu): CUDA toolkit on PATH for login shells' \
    "case \":\$PATH:\" in *\":$STYX_CUDA_ROOT/cuda-$v/bin:\"*) ;; *) PATH=\"$STYX_CUDA_ROOT/cuda-$v/bin:\$PATH\"; export PATH ;; esac")
  [[ $STYX_LAST_CHANGED -eq 0 ]] || CHANGES+=("wrote $CUDA_PROFILE")
}

ldconfig_cmd() {
  if styx_have ldconfig; then echo ldconfig; else echo /sbin/ldconfig; fi
}

ensure_cudnn() {
  local major=${STYX_CUDNN_VERSION%%.*} cuda_major
  [[ -n $major ]] || return 0
  local cache
  cache=$("$(ldconfig_cmd)" -p 2>/dev/null) || cache=""
  if [[ $cache =~ libcudnn\.so\.${major}[[:space:].] ]]; then
    styx_log INFO "cuDNN $major present (ldconfig)"
    return 0
  fi
  cuda_major=${STYX_CUDA_VERSION%%.*}
  if [[ -z $cuda_major ]]; then
    cuda_major=$(smi_cuda_version)
    cuda_major=${cuda_major%%.*}
  fi
  [[ -n $cuda_major ]] || styx_die "STYX_CUDNN_VERSION needs STYX_CUDA_VERSION (or a working nvidia-smi) to pick the cuDNN build"
  ensure_cuda_repo
  styx_apt_install "cudnn$major-cuda-$cuda_major"
  [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed $STYX_APT_INSTALLED")
  styx_run styx_sudo "$(ldconfig_cmd)"
}

# ---------------------------------------------------------------- verify

smi_cuda_version() {
  styx_have nvidia-smi || return 0
  nvidia-smi 2>/dev/null | grep -oE 'CUDA Version: *[0-9]+\.[0-9]+' | head -n 1 | grep -oE '[0-9]+\.[0-9]+' || true
}

cuda_version() {
  local nvcc v
  for nvcc in ${STYX_CUDA_VERSION:+"$STYX_CUDA_ROOT/cuda-$STYX_CUDA_VERSION/bin/nvcc"} \
    "$STYX_CUDA_ROOT/cuda/bin/nvcc" "$(command -v nvcc || true)"; do
    [[ -n $nvcc && -x $nvcc ]] || continue
    v=$("$nvcc" --version 2>/dev/null | grep -oE 'release [0-9]+\.[0-9]+' | head -n 1) || true
    if [[ -n $v ]]; then
      printf '%s\n' "${v#release }"
      return 0
    fi
  done
  smi_cuda_version
}

# prints the summary "8x NAME, driver V, CUDA X.Y"; dies on failed checks
verify() {
  local out n names driver cuda line
  styx_have nvidia-smi || styx_die "nvidia-smi not found after driver setup"
  out=$(nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1) ||
    styx_die "nvidia-smi failed: $(printf '%s' "$out" | tail -n 3)"
  styx_log INFO "nvidia-smi: $(printf '%s' "$out" | tr '\n' ';')"
  n=$(printf '%s\n' "$out" | grep -c ',' || true)
  [[ $n -gt 0 ]] || styx_die "nvidia-smi lists no GPUs"
  if [[ -n $STYX_GPU_EXPECTED_COUNT && $n -lt $STYX_GPU_EXPECTED_COUNT ]]; then
    styx_die "expected $STYX_GPU_EXPECTED_COUNT GPUs, nvidia-smi shows $n"
  fi
  names=$(printf '%s\n' "$out" | awk -F', *' 'NF > 1 {c[$1]++} END {for (k in c) printf "%s%dx %s", (i++ ? " + " : ""), c[k], k}')
  line=$(printf '%s\n' "$out" | head -n 1)
  driver=$(printf '%s\n' "$line" | awk -F', *' '{print $2}')
  cuda=$(cuda_version)
  printf '%s, driver %s, CUDA %s\n' "$names" "$driver" "${cuda:-unknown}"
}

main() {
  local n summary
  case $STYX_GPU_MODE in
    skip) styx_result skipped "gpu mode skip"; return 0 ;;
    auto | force) ;;
    *) styx_die "STYX_GPU_MODE must be auto, force or skip, got '$STYX_GPU_MODE'" ;;
  esac
  n=$(styx_detect_gpus)
  styx_log INFO "detected $n NVIDIA GPU(s)"
  if [[ $n -eq 0 ]]; then
    if [[ $STYX_GPU_MODE == auto ]]; then
      styx_result skipped "no NVIDIA GPU detected"
      return 0
    fi
    styx_log WARN "STYX_GPU_MODE=force: no NVIDIA GPU detected, proceeding anyway"
  fi
  ensure_driver
  ensure_fabric_manager
  ensure_cuda
  ensure_cudnn
  summary=$(verify)
  if [[ ${#CHANGES[@]} -eq 0 ]]; then
    styx_result skipped "already set up: $summary"
  else
    local joined
    printf -v joined '%s; ' "${CHANGES[@]}"
    styx_log INFO "changes: ${joined%; }"
    styx_result ok "$summary"
  fi
}

# styx drift: the GPUs the node should show, through nvidia-smi (read-only)
check_drift() {
  local n out
  [[ $STYX_GPU_MODE != skip ]] || { styx_verdict "gpu mode skip"; return 0; }
  n=$(styx_detect_gpus)
  if [[ $n -eq 0 && $STYX_GPU_MODE == auto ]]; then
    styx_verdict "no NVIDIA GPU on this node"
    return 0
  fi
  if ! styx_have nvidia-smi; then
    styx_verdict "" "nvidia-smi missing ($n GPU(s) on the bus)"
    return 0
  fi
  out=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  if [[ -n $STYX_GPU_EXPECTED_COUNT && $out -lt $STYX_GPU_EXPECTED_COUNT ]]; then
    styx_verdict "" "nvidia-smi shows $out GPU(s), expected $STYX_GPU_EXPECTED_COUNT"
  elif [[ $out -eq 0 ]]; then
    styx_verdict "" "nvidia-smi lists no GPUs ($n on the bus)"
  else
    styx_verdict "$out GPU(s) answer nvidia-smi"
  fi
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
