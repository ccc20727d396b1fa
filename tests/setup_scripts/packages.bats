#!/usr/bin/env bats
# system_packages.sh (fake apt) and python_env.sh (real python3 venv + pip
# against a local wheel directory, no network).

load helpers

setup() {
  common_setup
  stub_apt
}

# make_wheel DIR NAME VERSION [REQUIRES...]: a minimal pure-Python wheel
make_wheel() {
  /usr/bin/python3 - "$@" <<'PY'
import base64, hashlib, os, sys, zipfile
d, name, ver, *requires = sys.argv[1:]
os.makedirs(d, exist_ok=True)
info = f"{name}-{ver}.dist-info"
files = {
    f"{name}/__init__.py": f"__version__ = {ver!r}\n",
    f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n"
    + "".join(f"Requires-Dist: {r}\n" for r in requires),
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: styx-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile(f"{d}/{name}-{ver}-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        data = text.encode()
        z.writestr(path, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
PY
}

need_real_python() {
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null ||
    skip "needs /usr/bin/python3 with venv/ensurepip"
  ln -sf /usr/bin/python3 "$SYS_BIN/python3"
  export STYX_VENV_DIR="$T/venv" PIP_NO_INDEX=1 PIP_FIND_LINKS="$T/wheels"
  make_wheel "$T/wheels" styxdep 1.2
  make_wheel "$T/wheels" styxdemo 1.0 "styxdep>=1.0"
  make_wheel "$T/wheels" styxdemo 2.0 "styxdep>=1.0"
}

# ---------------------------------------------------------------- system_packages

@test "system_packages: nothing requested -> skipped" {
  run_phase system_packages
  assert_status 0
  [ "$output" = "styx system_packages: skipped: no packages requested (STYX_APT_PACKAGES empty)" ]
}

@test "system_packages: all present -> skipped without apt-get" {
  mark_installed jq; mark_installed curl
  STYX_APT_PACKAGES=$'jq\ncurl' run_phase system_packages
  assert_status 0
  [ "$output" = "styx system_packages: skipped: all 2 packages already installed" ]
  assert_log_lacks '^apt-get'
}

@test "system_packages: installs only the missing ones" {
  mark_installed curl; mark_available jq; mark_available htop
  STYX_APT_PACKAGES=$'curl\njq\nhtop' run_phase system_packages
  assert_status 0
  assert_one_line
  [ "$output" = "styx system_packages: ok: installed 2/3 packages: jq htop" ]
  assert_log_has '^apt-get install .* jq htop$'
  : >"$STUB_LOG"
  STYX_APT_PACKAGES=$'curl\njq\nhtop' run_phase system_packages
  [ "$output" = "styx system_packages: skipped: all 3 packages already installed" ]
  assert_log_lacks '^apt-get'
}

@test "system_packages: one package per line, each one argument of apt-get" {
  mark_available jq; mark_available curl 7.88.1-10+deb12u5
  STYX_APT_PACKAGES=$'jq\ncurl=7.88.1-10+deb12u5' run_phase system_packages
  assert_status 0
  local -a got
  mapfile -d '' -t got <"$T/argv.apt-get"
  [ "${got[-2]}" = jq ] && [ "${got[-1]}" = curl=7.88.1-10+deb12u5 ]
}

@test "system_packages: pinned version that differs is (re)installed" {
  mark_installed jq 1.6-2.1; mark_available jq 1.7.1-3
  STYX_APT_PACKAGES="jq=1.7.1-3" run_phase system_packages
  assert_status 0
  assert_log_has '^apt-get install .* jq=1\.7\.1-3$'
}

@test "system_packages: apt failure prints the log tail on stderr, nothing on stdout" {
  mark_available jq
  printf 'E: Failed to fetch http://deb.debian.org/pool/jq.deb  404  Not Found\n' >"$T/apt-fail"
  STYX_APT_PACKAGES="jq" run_phase system_packages
  assert_status 100
  [ -z "$output" ]
  assert_stderr_contains "command failed (exit 100)"
  assert_stderr_contains "E: Failed to fetch http://deb.debian.org/pool/jq.deb  404  Not Found"
  assert_stderr_contains "last 30 lines of $STYX_LOG_DIR/system_packages.log"
}

# a tarball of apt lists as `sandboxctl apt-lists` packs it (styx-fetched dated AGE seconds ago), and a
# curl that serves it for URL http://cache/lists.tar (anything else: curl's "could not connect", 7)
make_apt_lists_cache() {
  local age=${1:-0}
  mkdir -p "$T/pack"
  printf 'Package: jq\n' >"$T/pack/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
  touch -d "@$(($(date +%s) - age))" "$T/pack/styx-fetched" "$T/pack/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
  mv "$T/pack/styx-fetched" "$T/styx-fetched"
  # packed as `sandboxctl apt-lists` packs it: the lists' folder, then the stamp
  tar -cf "$T/lists.tar" -C "$T/pack" . -C "$T" ./styx-fetched
  stub curl '
out=""; url=""
while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift 2 ;; --connect-timeout|--max-time) shift 2 ;; -*) shift ;; *) url=$1; shift ;; esac; done
[ "$url" = http://cache/lists.tar ] || { echo "curl: (7) Failed to connect" >&2; exit 7; }
cp "$T/lists.tar" "$out"'
}

@test "system_packages: apt lists from the cluster's cache instead of apt-get update, dated by the cache" {
  make_apt_lists_cache 120
  mark_available jq
  STYX_APT_LISTS_URL=http://cache/lists.tar STYX_APT_PACKAGES=jq run_phase system_packages
  assert_status 0
  [ "$output" = "styx system_packages: ok: installed 1/1 packages: jq" ]
  assert_log_lacks '^apt-get .*update'
  assert_log_has '^apt-get install .* jq$'
  assert_log_has '^curl .*http://cache/lists.tar$'
  assert_stderr_contains "apt lists from the cluster's cache http://cache/lists.tar (fetched "
  [ -f "$T/apt-lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages" ]
  [ ! -e "$T/apt-lists/styx-fetched" ]
  # the freshness stamp carries the cache's time, not now: the lists' age stays bounded
  [ "$(stat -c %Y "$T/state/apt-update.stamp")" = "$(stat -c %Y "$T/styx-fetched")" ]
  grep -q '^=== done in [0-9.]* s, [0-9.]* CPU s$' "$STYX_LOG_DIR/system_packages.log"
}

@test "system_packages: an apt lists cache that is stale or gone falls back to apt-get update" {
  make_apt_lists_cache 7200 # older than STYX_APT_LISTS_MAX_AGE (3600)
  mark_available jq
  STYX_APT_LISTS_URL=http://cache/lists.tar STYX_APT_PACKAGES=jq run_phase system_packages
  assert_status 0
  assert_stderr_contains "apt lists cache http://cache/lists.tar is older than 3600s: apt-get update"
  assert_log_has '^apt-get .*update$'
  [ ! -e "$T/apt-lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages" ]
  : >"$STUB_LOG"
  rm -f "$T/state/apt-update.stamp"
  mark_available htop
  STYX_APT_LISTS_URL=http://gone/lists.tar STYX_APT_PACKAGES=htop run_phase system_packages
  assert_status 0
  [ "$output" = "styx system_packages: ok: installed 1/1 packages: htop" ]
  assert_stderr_contains "apt lists cache http://gone/lists.tar unavailable (see the phase log): apt-get update"
  assert_log_has '^apt-get .*update$'
  grep -q '^=== done in [0-9.]* s, [0-9.]* CPU s, exit status 7$' "$STYX_LOG_DIR/system_packages.log"
}

@test "system_packages: fresh lists on the node: the cache is not even fetched" {
  make_apt_lists_cache 0
  mark_available jq
  touch "$T/state/apt-update.stamp"
  STYX_APT_LISTS_URL=http://cache/lists.tar STYX_APT_PACKAGES=jq run_phase system_packages
  assert_status 0
  assert_log_lacks '^curl '
  assert_log_lacks '^apt-get .*update'
}

# ---------------------------------------------------------------- first boot (setup.first_boot)

@test "system_packages: download only (the first-boot job): fresh lists, files fetched, nothing installed" {
  mark_available jq; mark_available htop; mark_installed curl
  STYX_APT_DOWNLOAD_ONLY=1 STYX_APT_PACKAGES=$'jq\nhtop\ncurl' run_phase system_packages
  assert_status 0
  assert_one_line
  [ "$output" = "styx system_packages: ok: apt lists fresh; downloaded: jq htop" ]
  assert_log_has '^apt-get .*update'
  assert_log_has '^apt-get .*install .*--download-only .*jq htop$'
  [ -f "$T/state/apt-update.stamp" ]
  ! grep -q '^jq ' "$T/dpkg/installed"
  # the phase afterwards: the lists are fresh, no apt-get update of its own
  : >"$STUB_LOG"
  STYX_APT_PACKAGES=$'jq\nhtop\ncurl' run_phase system_packages
  assert_status 0
  assert_log_lacks '^apt-get .*update'
  [ "$output" = "styx system_packages: ok: installed 2/3 packages: jq htop" ]
}

@test "system_packages: download only with no packages still updates the lists" {
  STYX_APT_DOWNLOAD_ONLY=1 run_phase system_packages
  assert_status 0
  [ "$output" = "styx system_packages: ok: apt lists fresh; downloaded: nothing" ]
  assert_log_has '^apt-get .*update'
}

@test "system_packages: waits while the first-boot apt job holds its lock, then finds fresh lists" {
  mark_available jq
  mkdir -p "$T/state/first-boot"
  touch "$T/state/first-boot/apt.pending" "$T/state/first-boot/apt.started"
  # the boot job: holds the lock 2 s, updates the lists, removes its mark
  ( exec 9>"$T/state/first-boot/apt.lock"; flock 9; sleep 2; touch "$T/state/apt-update.stamp"
    rm -f "$T/state/first-boot/apt.pending" ) &
  sleep 0.5
  STYX_APT_PACKAGES=jq run_phase system_packages
  wait
  assert_status 0
  [ "$output" = "styx system_packages: ok: installed 1/1 packages: jq" ]
  assert_log_lacks '^apt-get .*update'
  [[ $stderr == *"first-boot apt done (waited "* ]]
}

@test "system_packages: a first-boot job not started yet is waited for, at most STYX_FIRST_BOOT_WAIT_S" {
  mark_available jq
  mkdir -p "$T/state/first-boot"
  touch "$T/state/first-boot/apt.pending"
  STYX_FIRST_BOOT_WAIT_S=2 STYX_APT_PACKAGES=jq run_phase system_packages
  assert_status 0
  [[ $stderr == *"first-boot apt still running after 2s"* ]]
  assert_log_has '^apt-get .*update'  # then it does the work itself
}

@test "system_packages: a started mark older than this boot's pending one (a node from an image) is not the job's" {
  mark_available jq
  mkdir -p "$T/state/first-boot"
  touch -d '-1 day' "$T/state/first-boot/apt.started"
  touch "$T/state/first-boot/apt.pending"
  STYX_FIRST_BOOT_WAIT_S=2 STYX_APT_PACKAGES=jq run_phase system_packages
  assert_status 0
  [[ $stderr == *"first-boot apt still running after 2s"* ]]  # waited for this boot's job, not gone on at once
}

@test "system_packages: a first-boot mark left by work that died is not waited for" {
  mark_available jq
  mkdir -p "$T/state/first-boot"
  touch "$T/state/first-boot/apt.pending" "$T/state/first-boot/apt.started"
  SECONDS=0
  STYX_FIRST_BOOT_WAIT_S=60 STYX_APT_PACKAGES=jq run_phase system_packages
  assert_status 0
  [ "$SECONDS" -lt 30 ]
  [[ $stderr == *"first-boot apt did not finish"* ]]
  assert_log_has '^apt-get .*update'
}

# ---------------------------------------------------------------- python_env

@test "python_env: venv + pinned package, second run skipped, profile written once" {
  need_real_python
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_one_line
  assert_output_matches "^styx python_env: ok: venv $T/venv \(python 3\.[0-9]+\.[0-9]+\), 1 pip specs satisfied; created venv $T/venv; wrote $STYX_PROFILE_DIR/styx-venv.sh; pip installed: styxdemo==1\.0; wrote $STYX_COMMAND_DIR/python; wrote $STYX_COMMAND_DIR/pip$"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep; assert styxdemo.__version__ == "1.0"'
  grep -qF "$T/venv/bin" "$STYX_PROFILE_DIR/styx-venv.sh"
  # the profile snippet is POSIX sh and idempotent
  run sh -c "PATH=/usr/bin:/bin; . '$STYX_PROFILE_DIR/styx-venv.sh'; . '$STYX_PROFILE_DIR/styx-venv.sh'; echo \$PATH"
  [ "$output" = "$T/venv/bin:/usr/bin:/bin" ]
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_output_matches "^styx python_env: skipped: venv $T/venv \(python 3\.[0-9.]+\) up to date, 1 pip specs satisfied$"
  ! grep -q 'pip install' <(sed -n '/skipped/,$p' "$STYX_LOG_DIR/python_env.log")
}

@test "python_env: changed pin or a missing dependency triggers pip install" {
  need_real_python
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  STYX_PIP_PACKAGES="styxdemo==2.0" run_phase python_env
  assert_status 0
  assert_output_matches 'pip installed: styxdemo==2\.0$'
  "$T/venv/bin/python" -m pip uninstall -y -q styxdep
  STYX_PIP_PACKAGES="styxdemo==2.0" run_phase python_env
  assert_status 0
  assert_output_matches '^styx python_env: ok: '
  "$T/venv/bin/python" -c 'import styxdep'
}

@test "python_env: one spec per line reaches pip whole: a marker with spaces, an option line" {
  need_real_python
  unset PIP_FIND_LINKS
  local specs
  specs=$'styxdemo==1.0; python_version >= "3"\nstyxnever==9; python_version < "3"\n'"--find-links=$T/wheels"
  STYX_PIP_PACKAGES=$specs run_phase python_env
  assert_status 0
  assert_output_matches ', 3 pip specs satisfied; .*pip installed: '
  "$T/venv/bin/python" -c 'import styxdemo; assert styxdemo.__version__ == "1.0"'
  ! "$T/venv/bin/python" -c 'import styxnever' 2>/dev/null
  STYX_PIP_PACKAGES=$specs run_phase python_env
  assert_status 0
  assert_output_matches '^styx python_env: skipped: .* up to date, 3 pip specs satisfied$'
}

@test "python_env: python and pip of the venv for every shell; a command that is not styx's is left alone" {
  need_real_python
  mkdir -p "$STYX_COMMAND_DIR"
  printf '#!/bin/sh\necho not-styx\n' >"$STYX_COMMAND_DIR/pip"
  chmod +x "$STYX_COMMAND_DIR/pip"
  run_phase python_env
  assert_status 0
  assert_stderr_contains "$STYX_COMMAND_DIR/pip exists and is not styx's: left alone"
  # a non-login shell: no profile.d, just a PATH with the command dir
  run env -i PATH="$STYX_COMMAND_DIR:/usr/bin:/bin" sh -c 'python -c "import sys; print(sys.prefix)"'
  [ "$output" = "$T/venv" ]
  [ "$("$STYX_COMMAND_DIR/pip")" = not-styx ]
  [ ! -e "$STYX_COMMAND_DIR/ray" ] # this venv has no ray
  run_phase python_env
  assert_status 0
  assert_output_matches '^styx python_env: skipped: '
}

@test "python_env: unavailable python version fails with a clear message" {
  ln -sf /usr/bin/python3 "$SYS_BIN/python3" 2>/dev/null || true
  STYX_PYTHON_VERSION=3.99 STYX_VENV_DIR="$T/venv" run_phase python_env
  assert_status 1
  assert_stderr_contains "Python 3.99 is not installed and not available from apt on debian 12"
  assert_stderr_contains "STYX_PYTHON_ENV_TOOL=uv"
}

@test "python_env: invalid tool is rejected" {
  STYX_PYTHON_ENV_TOOL=conda run_phase python_env
  assert_status 1
  assert_stderr_contains "STYX_PYTHON_ENV_TOOL must be venv, uv or none"
}

# ---------------------------------------------------------------- python_env: installer, wheel cache

# make_fake_uv DIR [BODY]: a wheel `uv 0.13.9` whose `uv` script logs to $STUB_LOG and does what
# `uv pip install --python PY ARGS...` does with pip (or runs BODY instead)
make_fake_uv() {
  local d=$1 body=${2:-}
  [[ -n $body ]] || body='[[ $1 == pip && $2 == install && $3 == --python ]] || exit 2
py=$4; shift 4; "$py" -m pip install -q "$@" && echo "Installed 2 packages in 3ms"'
  /usr/bin/python3 - "$d" "$body" <<'PY'
import base64, hashlib, os, sys, zipfile
d, body = sys.argv[1:]
os.makedirs(d, exist_ok=True)
info, script = "uv-0.13.9.dist-info", "uv-0.13.9.data/scripts/uv"
files = {
    script: '#!/bin/bash\nprintf "%s\\n" "uv $*" >>"$STUB_LOG"\n'
    'if [[ $1 == --version ]]; then echo "uv 0.13.9"; exit 0; fi\n' + body + "\n",
    "uv/__init__.py": "",
    f"{info}/METADATA": "Metadata-Version: 2.1\nName: uv\nVersion: 0.13.9\n",
    f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: styx-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
with zipfile.ZipFile(f"{d}/uv-0.13.9-py3-none-any.whl", "w") as z:
    for path, text in files.items():
        data = text.encode()
        zi = zipfile.ZipInfo(path)
        zi.external_attr = (0o100755 if path == script else 0o100644) << 16  # pip keeps the executable bit
        z.writestr(zi, data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
PY
}

@test "python_env: installer uv comes from its wheel without pip, installs the packages, is kept" {
  need_real_python
  make_fake_uv "$T/wheels"
  export STYX_PIP_INSTALLER=uv STYX_UV_TOOL_DIR="$T/tools/uv"
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_one_line
  assert_output_matches "; installed uv 0\.13\.9; created venv .*; uv installed: styxdemo==1\.0; wrote "
  assert_stderr_contains "uv 0.13.9 from its wheel into $T/tools/uv (no pip needed)"
  # this fake uv cannot make environments: python -m venv does, logged
  assert_stderr_contains "uv could not make the environment (see the phase log): python -m venv instead"
  grep -qxF "uv pip install --python $T/venv/bin/python styxdemo==1.0" "$STUB_LOG"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep; assert styxdemo.__version__ == "1.0"'
  ! "$T/venv/bin/python" -c 'import uv' 2>/dev/null # uv is a tool, not in the user's environment
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_output_matches '^styx python_env: skipped: '
  STYX_PIP_PACKAGES="styxdemo==2.0" run_phase python_env
  assert_status 0
  assert_output_matches "ok: .* 1 pip specs satisfied; uv installed: styxdemo==2\.0$"
  assert_stderr_contains "uv 0.13.9 already installed ($T/tools/uv/bin/uv)"
}

@test "python_env: with installer uv, uv makes the environment (pip seeded, no ensurepip)" {
  need_real_python
  # a fake uv whose `venv --seed --python PY ... DIR` makes a pip-less venv plus a pip that logs
  make_fake_uv "$T/wheels" 'if [[ $1 == venv ]]; then
  py=""; for ((i = 1; i <= $#; i++)); do [[ ${!i} == --python ]] && { j=$((i + 1)); py=${!j}; }; done
  dir=${!#}; "$py" -m venv --without-pip "$dir" || exit 3
  printf "#!/bin/sh\necho pip 99\n" >"$dir/bin/pip"; chmod +x "$dir/bin/pip"; exit 0
fi
[[ $1 == pip && $2 == install ]] || exit 2
echo "Installed 0 packages"'
  export STYX_PIP_INSTALLER=uv STYX_UV_TOOL_DIR="$T/tools/uv"
  run_phase python_env
  assert_status 0
  assert_one_line
  assert_output_matches "; installed uv 0\.13\.9; created venv $T/venv"
  grep -qE "^uv venv --seed --allow-existing --python /.*python3 $T/venv$" "$STUB_LOG"
  [[ $stderr != *"python -m venv instead"* ]]
  [ -f "$T/venv/pyvenv.cfg" ] && [ ! -e "$T/venv/lib/python3.11/site-packages/pip" ] # no ensurepip ran
  run_phase python_env
  assert_output_matches '^styx python_env: skipped: '
}

@test "python_env: uv that cannot be had falls back to pip, logged" {
  need_real_python
  export STYX_PIP_INSTALLER=uv STYX_UV_TOOL_DIR="$T/tools/uv" # no uv wheel anywhere
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_one_line
  assert_output_matches "pip installed: styxdemo==1\.0; .*uv unavailable, pip$"
  assert_stderr_contains "uv 0.13.9 could not be installed from the index (see the phase log): installing with pip"
  "$T/venv/bin/python" -c 'import styxdemo'
  [ ! -e "$T/tools/uv" ]
  ! ls "$T/tools" | grep -q . # no half-installed tool left
}

@test "python_env: uv that fails to install falls back to pip; pip failing fails the phase" {
  need_real_python
  make_fake_uv "$T/wheels" 'exit 2'
  export STYX_PIP_INSTALLER=uv STYX_UV_TOOL_DIR="$T/tools/uv"
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0; .*uv failed, pip$"
  assert_stderr_contains "uv failed (see the phase log): installing with pip"
  STYX_PIP_PACKAGES="styxnothere==1.0" run_phase python_env
  assert_status 1
  [ -z "$output" ]
  assert_stderr_contains "command failed"
}

@test "python_env: installer pip never fetches uv" {
  need_real_python
  make_fake_uv "$T/wheels"
  STYX_PIP_INSTALLER=pip STYX_UV_TOOL_DIR="$T/tools/uv" STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0"
  [ ! -e "$T/tools/uv" ]
  ! grep -q '^uv ' "$STUB_LOG"
}

@test "python_env: invalid installer is rejected" {
  STYX_PIP_INSTALLER=poetry run_phase python_env
  assert_status 1
  assert_stderr_contains "STYX_PIP_INSTALLER must be uv or pip, got 'poetry'"
}

# an index (simple layout, file://) instead of the flat find-links of need_real_python
use_simple_index() {
  unset PIP_FIND_LINKS PIP_NO_INDEX
  local w n
  for w in "$T"/wheels/*.whl; do
    n=$(basename "$w" | cut -d- -f1)
    mkdir -p "$T/simple/$n"
    cp "$w" "$T/simple/$n/"
    printf '<a href="%s">%s</a>\n' "$(basename "$w")" "$(basename "$w")" >>"$T/simple/$n/index.html"
  done
  export STYX_PIP_INDEX_URL="file://$T/simple"
}

@test "python_env: the wheel cache serves the install, the index is not needed" {
  need_real_python
  mkdir -p "$T/cache"
  cp "$T"/wheels/styxd*.whl "$T/cache/"
  use_simple_index
  rm -rf "$T/simple"
  STYX_WHEEL_CACHE_URL="$T/cache" STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0; wrote "
  assert_stderr_contains "installed from the wheel cache $T/cache"
  grep -qF -- "--no-index --find-links $T/cache styxdemo==1.0" "$STYX_LOG_DIR/python_env.log"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep'
}

@test "python_env: a wheel cache that is gone or incomplete falls back to the index, logged" {
  need_real_python
  use_simple_index
  STYX_WHEEL_CACHE_URL="$T/gone" STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  assert_one_line
  assert_output_matches "pip installed: styxdemo==1\.0; .*wheel cache unavailable, from the index$"
  assert_stderr_contains "the wheel cache $T/gone is gone or lacks a wheel"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep'
  mkdir -p "$T/partial" # styxdemo 2.0 without its dependency... which is installed: fine; a new one is not
  cp "$T/wheels/styxdemo-2.0-py3-none-any.whl" "$T/partial/"
  "$T/venv/bin/python" -m pip uninstall -y -q styxdep
  STYX_WHEEL_CACHE_URL="$T/partial" STYX_PIP_PACKAGES="styxdemo==2.0" run_phase python_env
  assert_status 0
  assert_output_matches "wheel cache unavailable, from the index$"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep; assert styxdemo.__version__ == "2.0"'
}

# a wheel cache as wheel_cache.py fill leaves it: the wheels and their .sha256sums
make_wheel_cache() {
  mkdir -p "$T/cache"
  cp "$T"/wheels/styxd*.whl "$T/cache/"
  (cd "$T/cache" && sha256sum -- *.whl >.sha256sums)
}

@test "python_env: copy: the wheel cache is copied once into a local folder and installed from there" {
  need_real_python
  make_wheel_cache
  use_simple_index
  rm -rf "$T/simple"
  STYX_WHEEL_CACHE_FETCH=copy STYX_WHEEL_CACHE_URL="file://$T/cache/" STYX_PIP_PACKAGES="styxdemo==1.0" \
    run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0; wrote "
  local log="$STYX_LOG_DIR/python_env.log"
  grep -qE "^=== \[.*\] \\$ \(copy of the wheel cache file://$T/cache/ into $T/styx-python_env\.[A-Za-z0-9]+\)$" "$log"
  grep -q "^copied 3 files, 0 MiB$" "$log"
  grep -qE -- "--no-index --find-links $T/styx-python_env\.[A-Za-z0-9]+ styxdemo==1\.0$" "$log"
  assert_stderr_contains "installed from the wheel cache file://$T/cache/ (its copy in $T/styx-python_env."
  "$T/venv/bin/python" -c 'import styxdemo, styxdep'
  ! ls -d "$T"/styx-python_env.* 2>/dev/null # the copy went with the phase
}

@test "python_env: copy: a listed sha256 that does not match: the URL is read instead, logged" {
  need_real_python
  make_wheel_cache
  sed -i "1s/^[0-9a-f]\{64\}/$(printf '0%.0s' {1..64})/" "$T/cache/.sha256sums" # the first digest is wrong
  use_simple_index
  rm -rf "$T/simple"
  STYX_WHEEL_CACHE_FETCH=copy STYX_WHEEL_CACHE_URL="file://$T/cache/" STYX_PIP_PACKAGES="styxdemo==1.0" \
    run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0; wrote "
  assert_stderr_contains "the wheel cache file://$T/cache/ could not be copied (see the phase log): reading it over HTTP"
  grep -q "is not the listed" "$STYX_LOG_DIR/python_env.log"
  grep -qF -- "--no-index --find-links file://$T/cache/ styxdemo==1.0" "$STYX_LOG_DIR/python_env.log"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep'
}

@test "python_env: links (the default): the installer reads the cache's URL, nothing is copied" {
  need_real_python
  make_wheel_cache
  use_simple_index
  rm -rf "$T/simple"
  STYX_WHEEL_CACHE_URL="file://$T/cache/" STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  ! grep -q "copy of the wheel cache" "$STYX_LOG_DIR/python_env.log"
  grep -qF -- "--no-index --find-links file://$T/cache/ styxdemo==1.0" "$STYX_LOG_DIR/python_env.log"
}

@test "python_env: invalid wheel cache fetch is rejected" {
  STYX_WHEEL_CACHE_FETCH=rsync run_phase python_env
  assert_status 1
  assert_stderr_contains "STYX_WHEEL_CACHE_FETCH must be copy or links, got 'rsync'"
}

@test "python_env: a new environment is not checked before the install; an existing one is" {
  need_real_python
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_status 0
  ! grep -q '(check: are the 1 pip specs satisfied)' "$STYX_LOG_DIR/python_env.log"
  "$T/venv/bin/python" -c 'import styxdemo'
  STYX_PIP_PACKAGES="styxdemo==1.0" run_phase python_env
  assert_output_matches '^styx python_env: skipped: '
  grep -q '(check: are the 1 pip specs satisfied)' "$STYX_LOG_DIR/python_env.log"
}
