#!/usr/bin/env bats
# ray_container.sh with a fake docker: the image loaded from a tarball or
# pulled with the password on stdin only, `--gpus all` only with GPUs, the
# container left alone when image and options are the same.

load helpers

setup() {
  common_setup
  mkdir -p "$T/dk" "$T/etc"
  export STYX_RAY_IMAGE=styx-ray:2.60.0 STYX_CONTAINER_ENV_FILE="$T/etc/ray-container.env" HOME="$T"
  stub docker '
d=$T/dk
case $1 in
  info) exit 0 ;;
  image) [ -f "$d/image" ] && echo sha256:0123456789abcdef0123 ;;
  load) touch "$d/image" ;;
  pull) touch "$d/image" ;;
  login) cat >"$d/password" ;;
  logout) exit 0 ;;
  inspect)
    [ -f "$d/container" ] || exit 1
    case $3 in *Running*) echo true ;; *styx.spec*) cat "$d/spec" ;; esac ;;
  run) for a in "$@"; do case $a in styx.spec=*) echo "${a#styx.spec=}" >"$d/spec" ;; esac; done; touch "$d/container" ;;
  rm) rm -f "$d/container" ;;
  exec) echo /opt/ray/bin/ray ;;
esac'
}

tarball() {
  mkdir -p "$T/.cache/styx/images"
  echo image >"$T/.cache/styx/images/abc.tar"
  export STYX_RAY_IMAGE_TARBALL=.cache/styx/images/abc.tar STYX_RAY_IMAGE_SHA256=abc
}

@test "tarball: loaded, container started with --gpus all on a GPU node, archive removed" {
  tarball
  add_gpus 2
  run_phase ray_container
  assert_status 0
  assert_one_line
  assert_output_matches '^styx ray_container: ok: container styx-ray started'
  assert_log_has '^docker load -i .*/abc.tar$'
  assert_log_has '^docker run -d --name styx-ray --init --network host -v /dev/shm:/dev/shm .*--gpus all'
  [[ ! -e $T/.cache/styx/images/abc.tar ]]
  grep -qF "export PATH='/opt/ray/bin'" "$STYX_CONTAINER_ENV_FILE"
}

@test "no GPU: no --gpus; mounts and run_options one argument each" {
  tarball
  export STYX_RAY_MOUNTS=$'/data/a b\n/work' STYX_RAY_RUN_OPTIONS=$'--ulimit=nofile=65536\n--label=x y'
  run_phase ray_container
  assert_status 0
  assert_log_lacks 'gpus'
  assert_log_has '^docker run -d .* -v /data/a b:/data/a b -v /work:/work .*--ulimit=nofile=65536 --label=x y '
}

@test "same image and options: the container is left alone" {
  tarball
  run_phase ray_container
  assert_status 0
  : >"$STUB_LOG"
  run_phase ray_container
  assert_status 0
  assert_output_matches '^styx ray_container: skipped: container styx-ray already runs'
  assert_log_lacks '^docker (run|rm|load)'
}

@test "changed options replace the container" {
  tarball
  run_phase ray_container
  : >"$STUB_LOG"
  export STYX_RAY_RUN_OPTIONS=--cap-add=SYS_PTRACE
  run_phase ray_container
  assert_status 0
  assert_log_has '^docker rm -f styx-ray$'
  assert_log_has '^docker run -d .*--cap-add=SYS_PTRACE'
}

@test "registry: the password goes to docker login on stdin, never an argument or a log" {
  export STYX_REGISTRY_SERVER=ghcr.io STYX_REGISTRY_USERNAME=me STYX_REGISTRY_PASSWORD=hunter2-pw
  run_phase ray_container
  assert_status 0
  assert_log_has '^docker login --username me --password-stdin ghcr.io$'
  assert_log_has '^docker pull styx-ray:2.60.0$'
  assert_log_has '^docker logout ghcr.io$'
  [[ $(cat "$T/dk/password") == hunter2-pw ]]
  ! grep -rq hunter2 "$STUB_LOG" "$STYX_LOG_DIR"
  [[ $stderr != *hunter2* && $output != *hunter2* ]]
}

@test "pull never and no image: a clear error" {
  export STYX_RAY_PULL=never
  run_phase ray_container
  assert_status 1
  assert_stderr_contains 'setup.ray.container.pull is never'
}
