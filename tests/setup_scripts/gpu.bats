#!/usr/bin/env bats
# gpu.sh: detection, keep/install driver, CUDA/cuDNN, verification.

load helpers

setup() {
  common_setup
  stub_apt
  stub modprobe 'exit 1'
  stub uname 'case "$1" in -r) echo 6.1.0-test-amd64 ;; -m) echo x86_64 ;; *) echo Linux ;; esac'
  stub ldconfig 'exit 0'
  stub curl 'while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2 ;; *) shift ;; esac; done; echo fake-deb >"$out"'
  export STYX_CUDA_ROOT="$T/usr/local"
}

# a successful driver install on a fresh machine: the package "brings" the
# module (modprobe succeeds) and nvidia-smi
driver_install_works() { # version
  mkdir -p "$T/hooks"
  cat >"$T/hooks/$1" <<HOOK
#!/bin/bash
echo "$2" >"$T/nv-driver-installed"
HOOK
  chmod +x "$T/hooks/$1"
  stub modprobe "
[ -f \"$T/nv-driver-installed\" ] || exit 1
v=\$(cat \"$T/nv-driver-installed\")
mkdir -p \"$STYX_PROC_ROOT/driver/nvidia\"
printf 'NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  %s  Release Build  (dvs)  Tue Sep 23 2025\n' \"\$v\" >\"$STYX_PROC_ROOT/driver/nvidia/version\"
mkdir -p \"$T/nv\"; echo \"\$v\" >\"$T/nv/driver\""
}

@test "no GPU: skipped, nothing installed" {
  run_phase gpu
  assert_status 0
  assert_one_line
  [ "$output" = "styx gpu: skipped: no NVIDIA GPU detected" ]
  assert_log_lacks '^apt-get'
}

@test "mode skip: skipped even with GPUs" {
  add_gpus 8
  STYX_GPU_MODE=skip run_phase gpu
  assert_status 0
  [ "$output" = "styx gpu: skipped: gpu mode skip" ]
}

@test "GPU present, wanted driver loaded but not from dpkg: kept, nothing installed" {
  add_gpus 8
  add_pci_dev 0000:c0:00.0 0x10de 0x068000
  set_loaded_driver 580.95.05
  stub_nvidia_smi 580.95.05 8
  STYX_NVIDIA_FABRIC_MANAGER=no run_phase gpu
  assert_status 0
  assert_one_line
  [ "$output" = "styx gpu: skipped: already set up: 8x NVIDIA H100 80GB HBM3, driver 580.95.05, CUDA 13.0" ]
  assert_log_lacks '^apt-get'
  assert_log_lacks '^modprobe'
}

@test "full driver version pin must match exactly" {
  add_gpus 2
  set_loaded_driver 580.95.05
  stub_nvidia_smi 580.95.05 2
  STYX_NVIDIA_DRIVER_VERSION=580.95.05 run_phase gpu
  assert_status 0
  assert_output_matches '^styx gpu: skipped: already set up: 2x NVIDIA H100 80GB HBM3, driver 580\.95\.05'
}

@test "ubuntu, GPU present, no driver: installs the server-open branch package and verifies" {
  set_os ubuntu 22.04 jammy
  add_gpus 8
  stub_nvidia_smi 580.95.05 8
  rm "$T/nv/driver"
  mark_available nvidia-driver-580-server-open 580.95.05-0ubuntu0.22.04.1
  mark_available linux-headers-6.1.0-test-amd64 6.1.0
  driver_install_works nvidia-driver-580-server-open 580.95.05
  run_phase gpu
  assert_status 0
  assert_one_line
  [ "$output" = "styx gpu: ok: 8x NVIDIA H100 80GB HBM3, driver 580.95.05, CUDA 13.0" ]
  assert_log_has '^apt-get install .*nvidia-driver-580-server-open linux-headers-6.1.0-test-amd64$'
  assert_log_has '^modprobe nvidia$'
}

@test "driver mismatch (other branch loaded): installs wanted branch, then fails with a reboot hint" {
  set_os ubuntu 24.04 noble
  add_gpus 8
  set_loaded_driver 550.127.05
  stub_nvidia_smi 550.127.05 8
  mark_installed nvidia-driver-550-server-open 550.127.05-0ubuntu1
  mark_available nvidia-driver-580-server-open 580.95.05-0ubuntu1
  run_phase gpu
  assert_status 1
  [ -z "$output" ]
  assert_log_has '^apt-get install .*nvidia-driver-580-server-open'
  assert_stderr_contains "running kernel module is 550.127.05"
  assert_stderr_contains "reboot the node"
}

@test "driver packages installed but module not loadable: reboot hint" {
  set_os ubuntu 22.04 jammy
  add_gpus 1
  mark_installed nvidia-driver-580-server-open 580.95.05-0ubuntu1
  mark_available nvidia-driver-580-server-open 580.95.05-0ubuntu1
  run_phase gpu
  assert_status 1
  assert_log_lacks '^apt-get install'
  assert_log_has '^modprobe nvidia$'
  assert_stderr_contains "not loaded: reboot the node"
}

@test "userspace/kernel mismatch after an upgrade: reboot hint, no install" {
  add_gpus 8
  set_loaded_driver 580.82.07
  stub_nvidia_smi 580.95.05 8
  touch "$T/nv/mismatch"
  run_phase gpu
  assert_status 1
  assert_stderr_contains "Driver/library version mismatch"
  assert_stderr_contains "reboot"
  assert_log_lacks '^apt-get install'
}

@test "debian: driver from NVIDIA's CUDA repo with branch pinning, installed in order" {
  set_os debian 12 bookworm
  add_gpus 4
  stub_nvidia_smi 580.95.05 4 "NVIDIA A100-SXM4-80GB"
  rm "$T/nv/driver"
  mark_available cuda-keyring 1.1-1
  mark_available nvidia-driver-pinning-580 580
  mark_available nvidia-open 580.95.05-1
  driver_install_works nvidia-open 580.95.05
  run_phase gpu
  assert_status 0
  [ "$output" = "styx gpu: ok: 4x NVIDIA A100-SXM4-80GB, driver 580.95.05, CUDA 13.0" ]
  assert_log_has 'debian12/x86_64/cuda-keyring_1.1-1_all.deb'
  assert_log_has '^dpkg -i .*cuda-keyring.deb$'
  # pinning package in its own transaction, before the driver
  [ "$(grep -nE '^apt-get install .*nvidia-driver-pinning-580$' "$STUB_LOG" | cut -d: -f1)" -lt \
    "$(grep -nE '^apt-get install .*nvidia-open=580.95.05-1$' "$STUB_LOG" | cut -d: -f1)" ]
}

@test "force with no GPU detected: proceeds (does not skip) and fails verification" {
  set_os ubuntu 22.04 jammy
  mark_available nvidia-driver-580-server-open 580.95.05-0ubuntu1
  STYX_GPU_MODE=force run_phase gpu
  assert_status 1
  [ -z "$output" ]
  assert_stderr_contains "STYX_GPU_MODE=force: no NVIDIA GPU detected, proceeding anyway"
  assert_log_has '^apt-get install .*nvidia-driver-580-server-open'
}

@test "force with a driver loaded but nvidia-smi listing no GPU: verification fails" {
  set_loaded_driver 580.95.05
  stub_nvidia_smi 580.95.05 0
  echo 580.95.05 >"$T/nv/driver"
  stub nvidia-smi '
case "$*" in
  *--query-gpu=driver_version*) echo 580.95.05 ;;
  *--query-gpu=name*) exit 0 ;;
  *) echo "No devices were found"; exit 6 ;;
esac'
  STYX_GPU_MODE=force run_phase gpu
  assert_status 1
  assert_stderr_contains "nvidia-smi lists no GPUs"
}

@test "fewer GPUs than STYX_GPU_EXPECTED_COUNT fails" {
  add_gpus 4
  set_loaded_driver 580.95.05
  stub_nvidia_smi 580.95.05 4
  STYX_GPU_EXPECTED_COUNT=8 run_phase gpu
  assert_status 1
  assert_stderr_contains "expected 8 GPUs, nvidia-smi shows 4"
}

@test "CUDA toolkit and cuDNN installed from NVIDIA's repo when missing; second run skipped" {
  set_os ubuntu 22.04 jammy
  add_gpus 8
  set_loaded_driver 580.95.05
  stub_nvidia_smi 580.95.05 8
  mark_available cuda-keyring 1.1-1
  mark_available cuda-toolkit-12-4 12.4.1-1
  mark_available cudnn9-cuda-12 9.5.0-1
  mkdir -p "$T/hooks"
  cat >"$T/hooks/cuda-toolkit-12-4" <<HOOK
#!/bin/bash
mkdir -p "$STYX_CUDA_ROOT/cuda-12.4/bin"
printf '#!/bin/bash\necho "Cuda compilation tools, release 12.4, V12.4.131"\n' >"$STYX_CUDA_ROOT/cuda-12.4/bin/nvcc"
chmod +x "$STYX_CUDA_ROOT/cuda-12.4/bin/nvcc"
HOOK
  cat >"$T/hooks/cudnn9-cuda-12" <<HOOK
#!/bin/bash
touch "$T/cudnn-installed"
HOOK
  chmod +x "$T/hooks/"*
  stub ldconfig "[ \"\$1\" = -p ] && [ -f \"$T/cudnn-installed\" ] && printf '\tlibcudnn.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9\n'; exit 0"
  STYX_CUDA_VERSION=12.4 STYX_CUDNN_VERSION=9 run_phase gpu
  assert_status 0
  [ "$output" = "styx gpu: ok: 8x NVIDIA H100 80GB HBM3, driver 580.95.05, CUDA 12.4" ]
  assert_log_has 'ubuntu2204/x86_64/cuda-keyring_1.1-1_all.deb'
  assert_log_has '^apt-get install .*cuda-toolkit-12-4$'
  assert_log_has '^apt-get install .*cudnn9-cuda-12$'
  grep -q "cuda-12.4/bin" "$STYX_PROFILE_DIR/styx-cuda.sh"
  : >"$STUB_LOG"
  STYX_CUDA_VERSION=12.4 STYX_CUDNN_VERSION=9 run_phase gpu
  assert_status 0
  [ "$output" = "styx gpu: skipped: already set up: 8x NVIDIA H100 80GB HBM3, driver 580.95.05, CUDA 12.4" ]
  assert_log_lacks '^apt-get'
  assert_log_lacks '^curl'
}

@test "NVSwitch system: fabric manager installed for the driver branch" {
  set_os ubuntu 22.04 jammy
  add_gpus 8
  add_pci_dev 0000:c0:00.0 0x10de 0x068000
  set_loaded_driver 580.95.05
  stub_nvidia_smi 580.95.05 8
  mark_available nvidia-fabricmanager-580 580.95.05-1
  run_phase gpu
  assert_status 0
  assert_log_has '^apt-get install .*nvidia-fabricmanager-580$'
  assert_output_matches '^styx gpu: ok: 8x NVIDIA H100'
}
