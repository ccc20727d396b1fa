#!/usr/bin/env bats
# lib.sh helpers: logging, styx_run failure reporting, file helpers, GPU
# detection, apt helper, phase-name derivation.

load helpers

setup() {
  common_setup
}

# run a snippet after lib.sh like a custom user script
run_lib() {
  local body
  body="$(cat "$SCRIPTS/lib.sh")"$'\n'"$1"
  run --separate-stderr env PATH="$STUB_BIN:$SYS_BIN" STYX_PHASE="${PHASE:-libtest}" bash -c "$body" styx-libtest
}

@test "sourcing lib.sh prints nothing and creates nothing" {
  run_lib 'true'
  assert_status 0
  [ -z "$output" ]
  [ -z "$stderr" ]
  [ -z "$(ls -A "$T/log")" ]
  [ -z "$(ls -A "$T/state")" ]
}

@test "lib.sh turns on strict mode (set -euo pipefail)" {
  run_lib 'case $- in *e*u*|*u*e*) ;; *) exit 3 ;; esac; shopt -qo pipefail || exit 4; false; echo unreachable'
  assert_status 1
  [ -z "$output" ]
}

@test "phase name comes from \$0 styx-<phase> when STYX_PHASE is unset" {
  local body
  body="$(cat "$SCRIPTS/lib.sh")"$'\n''styx_result ok "hi"'
  run --separate-stderr env -u STYX_PHASE PATH="$STUB_BIN:$SYS_BIN" bash -c "$body" styx-myphase
  assert_status 0
  [ "$output" = "styx myphase: ok: hi" ]
}

@test "standalone run of a phase script sources lib.sh from its directory" {
  run --separate-stderr env -u STYX_PHASE PATH="$STUB_BIN:$SYS_BIN" bash "$SCRIPTS/wait_ssh.sh"
  assert_status 0
  assert_one_line
  assert_output_matches '^styx wait_ssh: ok: .+ reachable \(debian 12\)$'
}

@test "styx_log writes a timestamped line to stderr only" {
  run_lib 'styx_log INFO "hello world"'
  assert_status 0
  [ -z "$output" ]
  [[ $stderr =~ ^\[[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\]\ styx\ libtest\ INFO\ hello\ world$ ]]
}

@test "styx_result rejects a status other than ok/skipped" {
  run_lib 'styx_result failed "x"'
  assert_status 1
  [ -z "$output" ]
}

@test "styx_run: output goes to the phase log, not to stdout" {
  run_lib 'styx_run echo verbose-output; styx_result ok done'
  assert_status 0
  [ "$output" = "styx libtest: ok: done" ]
  grep -q verbose-output "$T/log/libtest.log"
  [[ $stderr != *verbose-output* ]]
}

@test "styx_run: a failing command prints the last 30 log lines to stderr and exits non-zero" {
  stub failing 'for i in $(seq 1 40); do echo "noise $i"; done; echo "E: the real reason" >&2; exit 7'
  ln -sf "$(command -v seq)" "$SYS_BIN/seq"
  run_lib 'styx_run failing --flag; styx_result ok unreachable'
  assert_status 7
  [ -z "$output" ]
  assert_stderr_contains "command failed (exit 7): failing --flag"
  assert_stderr_contains "E: the real reason"
  assert_stderr_contains "noise 40"
  [[ $stderr != *"noise 5"$'\n'* ]]
}

@test "styx_run masks credentials in logged URLs" {
  run_lib 'styx_run echo https://user:hunter2@mirror.example/simple'
  assert_status 0
  ! grep -q hunter2 <(grep '^===' "$T/log/libtest.log")
  grep -q 'https://\*\*\*@mirror.example' "$T/log/libtest.log"
}

@test "styx_write_file_if_changed writes once, then reports unchanged" {
  run_lib 'styx_write_file_if_changed "$T/etc/a.conf" 0640 < <(printf "x=1\n"); echo "changed=$STYX_LAST_CHANGED"
           styx_write_file_if_changed "$T/etc/a.conf" 0640 < <(printf "x=1\n"); echo "changed=$STYX_LAST_CHANGED"'
  assert_status 0
  [ "$output" = $'changed=1\nchanged=0' ]
  assert_stderr_contains "unchanged: $T/etc/a.conf"
  [ "$(stat -c %a "$T/etc/a.conf")" = 640 ]
  [ "$(cat "$T/etc/a.conf")" = "x=1" ]
}

@test "styx_write_file_if_changed fixes a wrong mode without rewriting content" {
  mkdir -p "$T/etc"; printf 'x=1\n' >"$T/etc/a.conf"; chmod 0666 "$T/etc/a.conf"
  run_lib 'styx_write_file_if_changed "$T/etc/a.conf" 0600 < <(printf "x=1\n"); echo "changed=$STYX_LAST_CHANGED"'
  assert_status 0
  [ "$output" = "changed=1" ]
  [ "$(stat -c %a "$T/etc/a.conf")" = 600 ]
}

@test "styx_line_in_file never appends a line twice" {
  mkdir -p "$T/etc"; printf 'first' >"$T/etc/f"
  run_lib 'styx_line_in_file "export X=1" "$T/etc/f"; styx_line_in_file "export X=1" "$T/etc/f"'
  assert_status 0
  [ "$(cat "$T/etc/f")" = $'first\nexport X=1' ]
}

@test "styx_sudo runs directly as root, via sudo -n otherwise" {
  stub id 'case "$1" in -u) echo 1000 ;; -un) echo tester ;; -g) echo 1000 ;; -gn) echo tester ;; *) echo "uid=1000(tester)" ;; esac'
  run_lib 'styx_sudo printf "%s\n" hi'
  assert_status 0
  [ "$output" = hi ]
  assert_log_has '^sudo -n -- printf '
}

@test "styx_detect_gpus counts NVIDIA 3D/VGA functions in sysfs, not NVSwitches or other vendors" {
  add_gpus 8
  add_pci_dev 0000:b0:00.0 0x10de 0x030000   # VGA
  add_pci_dev 0000:c0:00.0 0x10de 0x068000   # NVSwitch (bridge)
  add_pci_dev 0000:c1:00.0 0x10de 0x068000
  add_pci_dev 0000:00:02.0 0x8086 0x030000   # Intel VGA
  add_pci_dev 0000:00:1f.0 0x8086 0x060100
  run_lib 'echo "$(styx_detect_gpus) $(styx_detect_nvswitches)"'
  assert_status 0
  [ "$output" = "9 2" ]
}

@test "styx_detect_gpus falls back to lspci, then nvidia-smi" {
  stub lspci 'printf "00:02.0 0300: 8086:46a6 (rev 0c)\n18:00.0 0302: 10de:2330 (rev a1)\n2a:00.0 0302: 10de:2330 (rev a1)\nc0:00.0 0680: 10de:22a3 (rev a1)\n"'
  run_lib 'styx_detect_gpus'
  assert_status 0
  [ "$output" = 2 ]
  rm "$STUB_BIN/lspci"
  stub_nvidia_smi 580.95.05 4
  run_lib 'styx_detect_gpus'
  [ "$output" = 4 ]
  rm "$STUB_BIN/nvidia-smi"
  run_lib 'styx_detect_gpus'
  [ "$output" = 0 ]
}

@test "styx_apt_install installs only missing packages, updating stale lists first" {
  stub_apt
  mark_available curl; mark_available jq; mark_installed curl
  run_lib 'styx_apt_install curl jq; echo "installed=$STYX_APT_INSTALLED"'
  assert_status 0
  [ "$output" = "installed=jq" ]
  assert_log_has '^apt-get .*update$'
  assert_log_has '^apt-get install .* jq$'
  assert_log_lacks 'install .*curl'
  # second call: all present, apt-get not run at all
  : >"$STUB_LOG"
  run_lib 'styx_apt_install curl jq; echo "installed=$STYX_APT_INSTALLED"'
  [ "$output" = "installed=" ]
  assert_log_lacks '^apt-get'
}

@test "styx_apt_install skips apt-get update when lists are fresh and packages known" {
  stub_apt
  mark_available jq
  touch "$T/apt-lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
  run_lib 'styx_apt_install jq'
  assert_status 0
  assert_log_lacks '^apt-get .*update'
  assert_log_has '^apt-get install'
}

@test "styx_apt_install passes noninteractive settings to apt-get" {
  stub_apt
  mark_available jq
  stub env 'exec "$SYS_BIN/env" "$@"'
  run_lib 'styx_apt_install jq'
  assert_status 0
  assert_log_has 'DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a .*apt-get install -y -q --no-install-recommends'
  assert_log_has 'DPkg::Lock::Timeout=300'
}
