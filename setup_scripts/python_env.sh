#!/usr/bin/env bash
# styx phase: python_env -- a Python virtual environment with pinned packages.
#
# Environment:
#   STYX_PYTHON_VERSION     `system` (default: the distro's python3) or X.Y
#                           (e.g. 3.11): python3.X from PATH, else from apt
#                           (python3.X + python3.X-venv), else a clear failure
#                           (tool `uv` downloads a managed CPython instead)
#   STYX_PYTHON_ENV_TOOL    venv (default) | uv | none (no environment: pip
#                           packages go to the system python3, with
#                           --break-system-packages where it is externally
#                           managed)
#   STYX_VENV_DIR           environment directory (default /opt/styx/venv)
#   STYX_VENV_OWNER         user owning the environment (default: the user
#                           running the phase, i.e. the SSH user)
#   STYX_PIP_PACKAGES       requirement specs, pinned, one per line (e.g.
#                           `six==1.16.0`, `torch==2.3; python_version>"3.8"`);
#                           each line is one argument of `pip install`,
#                           exactly as written (a line starting with `-` is a
#                           pip option, e.g. `--extra-index-url=URL`, and is
#                           not checked as a requirement)
#   STYX_PIP_INDEX_URL      optional index URL (mirror); credentials in it are
#                           masked in logs
#   STYX_PIP_EXTRA_INDEX_URL optional extra index URL
#   STYX_PIP_INSTALLER      pip (default) | uv: what installs the packages.
#                           uv is a wheel from the index (the same index as
#                           the packages, and the wheel cache), installed with
#                           the environment's pip into STYX_UV_TOOL_DIR; when
#                           it cannot be had, or fails, pip installs instead
#                           (a WARN in the log, noted on the result line).
#                           With STYX_PYTHON_ENV_TOOL=uv, that uv installs.
#   STYX_UV_TOOL_DIR        where installer uv goes (default /opt/styx/tools/uv)
#   STYX_WHEEL_CACHE_URL    optional find-links URL of the cluster's wheel cache
#                           (a page of wheel links, e.g. http://10.77.0.1:8999/x/);
#                           packages are installed from it alone first
#                           (--no-index); when it is gone or lacks a wheel, the
#                           install runs again from the index (a WARN)
#   STYX_WHEEL_CACHE_FETCH  links (default) | copy: how the wheel cache is read.
#                           links: the installer reads the URL itself
#                           (--find-links URL). copy: its files (listed with their sha256 in the
#                           cache's .sha256sums) are first copied into a local
#                           folder in one parallel fetch, sha256-checked, and
#                           uv (the venv's seed, the install, uv's own wheel)
#                           reads that folder; when the copy fails, the URL is
#                           used as with links (a WARN)
#   STYX_READY_ENV_URL      optional URL of a ready environment: an uncompressed
#                           tar of an environment python_env made elsewhere
#                           with the same inputs (the local backend's
#                           setup.python.env_cache). Used only when this run
#                           would create the environment (never over an
#                           existing one): streamed, sha256-checked, unpacked
#                           as the owner beside STYX_VENV_DIR, spec-checked,
#                           then moved in place; no installer runs. Gone (404),
#                           a sha256 mismatch or a failed check: what was
#                           unpacked is removed (a WARN; none there: INFO) and
#                           the environment is made as without it
#   STYX_READY_ENV_SHA256   its sha256 (default: read from URL.sha256 at run
#                           time, sha256sum's format; 404 there = no tarball)
#   STYX_READY_ENV_KEY      the environment's key (what a ready environment of
#                           these inputs is named): with it, python_env records
#                           what it made in $STYX_VENV_DIR/.styx-env (the key and
#                           the sorted name==version of every dist), which a
#                           capture packs only while the dists still match
#   STYX_UV_VERSION         uv version for tool or installer uv (default 0.13.9)
#   STYX_UV_URL             uv release tarball URL (default: GitHub release
#                           for this machine's architecture; mirrors allowed)
#   STYX_UV_SHA256          optional sha256 of that tarball (verified if set)
#   STYX_UV_BIN_DIR         where uv is installed (default /usr/local/bin)
#   STYX_UV_PYTHON_DIR      uv-managed interpreters (default /opt/styx/python)
#   STYX_PROFILE_DIR        (lib.sh) writes styx-venv.sh there: venv on PATH
#                           for login shells
#   STYX_COMMAND_DIR        where `python`, `pip` and `ray` of the environment
#                           are made available to every shell, login or not
#                           (default /usr/local/bin): small `exec` wrappers,
#                           written only where no other file of that name is
#                           (one that is not styx's is left alone, logged)
#
# Packages are installed only when the environment does not already satisfy
# every spec (checked offline against installed metadata, dependencies and
# extras included); the second run is `skipped`.
# stdout: `styx python_env: ok|skipped: ...`; pip output in the phase log.
: "${STYX_PHASE:=python_env}"
if ! declare -F styx_log >/dev/null; then
  # shellcheck source-path=SCRIPTDIR source=lib.sh
  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
set -euo pipefail

STYX_PYTHON_VERSION=${STYX_PYTHON_VERSION:-system}
STYX_PYTHON_ENV_TOOL=${STYX_PYTHON_ENV_TOOL:-venv}
STYX_VENV_DIR=${STYX_VENV_DIR:-/opt/styx/venv}
STYX_VENV_OWNER=${STYX_VENV_OWNER:-$(id -un)}
STYX_PIP_PACKAGES=${STYX_PIP_PACKAGES:-}
STYX_PIP_INDEX_URL=${STYX_PIP_INDEX_URL:-}
STYX_PIP_EXTRA_INDEX_URL=${STYX_PIP_EXTRA_INDEX_URL:-}
STYX_PIP_INSTALLER=${STYX_PIP_INSTALLER:-pip}
STYX_UV_TOOL_DIR=${STYX_UV_TOOL_DIR:-/opt/styx/tools/uv}
STYX_WHEEL_CACHE_URL=${STYX_WHEEL_CACHE_URL:-}
STYX_WHEEL_CACHE_FETCH=${STYX_WHEEL_CACHE_FETCH:-links}
STYX_UV_VERSION=${STYX_UV_VERSION:-0.13.9}
STYX_READY_ENV_URL=${STYX_READY_ENV_URL:-}
STYX_READY_ENV_SHA256=${STYX_READY_ENV_SHA256:-}
STYX_READY_ENV_KEY=${STYX_READY_ENV_KEY:-}
STYX_UV_URL=${STYX_UV_URL:-}
STYX_UV_SHA256=${STYX_UV_SHA256:-}
STYX_UV_BIN_DIR=${STYX_UV_BIN_DIR:-/usr/local/bin}
STYX_UV_PYTHON_DIR=${STYX_UV_PYTHON_DIR:-/opt/styx/python}
STYX_COMMAND_DIR=${STYX_COMMAND_DIR:-/usr/local/bin}
RAY_AUTH_ENV=/etc/styx/ray-auth.env  # written by the ray phase (setup.ray.auth: token)
VENV_PROFILE="$STYX_PROFILE_DIR/styx-venv.sh"
COMMAND_MARK="# managed by styx (python_env): this command of the cluster environment"
ENV_RECORD=.styx-env # in the environment: what python_env made (STYX_READY_ENV_KEY)

# Exit 0 when every requirement (with its dependency tree and extras) is
# installed at a matching version; 1 when not (names on stderr); 2 when the
# check itself cannot run (no packaging library).
PIP_CHECK_PY='
import sys
try:
    from importlib import metadata
except ImportError:
    sys.exit(2)
try:
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.utils import canonicalize_name
except Exception:
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except Exception:
        sys.exit(2)
seen, bad = set(), []
def check(spec, extras=("",)):
    try:
        req = Requirement(spec)
    except Exception:
        bad.append(spec); return
    if req.url:
        bad.append(spec); return
    if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in extras):
        return
    key = (canonicalize_name(req.name), tuple(sorted(req.extras)), str(req.specifier))
    if key in seen:
        return
    seen.add(key)
    try:
        dist = metadata.distribution(req.name)
    except metadata.PackageNotFoundError:
        bad.append(spec); return
    if req.specifier and not req.specifier.contains(dist.version, prereleases=True):
        bad.append(spec + " (have " + dist.version + ")"); return
    for dep in dist.requires or []:
        check(dep, ("",) + tuple(sorted(req.extras)))
for s in sys.argv[1:]:
    if not s.startswith("-"):  # a pip option, not a requirement
        check(s)
for b in bad:
    print("unsatisfied: " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
'

# Fetches the uv wheel of version argv[1] and unpacks its `uv` binary as argv[2] (stdlib only: no pip,
# no environment needed). Where from (env STYX_UVW_PAGES, one per line, never in a command line: an
# index URL may hold credentials): find-links pages (or local folders), then index project pages. A
# `#sha256=` of the link is checked. Prints the file name it took.
UV_WHEEL_PY='
import base64, hashlib, os, platform, re, sys, urllib.parse, urllib.request, zipfile, io
version, dest = sys.argv[1], sys.argv[2]
arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
name = re.compile(r"^uv-" + re.escape(version) + r"-py3-none-(any|(?:[a-z0-9_.]*\.)?manylinux[a-z0-9_.]*_" + arch + r")\.whl$")
def request(url):
    parts = urllib.parse.urlsplit(url)
    headers = {}
    if parts.username is not None:
        cred = urllib.parse.unquote(parts.username) + ":" + urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        url = urllib.parse.urlunsplit(parts._replace(netloc=parts.hostname + (":%d" % parts.port if parts.port else "")))
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30).read()
def links(page):
    if "://" not in page:
        return [(f, os.path.join(page, f), "") for f in os.listdir(page)]
    html = request(page).decode("utf-8", "replace")
    out = []
    for href in re.findall(r"href=[\x22\x27]([^\x22\x27]+)", html):
        url, _, frag = urllib.parse.urljoin(page, href.replace("&amp;", "&")).partition("#")
        out.append((urllib.parse.unquote(url.rsplit("/", 1)[-1]), url, frag))
    return out
for page in [p for p in os.environ.get("STYX_UVW_PAGES", "").splitlines() if p]:
    where = urllib.parse.urlsplit(page).hostname or page
    try:
        found = sorted((f, u, h) for f, u, h in links(page) if name.match(f))
        if not found:
            print("no uv " + version + " wheel for " + arch + " at " + where, file=sys.stderr); continue
        f, url, frag = found[-1]
        data = open(url, "rb").read() if "://" not in url else request(url)
        if frag.startswith("sha256=") and hashlib.sha256(data).hexdigest() != frag[7:]:
            print(f + ": sha256 mismatch", file=sys.stderr); continue
        member = "uv-" + version + ".data/scripts/uv"
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            blob = z.read(member)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        with open(dest, "wb") as out:
            out.write(blob)
        os.chmod(dest, 0o755)
        print(f)
        sys.exit(0)
    except Exception as e:
        print("uv from " + where + ": " + type(e).__name__ + ": " + str(e).split("://")[0][:200], file=sys.stderr)
sys.exit(1)
'

# Copies the wheel cache at argv[1] (a URL ending in /) into the folder argv[2]: the files its
# .sha256sums lists, 8 at a time, each checked against its sha256 (stdlib only). Prints what it copied.
WHEEL_COPY_PY='
import concurrent.futures, hashlib, os, sys, urllib.parse, urllib.request
base, dest = sys.argv[1].rstrip("/") + "/", sys.argv[2]
files = []
with urllib.request.urlopen(base + ".sha256sums", timeout=30) as r:
    for line in r.read().decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) == 64 and name and "/" not in name and not name.startswith("."):
            files.append((digest, name))
if not files:
    sys.exit("the wheel cache lists no files")
def copy(item):
    digest, name = item
    h, part = hashlib.sha256(), os.path.join(dest, "." + name + ".part")
    with urllib.request.urlopen(base + urllib.parse.quote(name), timeout=120) as r, open(part, "wb") as f:
        while chunk := r.read(1 << 20):
            h.update(chunk)
            f.write(chunk)
    if h.hexdigest() != digest:
        os.unlink(part)
        raise RuntimeError(name + ": sha256 " + h.hexdigest() + " is not the listed " + digest)
    os.chmod(part, 0o644)
    os.rename(part, os.path.join(dest, name))
    return os.path.getsize(os.path.join(dest, name))
with concurrent.futures.ThreadPoolExecutor(8) as pool:
    size = sum(pool.map(copy, files))
print("copied %d files, %.0f MiB" % (len(files), size / 2**20))
'

# The dists of the environment argv[1]: sorted `name==version` lines (canonical names) from its
# site-packages' *.dist-info/METADATA, read as files (no interpreter of the environment runs). The
# capture on the host (sandbox/ready_env.py `dists`) runs this same program.
DISTS_PY='
import glob, os, re, sys
out = set()
for meta in glob.glob(os.path.join(sys.argv[1], "lib", "python*", "site-packages", "*.dist-info", "METADATA")):
    name = version = None
    with open(meta, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                break
            k, _, v = line.partition(":")
            if k == "Name" and name is None:
                name = v.strip()
            elif k == "Version" and version is None:
                version = v.strip()
    if name and version:
        out.add(re.sub(r"[-_.]+", "-", name).lower() + "==" + version)
print("\n".join(sorted(out)))
'

# Streams the ready environment argv[1] (URL) into `tar -x` in the folder argv[2], its sha256 checked
# on the way (STYX_READY_ENV_SHA256, else the first word of URL.sha256). Exit 3: no such tarball (404,
# or no such file);
# 1: any other failure (what tar wrote is then the caller's to remove). stdlib only.
READY_ENV_PY='
import hashlib, os, re, subprocess, sys, urllib.error, urllib.request
url, dest = sys.argv[1], sys.argv[2]
want = os.environ.get("STYX_READY_ENV_SHA256", "")
try:
    if not want:
        with urllib.request.urlopen(url + ".sha256", timeout=10) as r:
            want = r.read(4096).decode("ascii", "replace").split()[0]
    r = urllib.request.urlopen(url, timeout=60)
except urllib.error.HTTPError as e:
    print("ready environment: HTTP %d" % e.code, file=sys.stderr)
    sys.exit(3 if e.code == 404 else 1)
except urllib.error.URLError as e:
    print("ready environment: " + str(e.reason)[:200], file=sys.stderr)
    sys.exit(3 if isinstance(e.reason, FileNotFoundError) else 1)  # file://: a folder without it
except Exception as e:
    print("ready environment: " + type(e).__name__ + ": " + str(e)[:200], file=sys.stderr)
    sys.exit(1)
if not re.fullmatch(r"[0-9a-f]{64}", want):
    sys.exit("ready environment: no sha256 for " + url)
h, n = hashlib.sha256(), 0
tar = subprocess.Popen(["tar", "-x", "-p", "--no-same-owner", "-f", "-", "-C", dest], stdin=subprocess.PIPE)
with r:
    while chunk := r.read(1 << 20):
        h.update(chunk)
        n += len(chunk)
        tar.stdin.write(chunk)
tar.stdin.close()
if tar.wait() != 0:
    sys.exit("ready environment: tar failed")
if h.hexdigest() != want:
    sys.exit("ready environment: sha256 " + h.hexdigest() + " is not " + want)
print("ready environment: %.0f MiB unpacked" % (n / 2**20))
'

PY=""     # interpreter used to create the environment
PY_VER="" # its X.Y
CHANGES=()
SPECS=() # STYX_PIP_PACKAGES, one argument per line
INSTALLER=pip    # what installs: pip, or uv once it is there
UV=""            # the uv binary of INSTALLER=uv
INDEX_ENV=()     # the index settings, for pip and uv alike
INSTALL_CMD=()   # the last install command (install_cmd)
NOTES=()         # what differed from the request: a fallback
WHEEL_DIR=""     # the wheel cache's local copy (copy_wheel_cache), when made
WHEEL_COPIED=""  # 1 once the copy was tried
ENV_CREATED=""   # 1 when this run made the environment (nothing of the specs can be in it yet)
READY_USED=""    # 1 when the environment came from the ready environment (STYX_READY_ENV_URL)
PRISTINE=""      # 1 when the environment holds only what python_env recorded (ENV_RECORD) before this run

py_version_of() {
  "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null
}

pick_python() {
  local want=$STYX_PYTHON_VERSION cand
  if [[ $want == system ]]; then
    if ! styx_have python3; then
      styx_apt_install python3
      [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed python3")
    fi
    PY=$(command -v python3)
    PY_VER=$(py_version_of "$PY") || styx_die "python3 at $PY does not run"
    return 0
  fi
  [[ $want =~ ^[0-9]+\.[0-9]+$ ]] || styx_die "STYX_PYTHON_VERSION must be 'system' or X.Y, got '$want'"
  for cand in "python$want" python3; do
    if styx_have "$cand" && [[ $(py_version_of "$(command -v "$cand")") == "$want" ]]; then
      PY=$(command -v "$cand")
      PY_VER=$want
      return 0
    fi
  done
  if [[ $STYX_PYTHON_ENV_TOOL == uv ]]; then
    PY="" # uv downloads a managed interpreter
    PY_VER=$want
    return 0
  fi
  if styx_have apt-get; then
    styx_apt_has_candidate "python$want" || styx_apt_update
    if styx_apt_has_candidate "python$want"; then
      styx_apt_install "python$want"
      [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed python$want")
      PY=$(command -v "python$want") || styx_die "python$want installed but not on PATH"
      PY_VER=$want
      return 0
    fi
  fi
  styx_die "Python $want is not installed and not available from apt on $(styx_os_id); use STYX_PYTHON_VERSION=system, STYX_PYTHON_ENV_TOOL=uv (downloads CPython $want), or add a repository that provides python$want"
}

ensure_venv_module() {
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    styx_apt_install "python$PY_VER-venv"
    [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed python$PY_VER-venv")
    "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1 ||
      styx_die "$PY cannot create virtual environments (ensurepip missing even after installing python$PY_VER-venv)"
  fi
}

uv_bin() { printf '%s/uv\n' "$STYX_UV_BIN_DIR"; }

ensure_uv() {
  local have="" arch target url tmpdir
  if [[ -x $(uv_bin) ]]; then
    have=$("$(uv_bin)" --version 2>/dev/null | awk '{print $2}') || have=""
  fi
  if [[ $have == "$STYX_UV_VERSION" ]]; then
    styx_log INFO "uv $have already installed"
    return 0
  fi
  arch=$(uname -m)
  case $arch in
    x86_64 | amd64) target=x86_64-unknown-linux-gnu ;;
    aarch64 | arm64) target=aarch64-unknown-linux-gnu ;;
    *) styx_die "uv: unsupported architecture $arch" ;;
  esac
  url=${STYX_UV_URL:-https://github.com/astral-sh/uv/releases/download/$STYX_UV_VERSION/uv-$target.tar.gz}
  styx_have curl || styx_have wget || styx_apt_install curl ca-certificates
  styx_mktemp_var tmpdir -d
  styx_download "$url" "$tmpdir/uv.tar.gz" "$STYX_UV_SHA256"
  styx_run tar -xzf "$tmpdir/uv.tar.gz" -C "$tmpdir"
  [[ -f $tmpdir/uv-$target/uv ]] || styx_die "uv tarball from $url has no uv-$target/uv"
  styx_sudo install -d -m 0755 -- "$STYX_UV_BIN_DIR"
  styx_sudo install -m 0755 -- "$tmpdir/uv-$target/uv" "$(uv_bin)"
  [[ ! -f $tmpdir/uv-$target/uvx ]] || styx_sudo install -m 0755 -- "$tmpdir/uv-$target/uvx" "$STYX_UV_BIN_DIR/uvx"
  CHANGES+=("installed uv $STYX_UV_VERSION")
}

# set_index_env -> INDEX_ENV: the index settings for pip and uv alike (the venv's seeding and the
# installs share them)
set_index_env() {
  INDEX_ENV=()
  [[ -z $STYX_PIP_INDEX_URL ]] || INDEX_ENV+=(PIP_INDEX_URL="$STYX_PIP_INDEX_URL" UV_INDEX_URL="$STYX_PIP_INDEX_URL")
  [[ -z $STYX_PIP_EXTRA_INDEX_URL ]] || INDEX_ENV+=(PIP_EXTRA_INDEX_URL="$STYX_PIP_EXTRA_INDEX_URL" UV_EXTRA_INDEX_URL="$STYX_PIP_EXTRA_INDEX_URL")
}

# uv_tool_ready: true (UV set) when installer uv's binary is in STYX_UV_TOOL_DIR at STYX_UV_VERSION
uv_tool_ready() {
  local have tool=$STYX_UV_TOOL_DIR
  [[ -x $tool/bin/uv ]] || return 1
  have=$("$tool/bin/uv" --version 2>/dev/null | awk '{print $2}') || have=""
  [[ $have == "$STYX_UV_VERSION" ]] || return 1
  UV=$tool/bin/uv
}

# fetch_uv_tool: installer uv's binary straight from its wheel (the wheel cache, find-links, the
# index) into STYX_UV_TOOL_DIR, without pip: no environment, no pip start needed
fetch_uv_tool() {
  local tool=$STYX_UV_TOOL_DIR tmp pages="" index
  copy_wheel_cache
  [[ -z $STYX_WHEEL_CACHE_URL ]] || pages+=$(wheel_links)$'\n'
  [[ -z ${PIP_FIND_LINKS:-} ]] || pages+=$PIP_FIND_LINKS$'\n'
  if [[ -z ${PIP_NO_INDEX:-} ]]; then
    index=${STYX_PIP_INDEX_URL:-${PIP_INDEX_URL:-https://pypi.org/simple}}
    pages+=${index%/}/uv/$'\n'
  fi
  tmp="$tool.new.$$"
  styx_sudo rm -rf -- "$tmp"
  styx_sudo install -d -m 0755 -- "$(dirname -- "$tool")" "$tmp"
  styx_sudo chown "$(id -un)" "$tmp"
  if STYX_TRY_LABEL="(uv $STYX_UV_VERSION from its wheel into $tmp/bin/uv)" \
    styx_try env STYX_UVW_PAGES="$pages" "$PY" -c "$UV_WHEEL_PY" "$STYX_UV_VERSION" "$tmp/bin/uv" &&
    "$tmp/bin/uv" --version >>"$(styx_log_file)" 2>&1; then
    styx_sudo chown -R 0:0 -- "$tmp"
    styx_sudo rm -rf -- "$tool"
    styx_sudo mv -- "$tmp" "$tool"
    UV=$tool/bin/uv
    CHANGES+=("installed uv $STYX_UV_VERSION")
    styx_log INFO "uv $STYX_UV_VERSION from its wheel into $tool (no pip needed)"
    return 0
  fi
  styx_sudo rm -rf -- "$tmp"
  styx_log INFO "uv $STYX_UV_VERSION could not be fetched as a wheel without pip (see the phase log)"
  return 1
}

# seed_with_uv VENV: with installer uv, the environment made by uv (pip seeded from the wheel cache or
# the index): no ensurepip (seconds of CPU). False when uv cannot be had or fails: then `venv` does it.
seed_with_uv() {
  local out
  [[ $STYX_PIP_INSTALLER == uv && $STYX_PYTHON_ENV_TOOL == venv ]] || return 1
  uv_tool_ready || fetch_uv_tool || return 1
  set_index_env
  styx_mktemp_var out
  copy_wheel_cache # (done already when uv was fetched just now)
  local -a envs=("${INDEX_ENV[@]}" UV_NO_CONFIG=1 UV_SYSTEM_CERTS=1) src=()
  [[ -z $STYX_WHEEL_CACHE_URL ]] || src=(--no-index --find-links "$(wheel_links)")
  if styx_try_capture "$out" styx_as_user "$STYX_VENV_OWNER" env "${envs[@]}" "$UV" venv --seed \
    --allow-existing --python "$PY" "${src[@]}" "$1" && [[ -x $1/bin/pip ]]; then
    return 0
  fi
  if [[ ${#src[@]} -gt 0 ]] && styx_try_capture "$out" styx_as_user "$STYX_VENV_OWNER" env "${envs[@]}" \
    "$UV" venv --seed --allow-existing --python "$PY" "$1" && [[ -x $1/bin/pip ]]; then
    return 0
  fi
  styx_log WARN "uv could not make the environment (see the phase log): python -m venv instead"
  styx_sudo rm -rf -- "$1"
  styx_sudo install -d -m 0755 -o "$STYX_VENV_OWNER" -g "$(owner_group)" -- "$1"
  return 1
}

owner_group() {
  id -gn "$STYX_VENV_OWNER" 2>/dev/null || styx_die "STYX_VENV_OWNER: no such user '$STYX_VENV_OWNER'"
}

ensure_env() {
  local venv=$STYX_VENV_DIR have
  if [[ -x $venv/bin/python && -f $venv/pyvenv.cfg ]]; then
    have=$(py_version_of "$venv/bin/python") || have="broken"
    if [[ $have == "$PY_VER" ]]; then
      styx_log INFO "environment $venv exists (python $have)"
      return 0
    fi
    styx_log WARN "environment $venv has python $have, want $PY_VER: recreating it"
    styx_sudo rm -rf -- "$venv"
  elif [[ -e $venv && -n $(styx_sudo ls -A -- "$venv" 2>/dev/null) ]]; then
    styx_log WARN "$venv exists but is not a virtual environment: recreating it"
    styx_sudo rm -rf -- "$venv"
  fi
  styx_sudo install -d -m 0755 -- "$(dirname -- "$venv")"
  if ready_env "$venv"; then
    CHANGES+=("from the ready environment $STYX_READY_ENV_KEY")
    READY_USED=1
    return 0
  fi
  styx_sudo install -d -m 0755 -o "$STYX_VENV_OWNER" -g "$(owner_group)" -- "$venv"
  if [[ $STYX_PYTHON_ENV_TOOL == uv ]]; then
    styx_sudo install -d -m 0755 -o "$STYX_VENV_OWNER" -g "$(owner_group)" -- "$STYX_UV_PYTHON_DIR"
    styx_run styx_as_user "$STYX_VENV_OWNER" env UV_PYTHON_INSTALL_DIR="$STYX_UV_PYTHON_DIR" \
      UV_NO_CONFIG=1 "$(uv_bin)" venv --seed --allow-existing --python "${PY:-$PY_VER}" "$venv"
  elif ! seed_with_uv "$venv"; then
    styx_run styx_as_user "$STYX_VENV_OWNER" "$PY" -m venv "$venv"
  fi
  [[ -x $venv/bin/python ]] || styx_die "environment creation did not produce $venv/bin/python"
  CHANGES+=("created $STYX_PYTHON_ENV_TOOL $venv")
  ENV_CREATED=1
}

# ready_env VENV: the environment from STYX_READY_ENV_URL (see the header); false (and nothing left
# behind) when there is none or it does not fit
ready_env() {
  local venv=$1 tmp rc=0 record
  [[ -n $STYX_READY_ENV_URL && -n $STYX_READY_ENV_KEY && $STYX_PYTHON_ENV_TOOL == venv ]] || return 1
  tmp="$venv.ready.$$"
  styx_sudo rm -rf -- "$tmp"
  styx_sudo install -d -m 0755 -o "$STYX_VENV_OWNER" -g "$(owner_group)" -- "$tmp"
  STYX_TRY_LABEL="(the ready environment $STYX_READY_ENV_URL into $tmp)" \
    styx_try styx_as_user "$STYX_VENV_OWNER" env STYX_READY_ENV_SHA256="$STYX_READY_ENV_SHA256" \
    "$PY" -c "$READY_ENV_PY" "$STYX_READY_ENV_URL" "$tmp" || rc=$?
  if [[ $rc -eq 0 ]]; then
    record=$(sed -n 's/^key=//p' "$tmp/$ENV_RECORD" 2>/dev/null || true)
    if [[ $record != "$STYX_READY_ENV_KEY" ]]; then
      styx_log WARN "the ready environment records key '${record:-none}', not $STYX_READY_ENV_KEY: not used"
      rc=1
    elif [[ ${#SPECS[@]} -gt 0 ]] && ! PYTHONDONTWRITEBYTECODE=1 \
      STYX_TRY_LABEL="(check: does the ready environment satisfy the ${#SPECS[@]} pip specs)" \
      styx_try "$tmp/bin/python" -c "$PIP_CHECK_PY" "${SPECS[@]}"; then
      styx_log WARN "the ready environment does not satisfy the pip specs (see the phase log): not used"
      rc=1
    fi
  elif [[ $rc -eq 3 ]]; then
    styx_log INFO "no ready environment $STYX_READY_ENV_KEY yet: making the environment"
  else
    styx_log WARN "the ready environment $STYX_READY_ENV_URL could not be used (see the phase log): making the environment"
  fi
  if [[ $rc -ne 0 ]]; then
    styx_sudo rm -rf -- "$tmp"
    return 1
  fi
  [[ ! -d $venv ]] || styx_sudo rmdir -- "$venv" # empty (ensure_env removed anything else)
  styx_sudo mv -T -- "$tmp" "$venv"
  styx_log INFO "environment $venv from the ready environment $STYX_READY_ENV_KEY"
}

# env_dists VENV -> the dists of VENV (DISTS_PY), one a line
env_dists() { "${PY:-python3}" -c "$DISTS_PY" "$1"; }

# note_pristine: PRISTINE=1 when the existing environment still holds exactly what its record lists
note_pristine() {
  local f=$STYX_VENV_DIR/$ENV_RECORD
  [[ -n $STYX_READY_ENV_KEY && -z $ENV_CREATED && -z $READY_USED && -f $f ]] || return 0
  [[ $(sed -n 's/^dist=//p' "$f") == "$(env_dists "$STYX_VENV_DIR")" ]] && PRISTINE=1 || true
}

# write_record: ENV_RECORD for what this run made (a new environment, or one that held only what
# python_env had recorded); an environment with more (a custom script's installs) loses its record
write_record() {
  local f=$STYX_VENV_DIR/$ENV_RECORD
  [[ -n $STYX_READY_ENV_KEY && $STYX_PYTHON_ENV_TOOL == venv ]] || return 0
  if [[ -n $ENV_CREATED || -n $READY_USED || -n $PRISTINE ]]; then
    # shellcheck disable=SC2016 # the inner shell expands them
    styx_as_user "$STYX_VENV_OWNER" bash -c 'umask 022; cat >"$1.new" && mv -f -- "$1.new" "$1"' _ "$f" < <(
      printf 'key=%s\n' "$STYX_READY_ENV_KEY"
      env_dists "$STYX_VENV_DIR" | sed 's/^/dist=/')
  elif [[ -f $f ]]; then
    styx_sudo rm -f -- "$f"
    styx_log INFO "$STYX_VENV_DIR holds more than python_env recorded: its record $f removed (no ready environment from it)"
  fi
}

externally_managed() {
  "$1" -c 'import sys,sysconfig,os; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")) else 1)'
}

# install_cmd NAME PY -> INSTALL_CMD: installer NAME (pip|uv) installing into interpreter PY
install_cmd() {
  if [[ $1 == uv ]]; then
    INSTALL_CMD=("$UV" pip install --python "$2")
  else
    INSTALL_CMD=("$2" -m pip install --no-input --disable-pip-version-check)
  fi
  if [[ $STYX_PYTHON_ENV_TOOL == none ]] && externally_managed "$2"; then
    INSTALL_CMD+=(--break-system-packages)
  fi
}

# copy_wheel_cache: with STYX_WHEEL_CACHE_FETCH=copy, the wheel cache copied once into a local folder
# (WHEEL_DIR), so that the installers read it from disk (over HTTP uv resolves by fetching the wheels;
# on a quiet host, Ray's 57 wheels took ~10 s that way against ~1 s from a folder, but inside three busy
# sandboxes the copy plus uv's unpacking from disk cost more CPU than reading the URL: bench/README.md
# §11, so links is the default). When the copy fails (the cache gone, no list, a sha256 mismatch) the
# URL is read as with links.
copy_wheel_cache() {
  local dir
  [[ -n $STYX_WHEEL_CACHE_URL && $STYX_WHEEL_CACHE_FETCH == copy && -z $WHEEL_COPIED ]] || return 0
  WHEEL_COPIED=1
  [[ $STYX_WHEEL_CACHE_URL == *://* ]] || return 0 # a folder is read where it is
  styx_mktemp_var dir -d
  chmod 0755 -- "$dir" # read by the environment's owner too
  if STYX_TRY_LABEL="(copy of the wheel cache $STYX_WHEEL_CACHE_URL into $dir)" \
    styx_try "${PY:-python3}" -c "$WHEEL_COPY_PY" "$STYX_WHEEL_CACHE_URL" "$dir"; then
    WHEEL_DIR=$dir
    styx_log INFO "wheel cache $STYX_WHEEL_CACHE_URL copied into $dir"
  else
    styx_log WARN "the wheel cache $STYX_WHEEL_CACHE_URL could not be copied (see the phase log): reading it over HTTP"
  fi
}

# wheel_links -> the wheel cache as the installers read it: its local copy, else its URL
wheel_links() { printf '%s\n' "${WHEEL_DIR:-$STYX_WHEEL_CACHE_URL}"; }

# cache_args NAME -> CACHE_ARGS: install from the wheel cache alone
cache_args() {
  local host=${STYX_WHEEL_CACHE_URL#*://} links
  host=${host%%/*}
  copy_wheel_cache
  links=$(wheel_links)
  CACHE_ARGS=(--no-index --find-links "$links")
  # pip ignores plain-http links of a host it does not trust; uv takes them
  [[ $1 == uv || $links != http://* ]] || CACHE_ARGS+=(--trusted-host "${host%%:*}")
}

# try_install OUT AS NAME PY ARGS... : one attempt of installer NAME as AS (root | owner: the
# environment's owner), output in OUT and the log
try_install() {
  local out=$1 as=$2 name=$3 py=$4
  shift 4
  install_cmd "$name" "$py"
  local -a envs=("${INDEX_ENV[@]}")
  if [[ $name == uv ]]; then
    envs+=(UV_SYSTEM_CERTS=1) # the node's CA store (a TLS-intercepting proxy's CA), not uv's own roots
    [[ -n ${SSL_CERT_FILE:-} || ! -r /etc/ssl/certs/ca-certificates.crt ]] ||
      envs+=(SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt)
  fi
  if [[ $as == root ]]; then
    styx_try_capture "$out" styx_sudo env "${envs[@]}" "${INSTALL_CMD[@]}" "$@"
  else
    styx_try_capture "$out" styx_as_user "$STYX_VENV_OWNER" env "${envs[@]}" "${INSTALL_CMD[@]}" "$@"
  fi
}

# install_from_sources OUT AS NAME PY ARGS... : try_install from the wheel cache first (when there
# is one), then from the index
install_from_sources() {
  local out=$1 as=$2 name=$3 py=$4
  shift 4
  if [[ -n $STYX_WHEEL_CACHE_URL ]]; then
    cache_args "$name"
    if try_install "$out" "$as" "$name" "$py" "${CACHE_ARGS[@]}" "$@"; then
      styx_log INFO "installed from the wheel cache $STYX_WHEEL_CACHE_URL${WHEEL_DIR:+ (its copy in $WHEEL_DIR)}"
      return 0
    fi
    styx_log WARN "the wheel cache $STYX_WHEEL_CACHE_URL is gone or lacks a wheel (see the phase log): installing from the index"
    NOTES+=("wheel cache unavailable, from the index")
  fi
  try_install "$out" "$as" "$name" "$py" "$@"
}

# pick_installer PY: INSTALLER=uv with UV set when uv is asked for and can be had, else pip
pick_installer() {
  local py=$1 tool=$STYX_UV_TOOL_DIR tmp out
  INSTALLER=pip
  if [[ $STYX_PYTHON_ENV_TOOL == uv ]]; then
    UV=$(uv_bin) INSTALLER=uv
    return 0
  fi
  [[ $STYX_PIP_INSTALLER == uv ]] || return 0
  if uv_tool_ready; then
    styx_log INFO "uv $STYX_UV_VERSION already installed ($tool/bin/uv)"
    INSTALLER=uv
    return 0
  fi
  if fetch_uv_tool; then
    INSTALLER=uv
    return 0
  fi
  styx_log INFO "installing uv $STYX_UV_VERSION from the index into $tool"
  tmp="$tool.new.$$"
  styx_mktemp_var out
  styx_sudo rm -rf -- "$tmp"
  styx_sudo install -d -m 0755 -- "$(dirname -- "$tool")"
  if "$py" -m pip --version >/dev/null 2>&1 &&
    install_from_sources "$out" root pip "$py" --no-compile --target "$tmp" "uv==$STYX_UV_VERSION" &&
    [[ -x $tmp/bin/uv ]] && "$tmp/bin/uv" --version >>"$(styx_log_file)" 2>&1; then
    styx_sudo rm -rf -- "$tool"
    styx_sudo mv -- "$tmp" "$tool"
    UV=$tool/bin/uv INSTALLER=uv
    CHANGES+=("installed uv $STYX_UV_VERSION")
    return 0
  fi
  styx_sudo rm -rf -- "$tmp"
  styx_log WARN "uv $STYX_UV_VERSION could not be installed from the index (see the phase log): installing with pip"
  NOTES+=("uv unavailable, pip")
}

# install STYX_PIP_PACKAGES into interpreter $1 unless already satisfied
ensure_packages() {
  local py=$1 rc=0 out as=owner
  local -a specs=("${SPECS[@]}")
  [[ $STYX_PYTHON_ENV_TOOL != none ]] || as=root
  [[ ${#specs[@]} -gt 0 ]] || return 0
  if [[ -n $READY_USED ]]; then
    styx_log INFO "pip requirements satisfied by the ready environment"
    return 0
  fi
  if [[ -n $ENV_CREATED ]]; then
    rc=1 # a new environment holds only what seeded it: no need to check (the installer skips what is there)
  else
    # the check only reads (no bytecode written: a second run leaves the environment as it was)
    PYTHONDONTWRITEBYTECODE=1 STYX_TRY_LABEL="(check: are the ${#specs[@]} pip specs satisfied)" \
      styx_try "$py" -c "$PIP_CHECK_PY" "${specs[@]}" || rc=$?
  fi
  if [[ $rc -eq 0 ]]; then
    styx_log INFO "pip requirements already satisfied: ${specs[*]@Q}"
    return 0
  fi
  set_index_env
  pick_installer "$py"
  styx_mktemp_var out
  styx_log INFO "installing pip packages with $INSTALLER: ${specs[*]@Q}"
  if ! install_from_sources "$out" "$as" "$INSTALLER" "$py" "${specs[@]}"; then
    [[ $INSTALLER == uv ]] || styx__fail 1 "${INSTALL_CMD[@]}" "${specs[@]}"
    styx_log WARN "uv failed (see the phase log): installing with pip"
    NOTES+=("uv failed, pip")
    INSTALLER=pip
    install_from_sources "$out" "$as" pip "$py" "${specs[@]}" || styx__fail 1 "${INSTALL_CMD[@]}" "${specs[@]}"
  fi
  if grep -qE '^Successfully installed|^ *Installed [0-9]+ package|^ *Uninstalled [0-9]+ package' "$out"; then
    CHANGES+=("$INSTALLER installed: ${specs[*]}")
  else
    styx_log INFO "$INSTALLER reported nothing to install"
  fi
}

# python, pip and ray of the environment for every shell (a non-login SSH
# command has no profile.d): a wrapper in STYX_COMMAND_DIR per command the
# environment has, unless a file there is not styx's
ensure_commands() {
  local name f
  for name in python pip ray; do
    [[ -x $STYX_VENV_DIR/bin/$name ]] || continue
    f="$STYX_COMMAND_DIR/$name"
    if { [[ -e $f || -L $f ]]; } && ! styx_sudo grep -qxF -- "$COMMAND_MARK" "$f" 2>/dev/null; then
      styx_log WARN "$f exists and is not styx's: left alone (non-login shells run that $name)"
      continue
    fi
    # the ray phase's client settings (RAY_AUTH_MODE and the token's path, never the token) when present
    styx_write_file_if_changed "$f" 0755 < <(printf '%s\n' '#!/bin/sh' "$COMMAND_MARK" \
      "[ ! -r $RAY_AUTH_ENV ] || . $RAY_AUTH_ENV" \
      "exec $(printf '%q' "$STYX_VENV_DIR/bin/$name") \"\$@\"")
    [[ $STYX_LAST_CHANGED -eq 0 ]] || CHANGES+=("wrote $f")
  done
}

main() {
  local py summary
  case $STYX_PYTHON_ENV_TOOL in
    venv | uv | none) ;;
    *) styx_die "STYX_PYTHON_ENV_TOOL must be venv, uv or none, got '$STYX_PYTHON_ENV_TOOL'" ;;
  esac
  case $STYX_PIP_INSTALLER in
    uv | pip) ;;
    *) styx_die "STYX_PIP_INSTALLER must be uv or pip, got '$STYX_PIP_INSTALLER'" ;;
  esac
  case $STYX_WHEEL_CACHE_FETCH in
    copy | links) ;;
    *) styx_die "STYX_WHEEL_CACHE_FETCH must be copy or links, got '$STYX_WHEEL_CACHE_FETCH'" ;;
  esac
  [[ $STYX_VENV_DIR == /* ]] || styx_die "STYX_VENV_DIR must be an absolute path"
  mapfile -t SPECS < <(printf '%s' "$STYX_PIP_PACKAGES")

  [[ $STYX_PYTHON_ENV_TOOL != uv ]] || ensure_uv
  pick_python
  if [[ $STYX_PYTHON_ENV_TOOL == none ]]; then
    py=$PY
    if [[ ${#SPECS[@]} -gt 0 ]] && ! "$py" -m pip --version >/dev/null 2>&1; then
      styx_apt_install python3-pip
      [[ -z $STYX_APT_INSTALLED ]] || CHANGES+=("installed python3-pip")
    fi
  else
    [[ $STYX_PYTHON_ENV_TOOL != venv ]] || ensure_venv_module
    ensure_env
    py=$STYX_VENV_DIR/bin/python
    styx_write_file_if_changed "$VENV_PROFILE" 0644 < <(printf '%s\n' \
      '# managed by styx (python_env): put the cluster virtual environment on PATH' \
      "case \":\$PATH:\" in *\":$STYX_VENV_DIR/bin:\"*) ;; *) PATH=\"$STYX_VENV_DIR/bin:\$PATH\"; export PATH ;; esac")
    [[ $STYX_LAST_CHANGED -eq 0 ]] || CHANGES+=("wrote $VENV_PROFILE")
  fi
  [[ $STYX_PYTHON_ENV_TOOL == none ]] || note_pristine
  ensure_packages "$py"
  [[ $STYX_PYTHON_ENV_TOOL == none ]] || { write_record; ensure_commands; }

  PY_VER=$("$py" -c 'import platform; print(platform.python_version())')
  if [[ $STYX_PYTHON_ENV_TOOL == none ]]; then
    summary="system python $PY_VER ($py)"
  else
    summary="$STYX_PYTHON_ENV_TOOL $STYX_VENV_DIR (python $PY_VER)"
  fi
  [[ ${#NOTES[@]} -eq 0 ]] || CHANGES+=("${NOTES[@]}")
  if [[ ${#CHANGES[@]} -eq 0 ]]; then
    styx_result skipped "$summary up to date, ${#SPECS[@]} pip specs satisfied"
  else
    local joined
    printf -v joined '%s; ' "${CHANGES[@]}"
    styx_result ok "$summary, ${#SPECS[@]} pip specs satisfied; ${joined%; }"
  fi
}

# styx drift: the environment exists with its Python, and every pip spec is
# still satisfied (offline, against installed metadata)
check_drift() {
  local py=$STYX_VENV_DIR/bin/python have rc=0 err
  local -a problems=()
  styx_mktemp_var err
  mapfile -t SPECS < <(printf '%s' "$STYX_PIP_PACKAGES")
  if [[ $STYX_PYTHON_ENV_TOOL == none ]]; then py=$(command -v python3 || true); fi
  if [[ -z $py || ! -x $py ]]; then
    styx_verdict "" "no python at ${py:-$STYX_VENV_DIR/bin/python}"
    return 0
  fi
  have=$(py_version_of "$py") || have=broken
  if [[ $STYX_PYTHON_VERSION != system && $have != "$STYX_PYTHON_VERSION" ]]; then
    problems+=("python $have at $py, want $STYX_PYTHON_VERSION")
  fi
  if [[ ${#SPECS[@]} -gt 0 ]]; then
    PYTHONDONTWRITEBYTECODE=1 "$py" -c "$PIP_CHECK_PY" "${SPECS[@]}" 2>"$err" || rc=$?
    if [[ $rc -ne 0 ]]; then
      problems+=("$(sed -n 's/^unsatisfied: //p' "$err" | head -n 5 | awk 'NR > 1 {printf ", "} {printf "%s", $0}') not satisfied")
    fi
  fi
  styx_verdict "python $have at $py, ${#SPECS[@]} pip specs satisfied" "${problems[@]}"
}

if styx_verifying; then check_drift "$@"; else main "$@"; fi
