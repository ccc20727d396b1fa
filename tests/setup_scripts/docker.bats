#!/usr/bin/env bats
# docker.sh: skip / check (never installs) / install via distro or Docker's
# repo, NVIDIA container toolkit.

load helpers

setup() {
  common_setup
  stub_apt
  export STYX_DOCKER_DAEMON_JSON="$T/docker/daemon.json" STYX_DOCKER_START_TIMEOUT=2
  stub curl '
while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2 ;; *) shift ;; esac; done
printf -- "-----BEGIN PGP PUBLIC KEY BLOCK-----\nfake\n-----END PGP PUBLIC KEY BLOCK-----\n" >"$out"'
  mkdir -p "$T/hooks"
  # installing a docker package provides the docker command
  for p in docker.io docker-ce; do
    cat >"$T/hooks/$p" <<HOOK
#!/bin/bash
cat >"$STUB_BIN/docker" <<'D'
#!/bin/bash
printf '%s\n' "docker \$*" >>"\$STUB_LOG"
case \$1 in --version) echo "Docker version 27.3.1, build ce12230" ;; info) [ -f "\$T/daemon-up" ] ;; esac
D
chmod +x "$STUB_BIN/docker"
# the daemon: answers once started (unless told to hang)
cat >"$STUB_BIN/dockerd" <<'D'
#!/bin/bash
printf '%s\n' "dockerd \$*" >>"\$STUB_LOG"
[ -f "\$T/dockerd-hangs" ] || touch "\$T/daemon-up"
D
chmod +x "$STUB_BIN/dockerd"
HOOK
    chmod +x "$T/hooks/$p"
  done
  cat >"$T/hooks/nvidia-container-toolkit" <<HOOK
#!/bin/bash
cat >"$STUB_BIN/nvidia-ctk" <<'D'
#!/bin/bash
printf '%s\n' "nvidia-ctk \$*" >>"\$STUB_LOG"
for a in "\$@"; do case \$a in --config=*) c=\${a#*=} ;; esac; done
mkdir -p "\$(dirname "\$c")"; echo '{"runtimes": {"nvidia": {"path": "nvidia-container-runtime"}}}' >"\$c"
D
chmod +x "$STUB_BIN/nvidia-ctk"
HOOK
  chmod +x "$T/hooks/nvidia-container-toolkit"
}

@test "default mode skip" {
  run_phase docker
  assert_status 0
  [ "$output" = "styx docker: skipped: docker mode skip" ]
}

@test "check without docker: ok 'not installed', installs nothing" {
  mark_available docker.io
  STYX_DOCKER_MODE=check run_phase docker
  assert_status 0
  assert_one_line
  [ "$output" = "styx docker: ok: docker not installed (check only)" ]
  assert_log_lacks '^apt-get'
}

@test "check with docker installed: reports version and daemon state" {
  "$T/hooks/docker.io"
  STYX_DOCKER_MODE=check run_phase docker
  assert_status 0
  [ "$output" = "styx docker: ok: docker 27.3.1 installed, daemon not running (check only)" ]
  assert_log_lacks '^apt-get'
}

@test "check with systemd: daemon state from systemctl" {
  "$T/hooks/docker.io"
  mkdir -p "$STYX_RUN_DIR/systemd/system"
  stub systemctl 'exit 0'
  STYX_DOCKER_MODE=check run_phase docker
  [ "$output" = "styx docker: ok: docker 27.3.1 installed, daemon running (check only)" ]
}

@test "install (distro): docker.io, then skipped on the second run" {
  mark_available docker.io 24.0.7
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
  assert_one_line
  assert_output_matches '^styx docker: ok: docker 27\.3\.1, daemon running: installed docker\.io; started dockerd$'
  assert_log_has '^apt-get install .* docker\.io$'
  assert_log_lacks 'nvidia'
  : >"$STUB_LOG"
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
  [ "$output" = "styx docker: skipped: docker 27.3.1 already installed, daemon running" ]
  assert_log_lacks '^(apt-get|dockerd)'
}

@test "install keeps an existing docker (e.g. docker-ce from the image)" {
  "$T/hooks/docker-ce"
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
  assert_output_matches '^styx docker: ok: docker 27\.3\.1, daemon running: started dockerd$'
  assert_log_lacks '^apt-get'
}

@test "install without systemd: dockerd started detached once, with its pidfile; a running one is kept" {
  mark_available docker.io
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
  [ "$(grep -c '^dockerd ' "$STUB_LOG")" = 1 ]
  assert_log_has "^dockerd --pidfile $STYX_RUN_DIR/docker.pid\$"
  : >"$STUB_LOG"
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
  assert_output_matches '^styx docker: skipped: .*daemon running$'
  assert_log_lacks '^dockerd'
  STYX_ACTION=verify STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
}

@test "install fails naming the log when dockerd never answers" {
  mark_available docker.io
  touch "$T/dockerd-hangs"
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 1
  assert_stderr_contains 'dockerd did not answer `docker info` within 2s (log: '
}

@test "install with systemd enables the service and adds the SSH user to the docker group" {
  mark_available docker.io
  mkdir -p "$STYX_RUN_DIR/systemd/system"
  stub systemctl 'case "$1" in is-enabled|is-active) [ -f "$T/enabled" ] ;; enable) touch "$T/enabled" "$T/daemon-up" ;; esac'
  stub usermod 'exit 0'
  stub id 'case "$*" in "-nG ubuntu") echo "ubuntu adm" ;; "-u ubuntu") echo 1000 ;; *) exec /usr/bin/id "$@" ;; esac'
  STYX_DOCKER_MODE=install STYX_DOCKER_USERS=ubuntu run_phase docker
  assert_status 0
  assert_log_has '^systemctl enable --now docker$'
  assert_log_has '^usermod -aG docker ubuntu$'
  assert_output_matches 'daemon running: installed docker\.io; enabled and started docker\.service; added ubuntu to group docker$'
}

@test "install (docker-repo) with NVIDIA toolkit: signed-by repos, nvidia runtime; second run skipped" {
  set_os ubuntu 22.04 jammy
  for p in docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin nvidia-container-toolkit; do
    mark_available "$p"
  done
  STYX_DOCKER_MODE=install STYX_DOCKER_METHOD=docker-repo STYX_DOCKER_NVIDIA_TOOLKIT=yes run_phase docker
  assert_status 0
  assert_one_line
  assert_output_matches '^styx docker: ok: docker 27\.3\.1, daemon running, nvidia runtime configured: '
  [ "$(cat "$STYX_APT_DIR/sources.list.d/docker.list")" = \
    "deb [arch=amd64 signed-by=$STYX_APT_DIR/keyrings/docker.asc] https://download.docker.com/linux/ubuntu jammy stable" ]
  [ "$(cat "$STYX_APT_DIR/sources.list.d/nvidia-container-toolkit.list")" = \
    "deb [signed-by=$STYX_APT_DIR/keyrings/nvidia-container-toolkit.asc] https://nvidia.github.io/libnvidia-container/stable/deb/\$(ARCH) /" ]
  grep -q 'BEGIN PGP PUBLIC KEY BLOCK' "$STYX_APT_DIR/keyrings/docker.asc"
  assert_log_has 'https://download.docker.com/linux/ubuntu/gpg$'
  assert_log_has '^apt-get install .* docker-ce docker-ce-cli containerd.io docker-buildx-plugin docker-compose-plugin$'
  assert_log_has '^apt-get install .* nvidia-container-toolkit$'
  assert_log_has "^nvidia-ctk runtime configure --runtime=docker --config=$STYX_DOCKER_DAEMON_JSON\$"
  : >"$STUB_LOG"
  STYX_DOCKER_MODE=install STYX_DOCKER_METHOD=docker-repo STYX_DOCKER_NVIDIA_TOOLKIT=yes run_phase docker
  assert_status 0
  [ "$output" = "styx docker: skipped: docker 27.3.1 already installed, daemon running, nvidia runtime configured" ]
  assert_log_lacks '^(apt-get|curl|nvidia-ctk)'
}

@test "toolkit auto: installed only when a GPU is present" {
  mark_available docker.io; mark_available nvidia-container-toolkit
  add_gpus 2
  STYX_DOCKER_MODE=install run_phase docker
  assert_status 0
  assert_log_has '^apt-get install .* nvidia-container-toolkit$'
}

@test "invalid mode fails" {
  STYX_DOCKER_MODE=maybe run_phase docker
  assert_status 1
  assert_stderr_contains "STYX_DOCKER_MODE must be skip, check or install"
}

@test "GPU node with STYX_DOCKER_GPU_IMAGE: docker run --gpus all is checked" {
  mark_available docker.io; mark_available nvidia-container-toolkit
  add_gpus 1
  STYX_DOCKER_MODE=install STYX_DOCKER_GPU_IMAGE=styx-test:latest run_phase docker
  assert_status 0
  assert_log_has '^docker run --rm --gpus all styx-test:latest nvidia-smi -L$'
}
