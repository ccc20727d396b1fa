#!/usr/bin/env bats
# conda.sh: disabled, checksum verification, install + env creation, rerun.

load helpers

setup() {
  common_setup
  export STYX_CONDA_PREFIX="$T/opt/conda"
  export STYX_CONDA_INSTALLER_URL="https://mirror.example/Miniforge3-Linux-x86_64.sh"
  # the "installer" creates prefix/bin/conda (a stub that records calls)
  cat >"$T/installer.sh" <<'INST'
#!/bin/bash
while [ $# -gt 0 ]; do case $1 in -p) prefix=$2; shift 2 ;; *) shift ;; esac; done
mkdir -p "$prefix/bin" "$prefix/etc/profile.d"
cat >"$prefix/bin/conda" <<'C'
#!/bin/bash
printf '%s\n' "conda $*" >>"$STUB_LOG"
prefix=$(cd "$(dirname "$0")/.." && pwd)
case $1 in
  --version) echo "conda 24.11.3" ;;
  create) for a in "$@"; do [ "$prev" = -n ] && mkdir -p "$prefix/envs/$a"; prev=$a; done
          printf 'python 3.11.9 h1 conda-forge\nnumpy 1.26.4 py1 conda-forge\n' >"$prefix/list" ;;
  list) echo "# packages in environment"; cat "$prefix/list" 2>/dev/null ;;
  install) echo "installed" ;;
esac
C
chmod +x "$prefix/bin/conda"
INST
  stub curl "while [ \$# -gt 0 ]; do case \$1 in -o) out=\$2; shift 2 ;; *) shift ;; esac; done; cp '$T/installer.sh' \"\$out\""
  SHA=$(sha256sum "$T/installer.sh" | cut -d' ' -f1)
}

@test "disabled by default" {
  run_phase conda
  assert_status 0
  [ "$output" = "styx conda: skipped: conda disabled (STYX_CONDA_ENABLED=0)" ]
  assert_log_lacks curl
}

@test "installer checksum mismatch fails before running it" {
  STYX_CONDA_ENABLED=1 STYX_CONDA_INSTALLER_SHA256=0000000000000000000000000000000000000000000000000000000000000000 run_phase conda
  assert_status 1
  [ -z "$output" ]
  assert_stderr_contains "sha256 mismatch for https://mirror.example/Miniforge3-Linux-x86_64.sh"
  assert_stderr_contains "got $SHA"
  [ ! -e "$STYX_CONDA_PREFIX" ]
}

@test "install with verified checksum, env created; second run skipped" {
  STYX_CONDA_ENABLED=1 STYX_CONDA_INSTALLER_SHA256=$SHA STYX_CONDA_ENV_NAME=ml STYX_CONDA_PYTHON=3.11 \
    STYX_CONDA_PACKAGES="numpy=1.26" run_phase conda
  assert_status 0
  assert_one_line
  assert_output_matches "^styx conda: ok: conda 24\.11\.3 at $STYX_CONDA_PREFIX, env ml: installed conda into"
  assert_log_has '^conda create -y -q -n ml python=3.11 numpy=1.26$'
  grep -q "$STYX_CONDA_PREFIX/etc/profile.d/conda.sh" "$STYX_PROFILE_DIR/styx-conda.sh"
  : >"$STUB_LOG"
  STYX_CONDA_ENABLED=1 STYX_CONDA_INSTALLER_SHA256=$SHA STYX_CONDA_ENV_NAME=ml STYX_CONDA_PYTHON=3.11 \
    STYX_CONDA_PACKAGES="numpy=1.26" run_phase conda
  assert_status 0
  [ "$output" = "styx conda: skipped: conda 24.11.3 at $STYX_CONDA_PREFIX up to date, env ml" ]
  assert_log_lacks '^curl|^conda (create|install)'
}

@test "existing env missing a package: only that package is installed" {
  STYX_CONDA_ENABLED=1 STYX_CONDA_ENV_NAME=ml STYX_CONDA_PACKAGES="numpy" run_phase conda
  assert_status 0
  : >"$STUB_LOG"
  STYX_CONDA_ENABLED=1 STYX_CONDA_ENV_NAME=ml STYX_CONDA_PACKAGES=$'numpy\nscipy=1.13' run_phase conda
  assert_status 0
  assert_log_has '^conda install -y -q -n ml scipy=1.13$'
  assert_output_matches 'installed scipy=1.13 into env ml$'
}
