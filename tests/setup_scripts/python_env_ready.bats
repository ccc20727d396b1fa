#!/usr/bin/env bats
# python_env.sh with a ready environment (STYX_READY_ENV_URL: the local backend's setup.python.env_cache):
# real python3 venv + pip against a local wheel directory, the tarball read from a file:// URL or a local
# HTTP server, no network.

load helpers

setup() {
  common_setup
  stub_apt
  [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null ||
    skip "needs /usr/bin/python3 with venv/ensurepip"
  ln -sf /usr/bin/python3 "$SYS_BIN/python3"
  export STYX_VENV_DIR="$T/venv" PIP_NO_INDEX=1 PIP_FIND_LINKS="$T/wheels"
  export STYX_PIP_PACKAGES="styxdemo==1.0" STYX_READY_ENV_KEY=k1
  /usr/bin/python3 - "$T/wheels" <<'PY'
import base64, hashlib, os, sys, zipfile
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
for name, ver, requires in (("styxdep", "1.2", []), ("styxdemo", "1.0", ["styxdep>=1.0"])):
    info = f"{name}-{ver}.dist-info"
    files = {f"{name}/__init__.py": f"__version__ = {ver!r}\n",
             f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n"
             + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: styx-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    with zipfile.ZipFile(f"{d}/{name}-{ver}-py3-none-any.whl", "w") as z:
        for path, text in files.items():
            z.writestr(path, text.encode())
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(text.encode())}")
        record.append(f"{info}/RECORD,,")
        z.writestr(f"{info}/RECORD", "\n".join(record) + "\n")
PY
}

teardown() {
  [[ -z ${SERVER_PID:-} ]] || kill "$SERVER_PID" 2>/dev/null || true
}

# make_ready: one python_env run made the environment (and its record), packed as the capture packs it
# into $T/envs/k1.tar (+ .sha256); the environment is then removed, and so are the wheels: an install
# would fail
make_ready() {
  run_phase python_env
  assert_status 0
  grep -qx 'key=k1' "$T/venv/.styx-env"
  grep -qx 'dist=styxdemo==1.0' "$T/venv/.styx-env"
  mkdir -p "$T/envs"
  tar -C "$T/venv" -cf "$T/envs/k1.tar" .
  (cd "$T/envs" && sha256sum k1.tar >k1.tar.sha256)
  rm -rf "$T/venv" "$T/wheels"
}

@test "python_env ready env: a fresh environment comes from the tarball, no installer runs" {
  make_ready
  STYX_READY_ENV_URL="file://$T/envs/k1.tar" run_phase python_env
  assert_status 0
  assert_one_line
  assert_output_matches "^styx python_env: ok: venv $T/venv \(python 3\.[0-9.]+\), 1 pip specs satisfied; from the ready environment k1$"
  assert_stderr_contains "environment $T/venv from the ready environment k1"
  "$T/venv/bin/python" -c 'import styxdemo, styxdep; assert styxdemo.__version__ == "1.0"'
  ! grep -q 'pip install\|Successfully installed' "$STYX_LOG_DIR/python_env.log"
  ! ls -d "$T"/venv.ready.* 2>/dev/null
  # the second run: the environment exists and is up to date
  STYX_READY_ENV_URL="file://$T/envs/k1.tar" run_phase python_env
  assert_status 0
  assert_output_matches "^styx python_env: skipped: "
}

@test "python_env ready env: the sha256 given in the environment is checked too" {
  make_ready
  rm -f "$T/envs/k1.tar.sha256"
  STYX_READY_ENV_SHA256=$(sha256sum "$T/envs/k1.tar" | cut -c1-64) STYX_READY_ENV_URL="file://$T/envs/k1.tar" \
    run_phase python_env
  assert_status 0
  assert_output_matches "; from the ready environment k1(;|$)"
}

@test "python_env ready env: an existing environment is never replaced; it installs incrementally" {
  make_ready
  mkdir -p "$T/wheels2"
  run_phase python_env # no wheels: fails, but the environment is made
  assert_status 1
  [ -x "$T/venv/bin/python" ]
  PIP_FIND_LINKS="$T/wheels2" STYX_PIP_PACKAGES="" STYX_READY_ENV_URL="file://$T/envs/k1.tar" run_phase python_env
  assert_status 0
  ! grep -q 'from the ready environment' <<<"$output"
  assert_stderr_contains "environment $T/venv exists"
  ! "$T/venv/bin/python" -c 'import styxdemo' 2>/dev/null
}

@test "python_env ready env: sha256 mismatch -> removed, WARN, installs as without it" {
  make_ready
  setup # the wheels again
  printf '%064d  k1.tar\n' 0 >"$T/envs/k1.tar.sha256"
  STYX_READY_ENV_URL="file://$T/envs/k1.tar" run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0"
  ! grep -q 'from the ready environment' <<<"$output"
  assert_stderr_contains "the ready environment file://$T/envs/k1.tar could not be used"
  grep -q "sha256 .* is not 0000" "$STYX_LOG_DIR/python_env.log"
  ! ls -d "$T"/venv.ready.* 2>/dev/null
  "$T/venv/bin/python" -c 'import styxdemo, styxdep'
}

@test "python_env ready env: none there (no file; HTTP 404) -> INFO, installs" {
  make_ready
  setup
  STYX_READY_ENV_URL="file://$T/envs/other.tar" run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0"
  assert_stderr_contains "no ready environment k1 yet: making the environment"
  rm -rf "$T/venv"
  local port=$((20000 + RANDOM % 20000))
  /usr/bin/python3 -m http.server --bind 127.0.0.1 --directory "$T/envs" "$port" >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
  STYX_READY_ENV_URL="http://127.0.0.1:$port/gone.tar" run_phase python_env
  assert_status 0
  assert_output_matches "pip installed: styxdemo==1\.0"
  assert_stderr_contains "no ready environment k1 yet"
  grep -q "ready environment: HTTP 404" "$STYX_LOG_DIR/python_env.log"
  rm -rf "$T/venv"
  STYX_READY_ENV_URL="http://127.0.0.1:$port/k1.tar" run_phase python_env # the same server, a real one
  assert_status 0
  assert_output_matches "; from the ready environment k1(;|$)"
}

@test "python_env ready env: a tarball that fails the spec check or has another key -> installs" {
  make_ready
  setup
  STYX_PIP_PACKAGES="styxdemo==1.0"$'\n'"styxdep==1.2" STYX_READY_ENV_URL="file://$T/envs/k1.tar" \
    run_phase python_env # satisfied: used
  assert_status 0
  assert_output_matches "from the ready environment k1"
  rm -rf "$T/venv"
  STYX_PIP_PACKAGES="styxdemo==1.0"$'\n'"styxdep==9.9" STYX_READY_ENV_URL="file://$T/envs/k1.tar" \
    run_phase python_env # styxdep 9.9 is in no wheel: the install fails after the tarball was refused
  assert_status 1
  assert_stderr_contains "the ready environment does not satisfy the pip specs"
  ! ls -d "$T"/venv.ready.* 2>/dev/null
  rm -rf "$T/venv"
  STYX_READY_ENV_KEY=k2 STYX_READY_ENV_URL="file://$T/envs/k1.tar" run_phase python_env
  assert_status 0
  assert_stderr_contains "the ready environment records key 'k1', not k2: not used"
  assert_output_matches "pip installed: styxdemo==1\.0"
  grep -qx 'key=k2' "$T/venv/.styx-env"
}

@test "python_env ready env: the record follows python_env's installs, and goes when others installed more" {
  run_phase python_env
  assert_status 0
  STYX_PIP_PACKAGES="styxdemo==1.0"$'\n'"styxdep==1.2" STYX_READY_ENV_KEY=k3 run_phase python_env
  assert_status 0
  grep -qx 'key=k3' "$T/venv/.styx-env" # only python_env's dists: the record moves to the new key
  "$T/venv/bin/python" -m pip uninstall -y -q styxdep # someone else changed the environment
  STYX_READY_ENV_KEY=k4 run_phase python_env
  assert_status 0
  [ ! -e "$T/venv/.styx-env" ]
  assert_stderr_contains "holds more than python_env recorded"
}
