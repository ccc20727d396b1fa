#!/usr/bin/env bash
# styx phase: ray_container -- the long-lived container the node's Ray runs in
# (setup.ray.container), like `ray up`'s `docker:`: the image loaded from a
# tarball or pulled from a registry, then one container STYX_RAY_CONTAINER
# running `sleep infinity`; the ray phase runs `ray start` inside it.
#
# Environment:
#   STYX_RAY_CONTAINER        the container's name (default styx-ray)
#   STYX_RAY_IMAGE            the image (required): a registry reference, or
#                             the tag the tarball holds
#   STYX_RAY_IMAGE_TARBALL    a `docker save` archive the transport copied to
#                             the node (relative: to $HOME); `docker load`ed
#                             when the node has not loaded this sha256 yet,
#                             then removed (default: none, a registry image)
#   STYX_RAY_IMAGE_SHA256     the tarball's sha256 (with the tarball)
#   STYX_RAY_PULL             missing (default) | always | never
#   STYX_RAY_RUN_OPTIONS      extra `docker run` arguments, one per line, each
#                             exactly as written
#   STYX_RAY_MOUNTS           host folders mounted at the same path, one per
#                             line (the workdir, the synced folders)
#   STYX_RAY_WORKDIR          the container's working folder (default: none)
#   STYX_CONTAINER_ENV_FILE   written here: what commands entering the
#                             container source first (the image's Ray bin/
#                             first on PATH) (default /etc/styx/ray-container.env)
#   STYX_REGISTRY_SERVER      registry to log in to before a pull (optional)
#   STYX_REGISTRY_USERNAME    its user
#   STYX_REGISTRY_PASSWORD    its password (secret: arrives on the phase's
#                             stdin, goes to `docker login --password-stdin`;
#                             never logged or on a command line; the login is
#                             removed after the pull)
#
# The container: --network host, the node's /dev/shm, /etc/styx read-only (the
# env file, Ray's token), the mounts, `--gpus all` when the node has an NVIDIA
# GPU, --init (reaps Ray's processes), labels with the image id and a hash of
# the options. Same image id and options as the running container: left alone.
# Otherwise it is replaced (`docker rm -f`, which stops the Ray inside).
# stdout: `styx ray_container: ok|skipped: ...`
: "${STYX_PHASE:=ray_container}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_RAY_CONTAINER=${STYX_RAY_CONTAINER:-styx-ray}
STYX_RAY_IMAGE=${STYX_RAY_IMAGE:-}
STYX_RAY_IMAGE_TARBALL=${STYX_RAY_IMAGE_TARBALL:-}
STYX_RAY_IMAGE_SHA256=${STYX_RAY_IMAGE_SHA256:-}
STYX_RAY_PULL=${STYX_RAY_PULL:-missing}
STYX_RAY_RUN_OPTIONS=${STYX_RAY_RUN_OPTIONS:-}
STYX_RAY_MOUNTS=${STYX_RAY_MOUNTS:-}
STYX_RAY_WORKDIR=${STYX_RAY_WORKDIR:-}
STYX_CONTAINER_ENV_FILE=${STYX_CONTAINER_ENV_FILE:-/etc/styx/ray-container.env}
STYX_REGISTRY_SERVER=${STYX_REGISTRY_SERVER:-}
STYX_REGISTRY_USERNAME=${STYX_REGISTRY_USERNAME:-}
# the password stays in this shell only until `docker login` reads it on stdin
_styx_registry_password=${STYX_REGISTRY_PASSWORD:-}
unset STYX_REGISTRY_PASSWORD
LOADED_FILE="$STYX_STATE_DIR/ray-image.loaded"
CHANGES=()

dk() { styx_sudo docker "$@"; }

image_id() { dk image inspect --format '{{.Id}}' "$STYX_RAY_IMAGE" 2>/dev/null; }

# the docker run arguments (without the image and command), one per line
run_args() {
  local m
  local -a extra
  local -a args=(--name "$STYX_RAY_CONTAINER" --init --network host -v /dev/shm:/dev/shm -v /etc/styx:/etc/styx:ro)
  while IFS= read -r m; do
    [[ -n $m ]] && args+=(-v "$m:$m")
  done <<<"$STYX_RAY_MOUNTS"
  [[ -z $STYX_RAY_WORKDIR ]] || args+=(-w "$STYX_RAY_WORKDIR")
  if [[ $(styx_detect_gpus) -gt 0 ]]; then
    args+=(--gpus all)
  fi
  mapfile -t extra < <(printf '%s' "$STYX_RAY_RUN_OPTIONS")
  args+=("${extra[@]}")
  printf '%s\n' "${args[@]}"
}

registry_login() {
  [[ -n $STYX_REGISTRY_USERNAME ]] || return 0
  [[ -n $_styx_registry_password ]] || styx_die "setup.ray.container.registry: no password reached the phase"
  styx_log INFO "docker login $STYX_REGISTRY_SERVER as $STYX_REGISTRY_USERNAME (password on stdin)"
  local log rc=0
  log=$(styx_log_file)
  printf '%s\n' "$_styx_registry_password" |
    dk login --username "$STYX_REGISTRY_USERNAME" --password-stdin "$STYX_REGISTRY_SERVER" >>"$log" 2>&1 || rc=$?
  _styx_registry_password=""
  [[ $rc -eq 0 ]] || styx_die "docker login to $STYX_REGISTRY_SERVER failed (exit $rc; see $log)"
}

registry_logout() {
  [[ -z $STYX_REGISTRY_USERNAME ]] || styx_try dk logout "$STYX_REGISTRY_SERVER" || true
}

pull() {
  registry_login
  local rc=0
  styx_try dk pull "$STYX_RAY_IMAGE" || rc=$?
  registry_logout
  [[ $rc -eq 0 ]] || styx_die "docker pull $STYX_RAY_IMAGE failed (exit $rc; see $(styx_log_file))"
  CHANGES+=("pulled $STYX_RAY_IMAGE")
}

load_tarball() {
  local tar=$STYX_RAY_IMAGE_TARBALL recorded=""
  [[ $tar == /* ]] || tar="$HOME/$tar"
  if styx_sudo test -f "$LOADED_FILE"; then recorded=$(styx_sudo cat -- "$LOADED_FILE"); fi
  if [[ $recorded == "$STYX_RAY_IMAGE_SHA256" ]] && image_id >/dev/null; then
    styx_log INFO "image tarball $STYX_RAY_IMAGE_SHA256 already loaded"
  else
    [[ -f $tar ]] || styx_die "image tarball $tar is not on this node (setup.ray.container.tarball)"
    styx_log INFO "docker load -i $tar"
    styx_run dk load -i "$tar"
    image_id >/dev/null || styx_die "the tarball (setup.ray.container.tarball) holds no image $STYX_RAY_IMAGE (setup.ray.container.image)"
    styx_state_dir >/dev/null
    styx_write_file_if_changed "$LOADED_FILE" 0644 <<<"$STYX_RAY_IMAGE_SHA256"
    CHANGES+=("loaded the image tarball")
  fi
  rm -f -- "$tar" # loaded: the node keeps the image, not the archive
}

ensure_image() {
  if [[ -n $STYX_RAY_IMAGE_TARBALL ]]; then
    load_tarball
    return 0
  fi
  case $STYX_RAY_PULL in
    always) pull ;;
    missing) image_id >/dev/null || pull ;;
    never) image_id >/dev/null || styx_die "image $STYX_RAY_IMAGE is not on this node and setup.ray.container.pull is never" ;;
    *) styx_die "STYX_RAY_PULL must be missing, always or never, got '$STYX_RAY_PULL'" ;;
  esac
}

# the spec the container must have: image id + run arguments
spec_hash() {
  printf '%s\n' "image=$1" "$(run_args)" | sha256sum | awk '{print $1}'
}

container_label() { dk inspect --format "{{index .Config.Labels \"$1\"}}" "$STYX_RAY_CONTAINER" 2>/dev/null; }

container_running() { [[ $(dk inspect --format '{{.State.Running}}' "$STYX_RAY_CONTAINER" 2>/dev/null) == true ]]; }

# the image's Ray: its bin/ goes first on PATH for everything that enters the container
write_container_env() {
  local ray bin
  # shellcheck disable=SC2016 # for the container's shell
  ray=$(dk exec "$STYX_RAY_CONTAINER" sh -c 'p=$(command -v ray) && readlink -f "$p"' 2>/dev/null) ||
    styx_die "image $STYX_RAY_IMAGE has no \`ray\` command on its PATH (setup.ray.container.image)"
  bin=${ray%/*}
  printf '%s\n' "# written by styx (ray_container phase): sourced inside $STYX_RAY_CONTAINER" \
    "export PATH=${bin@Q}:\"\$PATH\"" | styx_write_file_if_changed "$STYX_CONTAINER_ENV_FILE" 0644 root
  [[ $STYX_LAST_CHANGED -eq 0 ]] || CHANGES+=("wrote $STYX_CONTAINER_ENV_FILE")
}

main() {
  local id spec m
  local -a args
  [[ -n $STYX_RAY_IMAGE ]] || styx_die "STYX_RAY_IMAGE is required (setup.ray.container.image)"
  styx_have docker || styx_die "docker is not installed: set setup.docker.mode: install (setup.ray.container)"
  dk info >/dev/null 2>&1 || styx_die "the docker daemon does not answer \`docker info\` (setup.docker)"
  ensure_image
  id=$(image_id) || styx_die "image $STYX_RAY_IMAGE missing after load/pull"
  spec=$(spec_hash "$id")
  if container_running && [[ $(container_label styx.spec) == "$spec" ]]; then
    write_container_env
    if [[ ${#CHANGES[@]} -eq 0 ]]; then
      styx_result skipped "container $STYX_RAY_CONTAINER already runs $STYX_RAY_IMAGE (${id:7:12})"
      return 0
    fi
    styx_result ok "container $STYX_RAY_CONTAINER runs $STYX_RAY_IMAGE (${id:7:12}): ${CHANGES[*]}"
    return 0
  fi
  if dk inspect "$STYX_RAY_CONTAINER" >/dev/null 2>&1; then
    styx_log INFO "replacing container $STYX_RAY_CONTAINER (image or options changed, or not running)"
    styx_run dk rm -f "$STYX_RAY_CONTAINER"
  fi
  styx_sudo install -d -m 0755 -- "$(dirname -- "$STYX_CONTAINER_ENV_FILE")"
  while IFS= read -r m; do
    [[ -z $m ]] || styx_sudo install -d -m 0755 -- "$m"
  done <<<"$STYX_RAY_MOUNTS"
  mapfile -t args < <(run_args)
  styx_run dk run -d "${args[@]}" --label "styx.spec=$spec" --label "styx.image=$id" \
    --entrypoint sleep "$STYX_RAY_IMAGE" infinity
  container_running || styx_die "container $STYX_RAY_CONTAINER exited at once (see \`docker logs $STYX_RAY_CONTAINER\`)"
  write_container_env
  styx_result ok "container $STYX_RAY_CONTAINER started from $STYX_RAY_IMAGE (${id:7:12})"
}

# styx drift: the container runs the image with the options styx gave it
check_drift() {
  local id want
  local -a problems=()
  _styx_registry_password=""
  if ! id=$(image_id); then
    problems+=("image $STYX_RAY_IMAGE not on the node")
  elif ! dk inspect "$STYX_RAY_CONTAINER" >/dev/null 2>&1; then
    problems+=("container $STYX_RAY_CONTAINER missing")
  else
    want=$(spec_hash "$id")
    container_running || problems+=("container $STYX_RAY_CONTAINER not running")
    [[ $(container_label styx.spec) == "$want" ]] || problems+=("container $STYX_RAY_CONTAINER has another image or options")
  fi
  styx_sudo test -f "$STYX_CONTAINER_ENV_FILE" || problems+=("$STYX_CONTAINER_ENV_FILE missing")
  styx_verdict "container $STYX_RAY_CONTAINER runs $STYX_RAY_IMAGE" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
