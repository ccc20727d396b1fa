#!/usr/bin/env bats
# check_drift() of the phase scripts (STYX_ACTION=verify, as `styx drift` runs them): read-only,
# one result line, `ok` when the node is as the phase left it, else `drifted` with what differs.

load helpers

setup() {
  common_setup
  export STYX_ENV_FILE="$T/etc/styx/env.sh"
  CONTENT="export HF_TOKEN_SECRET='hf_s3cr3t'
export WANDB_PROJECT='styx'"
}

verify_phase() { STYX_ACTION=verify run_phase "$@"; }

@test "env_vars: ok after the phase; an edited or removed file drifts; the content is never printed" {
  STYX_ENV_CONTENT="$CONTENT" run_phase env_vars
  STYX_ENV_CONTENT="$CONTENT" verify_phase env_vars
  assert_status 0
  assert_one_line
  assert_output_matches "^styx env_vars: ok: $STYX_ENV_FILE matches \(sha256 [0-9a-f]{12}\)$"
  echo "export INJECTED=1" >>"$STYX_ENV_FILE"
  STYX_ENV_CONTENT="$CONTENT" verify_phase env_vars
  assert_status 0
  assert_output_matches "^styx env_vars: drifted: $STYX_ENV_FILE content changed \(sha256 [0-9a-f]{12}, want [0-9a-f]{12}\)$"
  [[ $output$stderr != *s3cr3t* && $output$stderr != *INJECTED* ]]
  rm -f "$STYX_ENV_FILE"
  STYX_ENV_CONTENT="$CONTENT" verify_phase env_vars
  assert_output_matches "^styx env_vars: drifted: $STYX_ENV_FILE missing$"
  # read-only: the check put nothing back
  [ ! -e "$STYX_ENV_FILE" ]
}

@test "workdir: owner and mode checked, nothing changed" {
  STYX_WORKDIR="$T/work" run_phase workdir
  STYX_WORKDIR="$T/work" verify_phase workdir
  assert_output_matches '^styx workdir: ok: '
  chmod 0700 "$T/work"
  STYX_WORKDIR="$T/work" verify_phase workdir
  assert_output_matches "^styx workdir: drifted: $T/work is [^ ]+ 700, want [^ ]+ 0755$"
  [ "$(stat -c %a "$T/work")" = 700 ]
  rmdir "$T/work"
  STYX_WORKDIR="$T/work" verify_phase workdir
  assert_output_matches "^styx workdir: drifted: $T/work missing$"
  [ ! -e "$T/work" ]
}

@test "system_packages: a removed package drifts, apt is never called" {
  stub_apt
  mark_installed jq 1.6-2
  mark_installed curl 7.88
  STYX_APT_PACKAGES=$'jq\ncurl=7.88' verify_phase system_packages
  assert_status 0
  [ "$output" = "styx system_packages: ok: 2 packages installed" ]
  STYX_APT_PACKAGES=$'jq\ncurl=7.88\nhtop' verify_phase system_packages
  [ "$output" = "styx system_packages: drifted: package htop not installed" ]
  assert_log_lacks '^apt-get '
}

@test "gpu: the expected count through nvidia-smi; no GPU in auto mode is fine" {
  STYX_GPU_MODE=auto verify_phase gpu
  [ "$output" = "styx gpu: ok: no NVIDIA GPU on this node" ]
  add_gpus 2
  stub_nvidia_smi 580.95.05 2
  STYX_GPU_MODE=auto STYX_GPU_EXPECTED_COUNT=2 verify_phase gpu
  [ "$output" = "styx gpu: ok: 2 GPU(s) answer nvidia-smi" ]
  STYX_GPU_MODE=auto STYX_GPU_EXPECTED_COUNT=4 verify_phase gpu
  [ "$output" = "styx gpu: drifted: nvidia-smi shows 2 GPU(s), expected 4" ]
  rm "$STUB_BIN/nvidia-smi"
  STYX_GPU_MODE=auto verify_phase gpu
  [ "$output" = "styx gpu: drifted: nvidia-smi missing (2 GPU(s) on the bus)" ]
  assert_log_lacks '^apt-get '
}

@test "file_sync: a deleted or edited synced file drifts, by name; nothing is extracted" {
  export HOME="$T/home"
  REL=${T#/}/dst
  mkdir -p "$T/src/$REL/app/conf" "$T/dst" "$HOME/.cache/styx/sync"
  echo one >"$T/src/$REL/app/a.txt"
  echo two >"$T/src/$REL/app/conf/b.conf"
  tar -czf "$T/a.tgz" -C "$T/src" --no-recursion "$REL/app" "$REL/app/a.txt" "$REL/app/conf" "$REL/app/conf/b.conf"
  SHA=$(sha256sum "$T/a.tgz" | cut -d' ' -f1)
  mv "$T/a.tgz" "$HOME/.cache/styx/sync/$SHA.tar.gz"
  export STYX_SYNC_ARCHIVE=".cache/styx/sync/$SHA.tar.gz" STYX_SYNC_SHA256=$SHA STYX_SYNC_ROOTS="$T/dst/app"
  run_phase file_sync
  assert_status 0
  verify_phase file_sync
  assert_status 0
  [ "$output" = "styx file_sync: ok: synced files match (sha256 ${SHA:0:12})" ]
  rm "$T/dst/app/conf/b.conf"
  echo uno >"$T/dst/app/a.txt"  # same size: only the content differs
  verify_phase file_sync
  assert_one_line
  assert_output_matches "^styx file_sync: drifted: "
  [[ $output == *"$T/dst/app/conf/b.conf missing"* && $output == *"$T/dst/app/a.txt (Contents differ)"* ]]
  [ ! -e "$T/dst/app/conf/b.conf" ]
  # another archive recorded: says so
  STYX_SYNC_SHA256=0000000000000000 verify_phase file_sync
  [[ $output == *"node records sync ${SHA:0:12}, want 000000000000"* ]]
}

@test "python_env: unsatisfied specs drift (offline check, no pip install)" {
  local py
  py=$(PATH=/usr/local/bin:/usr/bin:/bin type -P python3)
  ln -sf "$py" "$SYS_BIN/python3"
  STYX_PYTHON_ENV_TOOL=none STYX_PIP_PACKAGES=pip verify_phase python_env
  assert_status 0
  assert_output_matches '^styx python_env: ok: python [0-9.]+ at .*, 1 pip specs satisfied$'
  STYX_PYTHON_ENV_TOOL=none STYX_PIP_PACKAGES=$'pip\nstyx-no-such-package==9.9' verify_phase python_env
  [ "$output" = "styx python_env: drifted: styx-no-such-package==9.9 not satisfied" ]
  STYX_PYTHON_ENV_TOOL=venv STYX_VENV_DIR="$T/venv" verify_phase python_env
  [ "$output" = "styx python_env: drifted: no python at $T/venv/bin/python" ]
}

@test "ray: not installed and not running drift; the token is never printed" {
  STYX_RAY_ROLE=worker STYX_RAY_HEAD_IP=10.0.0.2 STYX_NODE_IP=10.0.0.3 STYX_VENV_DIR="$T/venv" \
    STYX_RAY_AUTH=token STYX_RAY_AUTH_TOKEN=tok-s3cr3t STYX_RAY_TOKEN_FILE="$T/token" verify_phase ray
  assert_status 0
  assert_one_line
  [ "$output" = "styx ray: drifted: ray not installed, want 2.60.0; ray auth token file $T/token missing; ray was not started by styx for 10.0.0.2:6379; ray not running on this node" ]
  [[ $output$stderr != *s3cr3t* ]]
  [ ! -e "$T/token" ]
}
