#!/usr/bin/env bash
# styx phase: docker -- check or install Docker (+ NVIDIA container toolkit).
#
# Environment:
#   STYX_DOCKER_MODE            skip (default) | check | install
#                               check: report only, never installs; "docker
#                               not installed" is an ok result there
#   STYX_DOCKER_METHOD          distro (default: the docker.io package) |
#                               docker-repo (Docker's apt repository, key in
#                               $STYX_APT_DIR/keyrings/docker.asc, signed-by)
#   STYX_DOCKER_REPO_URL        Docker apt repo base (default
#                               https://download.docker.com/linux); mirrors ok
#   STYX_DOCKER_USERS           users added to the docker group (default: the
#                               user running the phase when it is not root)
#   STYX_DOCKER_NVIDIA_TOOLKIT  auto (default: only when an NVIDIA GPU is
#                               detected) | yes | no: NVIDIA container toolkit
#                               from NVIDIA's apt repo + `nvidia-ctk runtime
#                               configure --runtime=docker`
#   STYX_NVIDIA_CTK_REPO_URL    toolkit repo base (default
#                               https://nvidia.github.io/libnvidia-container)
#   STYX_DOCKER_DAEMON_JSON     daemon config (default /etc/docker/daemon.json)
#   STYX_DOCKER_GPU_IMAGE       a local image: on a node with an NVIDIA GPU,
#                               `docker run --rm --gpus all IMAGE nvidia-smi -L`
#                               must list the GPUs (default: none, not run)
#   STYX_DOCKER_START_TIMEOUT   seconds to wait for a started daemon to answer
#                               `docker info` (default 90)
#
# Without systemd (a container or a styx sandbox host) the phase starts
# dockerd itself: detached (setsid, so it outlives the SSH session), output to
# $STYX_LOG_DIR/dockerd.log, pid in $STYX_RUN_DIR/docker.pid; a daemon that already
# answers is left alone. Install mode ends with `docker info` answering.
#
# Existing Docker installs (e.g. docker-ce from the image) are kept: packages
# are only installed when no `docker` command exists.
# stdout: `styx docker: ok|skipped: ...`
: "${STYX_PHASE:=docker}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_DOCKER_MODE=${STYX_DOCKER_MODE:-skip}
STYX_DOCKER_METHOD=${STYX_DOCKER_METHOD:-distro}
STYX_DOCKER_REPO_URL=${STYX_DOCKER_REPO_URL:-https://download.docker.com/linux}
STYX_DOCKER_USERS=${STYX_DOCKER_USERS-$([[ $(id -u) -eq 0 ]] || id -un)}
STYX_DOCKER_NVIDIA_TOOLKIT=${STYX_DOCKER_NVIDIA_TOOLKIT:-auto}
STYX_NVIDIA_CTK_REPO_URL=${STYX_NVIDIA_CTK_REPO_URL:-https://nvidia.github.io/libnvidia-container}
STYX_DOCKER_DAEMON_JSON=${STYX_DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
STYX_DOCKER_START_TIMEOUT=${STYX_DOCKER_START_TIMEOUT:-90}
STYX_DOCKER_GPU_IMAGE=${STYX_DOCKER_GPU_IMAGE:-}
DOCKERD_PIDFILE=$STYX_RUN_DIR/docker.pid
DOCKER_REPO_PACKAGES=(docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin)

CHANGES=()

docker_version() {
  local v
  v=$(docker --version 2>/dev/null) || return 1
  v=${v#Docker version }
  printf '%s\n' "${v%%,*}"
}

# the daemon answers (as root: the phase's user may not be in the group yet)
daemon_answers() { styx_sudo docker info >/dev/null 2>&1; }

daemon_state() {
  if styx_systemd_running; then
    if systemctl is-active --quiet docker 2>/dev/null; then echo running; else echo "not running"; fi
  elif daemon_answers; then
    echo running
  else
    echo "not running"
  fi
}

# the pid in dockerd's pidfile when that process is a live dockerd
dockerd_pid() {
  local pid
  pid=$(styx_sudo cat "$DOCKERD_PIDFILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]] || return 1
  printf '%s\n' "$pid"
}

wait_daemon() {
  local i
  for ((i = 0; i < STYX_DOCKER_START_TIMEOUT; i++)); do
    daemon_answers && return 0
    sleep 1
  done
  return 1
}

# no systemd: start dockerd detached unless one runs (or answers) already
start_dockerd() {
  local log
  daemon_answers && return 0
  styx_have dockerd || styx_die "dockerd not found (package installed without the daemon?)"
  log="$STYX_LOG_DIR/dockerd.log"
  if ! dockerd_pid >/dev/null; then
    styx_sudo install -d -m 0755 -- "$STYX_LOG_DIR"
    styx_log INFO "starting dockerd (no systemd), log $log"
    local -a cmd=(setsid)
    [[ $(id -u) -eq 0 ]] || cmd=(sudo -n -- setsid)
    # shellcheck disable=SC2016 # for the inner shell: it closes every fd above 2 (the runner's
    # stdin); the subshell exits at once, so dockerd is nobody's child and holds no SSH channel
    ("${cmd[@]}" bash -c 'for f in /proc/$$/fd/*; do f=${f##*/}; ((f < 3)) || eval "exec $f>&-"; done
      exec dockerd --pidfile "$1" >>"$2" 2>&1' dockerd "$DOCKERD_PIDFILE" "$log" </dev/null >/dev/null 2>&1 &)
    CHANGES+=("started dockerd")
  fi
  if ! wait_daemon; then
    styx_sudo tail -n 20 "$log" >&2 || true
    styx_die "dockerd did not answer \`docker info\` within ${STYX_DOCKER_START_TIMEOUT}s (log: $log)"
  fi
}

restart_daemon() {
  if styx_systemd_running; then
    styx_run styx_sudo systemctl restart docker
    return 0
  fi
  local pid i
  if pid=$(dockerd_pid); then
    styx_sudo kill -TERM "$pid"
    for ((i = 0; i < 60; i++)); do
      [[ -e /proc/$pid ]] || break
      sleep 1
    done
  fi
  start_dockerd
}

nvidia_runtime_configured() {
  styx_sudo test -f "$STYX_DOCKER_DAEMON_JSON" && styx_sudo grep -q '"nvidia"' "$STYX_DOCKER_DAEMON_JSON"
}

do_check() {
  local v state extra=""
  if ! styx_have docker; then
    styx_result ok "docker not installed (check only)"
    return 0
  fi
  v=$(docker_version) || v=unknown
  state=$(daemon_state)
  ! nvidia_runtime_configured || extra=", nvidia runtime configured"
  styx_result ok "docker $v installed, daemon $state$extra (check only)"
}

# writes a keyring (downloaded once) and a sources list; forces apt-get
# update when either changed
add_apt_repo() {
  local name=$1 key_url=$2 list_line=$3 keyring tmp
  keyring="$STYX_APT_DIR/keyrings/$name.asc"
  if ! styx_sudo test -s "$keyring"; then
    styx_have curl || styx_have wget || styx_apt_install curl ca-certificates
    styx_mktemp_var tmp
    styx_download "$key_url" "$tmp"
    grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$tmp" || styx_die "$key_url did not return an armored PGP key"
    styx_sudo install -d -m 0755 -- "$STYX_APT_DIR/keyrings"
    styx_sudo install -m 0644 -- "$tmp" "$keyring"
    CHANGES+=("added $name apt key")
    NEED_APT_UPDATE=1
  fi
  styx_write_file_if_changed "$STYX_APT_DIR/sources.list.d/$name.list" 0644 \
    < <(printf '%s\n' "${list_line//@KEYRING@/$keyring}")
  if [[ $STYX_LAST_CHANGED -eq 1 ]]; then
    CHANGES+=("added $name apt repository")
    NEED_APT_UPDATE=1
  fi
}

install_docker() {
  local os_id codename arch
  if styx_have docker; then
    styx_log INFO "docker already installed ($(docker_version || echo unknown)): not installing packages"
    return 0
  fi
  NEED_APT_UPDATE=0
  case $STYX_DOCKER_METHOD in
    distro)
      styx_apt_install docker.io
      ;;
    docker-repo)
      os_id=$(styx_os_id)
      os_id=${os_id%% *}
      case $os_id in ubuntu | debian) ;; *) styx_die "docker-repo method supports ubuntu/debian, not $os_id" ;; esac
      codename=$(styx_os_codename)
      [[ -n $codename ]] || styx_die "cannot determine the OS codename from $STYX_OS_RELEASE"
      arch=$(dpkg --print-architecture)
      add_apt_repo docker "$STYX_DOCKER_REPO_URL/$os_id/gpg" \
        "deb [arch=$arch signed-by=@KEYRING@] $STYX_DOCKER_REPO_URL/$os_id $codename stable"
      [[ $NEED_APT_UPDATE -eq 0 ]] || styx_apt_update
      styx_apt_install "${DOCKER_REPO_PACKAGES[@]}"
      ;;
    *) styx_die "STYX_DOCKER_METHOD must be distro or docker-repo, got '$STYX_DOCKER_METHOD'" ;;
  esac
  [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed $STYX_APT_INSTALLED")
}

ensure_service() {
  if ! styx_systemd_running; then
    start_dockerd
    return 0
  fi
  if ! systemctl is-enabled --quiet docker 2>/dev/null || ! systemctl is-active --quiet docker 2>/dev/null; then
    styx_run styx_sudo systemctl enable --now docker
    CHANGES+=("enabled and started docker.service")
  fi
}

ensure_users() {
  local u
  for u in $STYX_DOCKER_USERS; do
    id -u "$u" >/dev/null 2>&1 || styx_die "STYX_DOCKER_USERS: no such user '$u'"
    if [[ " $(id -nG "$u") " != *" docker "* ]]; then
      styx_run styx_sudo usermod -aG docker "$u"
      CHANGES+=("added $u to group docker")
    fi
  done
}

want_toolkit() {
  case $STYX_DOCKER_NVIDIA_TOOLKIT in
    yes | 1 | true) return 0 ;;
    no | 0 | false) return 1 ;;
    auto) [[ $(styx_detect_gpus) -gt 0 ]] ;;
    *) styx_die "STYX_DOCKER_NVIDIA_TOOLKIT must be auto, yes or no, got '$STYX_DOCKER_NVIDIA_TOOLKIT'" ;;
  esac
}

ensure_toolkit() {
  if ! styx_have nvidia-ctk; then
    NEED_APT_UPDATE=0
    add_apt_repo nvidia-container-toolkit "$STYX_NVIDIA_CTK_REPO_URL/gpgkey" \
      "deb [signed-by=@KEYRING@] $STYX_NVIDIA_CTK_REPO_URL/stable/deb/\$(ARCH) /"
    [[ $NEED_APT_UPDATE -eq 0 ]] || styx_apt_update
    styx_apt_install nvidia-container-toolkit
    [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed nvidia-container-toolkit")
  fi
  if ! nvidia_runtime_configured; then
    styx_run styx_sudo nvidia-ctk runtime configure --runtime=docker --config="$STYX_DOCKER_DAEMON_JSON"
    CHANGES+=("configured nvidia runtime")
    restart_daemon
  fi
  # a GPU container must see the GPUs (skipped when none is detected: toolkit forced with yes)
  if [[ -n $STYX_DOCKER_GPU_IMAGE && $(styx_detect_gpus) -gt 0 ]]; then
    styx_sudo docker run --rm --gpus all "$STYX_DOCKER_GPU_IMAGE" nvidia-smi -L >/dev/null ||
      styx_die "\`docker run --gpus all $STYX_DOCKER_GPU_IMAGE nvidia-smi -L\` failed"
  fi
}

main() {
  local v state
  case $STYX_DOCKER_MODE in
    skip) styx_result skipped "docker mode skip"; return 0 ;;
    check) do_check; return 0 ;;
    install) ;;
    *) styx_die "STYX_DOCKER_MODE must be skip, check or install, got '$STYX_DOCKER_MODE'" ;;
  esac
  install_docker
  styx_have docker || styx_die "docker command still missing after installation"
  ensure_service
  wait_daemon || styx_die "the docker daemon does not answer \`docker info\`"
  ensure_users
  local tk=""
  if want_toolkit; then
    ensure_toolkit
    tk=", nvidia runtime configured"
  fi
  v=$(docker_version) || v=unknown
  state=$(daemon_state)
  if [[ ${#CHANGES[@]} -eq 0 ]]; then
    styx_result skipped "docker $v already installed, daemon $state$tk"
  else
    local joined
    printf -v joined '%s; ' "${CHANGES[@]}"
    styx_result ok "docker $v, daemon $state$tk: ${joined%; }"
  fi
}

# styx drift: install mode: docker present, the daemon answering, the users in
# the docker group; check mode reports what is there
check_drift() {
  local -a problems=()
  case $STYX_DOCKER_MODE in
    install) ;;
    *) styx_verdict "docker mode $STYX_DOCKER_MODE: nothing to hold"; return 0 ;;
  esac
  if ! styx_have docker; then
    styx_verdict "" "docker not installed"
    return 0
  fi
  [[ $(daemon_state) == running ]] || problems+=("docker daemon not running")
  local u
  for u in $STYX_DOCKER_USERS; do
    [[ " $(id -nG "$u" 2>/dev/null) " == *" docker "* ]] || problems+=("$u not in group docker")
  done
  if want_toolkit && ! nvidia_runtime_configured; then problems+=("nvidia runtime not configured"); fi
  styx_verdict "docker $(docker_version || echo unknown), daemon running" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
