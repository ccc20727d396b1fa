"""A cluster's wheels downloaded once and served to its nodes (`setup.python.wheel_cache: auto`): run on the
operator's machine by the local backend (`sandbox/wheel_cache.py`, served on the cluster's bridge) and on the
head by the `wheel_cache` phase of the ssh, aws and gcp backends (served on the head's private address).

    python wheel_cache.py fill  DIR KEY PYTHON_X.Y   (requirements in the environment, STYX_WC_SPECS, one a line)
    python wheel_cache.py serve DIR ADDR PORT PIDFILE
    python wheel_cache.py stop  PIDFILE

fill resolves the requirements for the nodes' Python and platform (`uv pip compile` to a pylock.toml;
uv itself from the index, like the nodes' installer), downloads the best wheel of each package (an sdist
where there is none) in parallel, sha256-checked, into DIR/KEY/, and marks it DIR/KEY/.complete; a
complete KEY is not fetched again. Without uv it runs `pip download`. DIR/KEY/.sha256sums lists every file
with its sha256 (sha256sum's format): what a node copies in one parallel fetch (python_env's
STYX_WHEEL_CACHE_FETCH=copy) before it installs from that local folder; a complete KEY filled before
that list existed gets it at the next fill. The index is PIP_INDEX_URL (the
environment, never argv). The nodes' platform: this machine's architecture and glibc (STYX_WC_GLIBC=X.Y
says another glibc: the local backend's sandboxes). fill never fails the cluster: a problem is a warning,
and the nodes, which install from the cache with --no-index first, fall back to the index for what the
cache lacks.
serve runs the standard library's HTTP server for DIR bound to ADDR (a private address), in its own
session, as `python wheel_cache.py http.server --bind ADDR --directory DIR PORT` (with single byte ranges,
so that uv reads a wheel's metadata without downloading it twice); a server already running from PIDFILE
with these arguments is kept (one with others is stopped first). stop ends it.
Python 3.8+ and the standard library only (packaging and a TOML reader are used from this Python when it
has them, else uv installs pinned copies beside uv).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import http.client
import http.server
import os
import platform
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

UV_VERSION = "0.13.9"
THREADS = 8
# pure-Python libraries fill needs, installed by uv beside itself when this Python has none (a bare image)
PACKAGING = "packaging==24.2"
TOMLI = "tomli==2.2.1"


def glibc() -> tuple[int, int]:
    """The nodes' glibc: STYX_WC_GLIBC (X.Y), else this machine's (the head serves nodes of its own image)."""
    v = os.environ.get("STYX_WC_GLIBC") or (os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.17").split()[-1]
    major, minor = v.split(".")[:2]
    return int(major), int(minor)


def log(level: str, msg: str) -> None:
    print(f"[{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}] wheel-cache {level} {msg}", file=sys.stderr,
          flush=True)


def platforms() -> list[str]:
    arch = platform.machine()
    major, minor = glibc()
    tags = [f"manylinux_{major}_{m}_{arch}" for m in range(minor, 16, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{v}_{arch}" for v in legacy.values()] + [f"linux_{arch}"]


def _pylib(uv: Path, spec: str) -> None:
    """`spec` (a pure-Python library, pinned) installed by uv beside itself and put on sys.path."""
    target = uv.parent.parent / "pylib"
    if not (target / ".done").exists() or spec not in (target / ".done").read_text().split():
        env = {**os.environ, "UV_NO_CONFIG": "1", "UV_SYSTEM_CERTS": "1"}
        if env.get("PIP_INDEX_URL"):
            env["UV_INDEX_URL"] = env["PIP_INDEX_URL"]
        r = subprocess.run([str(uv), "pip", "install", "-q", "--python", sys.executable, "--target", str(target),
                            spec], capture_output=True, text=True, env=env, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"{spec} could not be installed: {r.stderr.strip()[-300:]}")
        with open(target / ".done", "a") as f:
            f.write(spec + "\n")
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))


def _packaging(uv: Path | None = None):
    try:
        from packaging import tags, utils
    except ImportError:
        try:
            from pip._vendor.packaging import tags, utils  # type: ignore[no-redef]
        except ImportError:
            if uv is None:
                raise
            _pylib(uv, PACKAGING)
            from packaging import tags, utils  # type: ignore[no-redef]
    return tags, utils


def _toml(uv: Path):
    try:
        import tomllib  # Python 3.11+
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            _pylib(uv, TOMLI)
            import tomli as tomllib  # type: ignore[no-redef]
    return tomllib


def _ssl() -> ssl.SSLContext:
    ca = os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt"
    return ssl.create_default_context(cafile=ca if os.path.exists(ca) else None)


def ensure_uv(tools: Path) -> Path | None:
    """uv from the index into TOOLS/uv-<version> (the same wheel the nodes use), or None."""
    target = tools / f"uv-{UV_VERSION}"
    uv = target / "bin" / "uv"
    if uv.exists():
        return uv
    tmp = tools / f".uv-{UV_VERSION}.{os.getpid()}"
    tools.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-input", "--disable-pip-version-check",
                        "--no-compile", "--target", str(tmp), f"uv=={UV_VERSION}"],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0 or not (tmp / "bin" / "uv").exists():
        shutil.rmtree(tmp, ignore_errors=True)
        log("WARN", f"uv {UV_VERSION} could not be installed on this machine: {r.stderr.strip()[-300:]}")
        return None
    with contextlib.suppress(OSError):
        tmp.rename(target)
    shutil.rmtree(tmp, ignore_errors=True)
    return uv


def resolve(uv: Path, req: Path, pyver: str, out: Path) -> list[tuple[str, str]]:
    """(url, sha256) of the best file of every package the requirements resolve to on the nodes."""
    env = {**os.environ, "UV_NO_CONFIG": "1", "UV_SYSTEM_CERTS": "1"}
    if env.get("PIP_INDEX_URL"):
        env["UV_INDEX_URL"] = env["PIP_INDEX_URL"]
    arch = platform.machine()
    major, minor = glibc()
    cmd = [str(uv), "pip", "compile", "-q", str(req), "--python-version", pyver, "--python-platform",
           f"{arch}-manylinux_{major}_{minor}", "--format", "pylock.toml", "-o", str(out)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"uv pip compile failed: {r.stderr.strip()[-500:]}")
    lock = _toml(uv).loads(out.read_text())
    tags, utils = _packaging(uv)
    major, minor = (int(x) for x in pyver.split("."))
    plats = platforms()
    interp = f"cp{major}{minor}"
    supported = [*tags.cpython_tags((major, minor), abis=[interp, "abi3", "none"], platforms=plats),
                 *tags.compatible_tags((major, minor), interpreter=interp, platforms=plats)]
    rank = {t: i for i, t in enumerate(supported)}
    files: list[tuple[str, str]] = []
    for pkg in lock.get("packages", []):
        best: tuple[int, dict] | None = None
        for w in pkg.get("wheels", []):
            name = urllib.parse.unquote(w["url"].rsplit("/", 1)[-1])
            try:
                wtags = utils.parse_wheel_filename(name)[3]
            except Exception:
                continue
            r_ = min((rank[t] for t in wtags if t in rank), default=None)
            if r_ is not None and (best is None or r_ < best[0]):
                best = (r_, w)
        chosen = best[1] if best else pkg.get("sdist")
        if not chosen or "url" not in chosen:
            raise RuntimeError(f"no file of {pkg.get('name')} {pkg.get('version')} for python {pyver}")
        files.append((chosen["url"], (chosen.get("hashes") or {}).get("sha256", "")))
    return files


_kept = threading.local()  # each download thread's open connections, by scheme and host


def _open(url: str, ctx: ssl.SSLContext):
    """A response for `url`: over this thread's kept-alive connection to its host (one TLS handshake per host
    and thread, not one per file: 61 files took 10.7 s with a connection each, 1.4 s kept alive, on 8 threads
    at load 10), else urllib's (a proxy in the environment, credentials in the URL, a redirect, an error)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https") and parts.username is None and not urllib.request.getproxies():
        conns = _kept.__dict__.setdefault("by_host", {})
        key = (parts.scheme, parts.netloc)
        for attempt in (0, 1):  # a kept connection the server closed meanwhile: once more on a new one
            c = conns.get(key)
            if c is None:
                c = conns[key] = (http.client.HTTPSConnection(parts.hostname, parts.port, context=ctx, timeout=120)
                                  if parts.scheme == "https" else
                                  http.client.HTTPConnection(parts.hostname, parts.port, timeout=120))
            try:
                c.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""))
                r = c.getresponse()
            except (http.client.HTTPException, OSError):
                c.close()
                conns.pop(key, None)
                if attempt:
                    break
                continue
            if r.status == 200:
                return r
            r.read()  # a redirect or an error: urllib follows it, or raises it
            break
    return urllib.request.urlopen(url, context=ctx, timeout=120)


def download(url: str, sha256: str, dest: Path, ctx: ssl.SSLContext) -> int:
    name = urllib.parse.unquote(url.rsplit("/", 1)[-1].split("#", 1)[0])
    tmp = dest / f".{name}.part"
    h = hashlib.sha256()
    r = _open(url, ctx)
    try:
        with open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    finally:
        r.close()  # after the whole body a kept connection stays open for the next file
    if sha256 and h.hexdigest() != sha256:
        tmp.unlink()
        raise RuntimeError(f"{name}: sha256 {h.hexdigest()} is not the index's {sha256}")
    tmp.rename(dest / name)
    return (dest / name).stat().st_size


def pip_download(req: Path, pyver: str, dest: Path) -> None:
    major, minor = pyver.split(".")
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-input", "--disable-pip-version-check",
           "--dest", str(dest), "--only-binary=:all:", "--python-version", pyver, "--implementation", "cp",
           "--abi", f"cp{major}{minor}", "--abi", "abi3", "--abi", "none", "-r", str(req)]
    for p in platforms():
        cmd += ["--platform", p]
    r = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"pip download failed: {r.stderr.strip()[-500:]}")


SUMS = ".sha256sums"


def write_sums(dest: Path) -> None:
    """DIR/KEY/.sha256sums: `<sha256>  <name>` of every file a node installs from (dotfiles left out)."""
    lines = []
    for p in sorted(dest.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        h = hashlib.sha256()
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        lines.append(f"{h.hexdigest()}  {p.name}\n")
    tmp = dest / f"{SUMS}.{os.getpid()}"
    tmp.write_text("".join(lines))
    tmp.rename(dest / SUMS)


def fill(root: Path, key: str, pyver: str) -> int:
    specs = [s for s in os.environ.get("STYX_WC_SPECS", "").split("\n") if s.strip()]
    dest = root / key
    done = dest / ".complete"
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    with open(root / ".lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        if done.exists():
            if not (dest / SUMS).exists():
                write_sums(dest)
            n = sum(1 for p in dest.iterdir() if not p.name.startswith("."))
            print(f"wheel cache {key}: {n} files, cached")
            return 0
        tmp = root / f".{key}.{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        req = tmp / ".requirements.in"
        req.write_text("".join(s + "\n" for s in specs))
        try:
            uv = ensure_uv(root.parent / "tools")
            if uv is not None:
                files = resolve(uv, req, pyver, tmp / "pylock.toml")
                (tmp / "pylock.toml").rename(tmp / ".pylock.toml")
                ctx = _ssl()
                with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
                    size = sum(pool.map(lambda f: download(f[0], f[1], tmp, ctx), files))
                how = f"uv resolve + {len(files)} parallel downloads, {size / 2**20:.0f} MiB"
            else:
                pip_download(req, pyver, tmp)
                how = "pip download"
        except Exception as e:  # never fails the cluster: the nodes fall back to the index
            shutil.rmtree(tmp, ignore_errors=True)
            log("WARN", f"wheel cache {key} not filled ({e}); the nodes install from the index")
            print(f"wheel cache {key}: not filled")
            return 0
        write_sums(tmp)
        (tmp / ".complete").write_text(f"{time.time():.0f}\n")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    n = sum(1 for p in dest.iterdir() if not p.name.startswith("."))
    print(f"wheel cache {key}: {n} files, filled in {time.monotonic() - t0:.1f}s ({how})")
    return 0


def _running(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"http.server" in cmdline else None


def _server_args(root: Path, addr: str, port: int) -> list[str]:
    """The server's arguments after the interpreter: this file's own `http.server` (the standard library's,
    with byte ranges), in http.server's words."""
    return [str(Path(__file__).resolve()), "http.server", "--bind", addr, "--directory", str(root), str(port)]


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """The standard library's file server with single byte ranges (206): uv reads a wheel's metadata from its
    end (a HEAD, then ranges) instead of downloading the whole wheel once to resolve and again to install
    (without ranges a node took 238 MiB from a 127 MiB cache)."""

    def end_headers(self) -> None:
        self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def send_head(self):  # type: ignore[override]
        import io
        import re

        rng = (self.headers.get("Range") or "").strip()
        path = self.translate_path(self.path)
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng)
        if not m or not (m[1] or m[2]) or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        start, end = (max(0, size - int(m[2])), size - 1) if not m[1] else \
            (int(m[1]), min(size - 1, int(m[2])) if m[2] else size - 1)
        if start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        with open(path, "rb") as f:
            f.seek(start)
            body = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


def httpd(root: Path, addr: str, port: int) -> int:
    """Serve ROOT on ADDR:PORT until stopped (the process `serve` starts)."""
    import functools

    handler = functools.partial(_RangeHandler, directory=str(root))
    with http.server.ThreadingHTTPServer((addr, port), handler) as server:
        print(f"Serving HTTP on {addr} port {port} ...", file=sys.stderr, flush=True)
        server.serve_forever()
    return 0


def serve(root: Path, addr: str, port: int, pidfile: Path) -> int:
    root.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    args = _server_args(root, addr, port)
    pid = _running(pidfile)
    if pid:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:-1]
        if [a.decode(errors="replace") for a in argv] == args:
            print(f"wheel cache server on {addr}:{port}: running")
            return 0
        log("INFO", f"the wheel cache server (pid {pid}) serves other settings: restarted")
        stop(pidfile, quiet=True)
    logf = open(pidfile.with_suffix(".log"), "ab")  # noqa: SIM115 (the server keeps it)
    proc = subprocess.Popen([sys.executable, *args], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                            start_new_session=True)
    pidfile.write_text(f"{proc.pid}\n")
    for _ in range(100):
        with contextlib.suppress(OSError), socket.create_connection((addr, port), timeout=0.5):
            print(f"wheel cache server on {addr}:{port}: started (pid {proc.pid})")
            return 0
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    log("WARN", f"wheel cache server on {addr}:{port} did not start (see {pidfile.with_suffix('.log')}); "
        "the nodes install from the index")
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    pidfile.unlink(missing_ok=True)
    return 0


def stop(pidfile: Path, quiet: bool = False) -> int:
    pid = _running(pidfile)
    if pid:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)
    pidfile.unlink(missing_ok=True)
    if quiet:
        return 0
    pidfile.with_suffix(".log").unlink(missing_ok=True)
    print("wheel cache server stopped" if pid else "wheel cache server not running")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 6 and argv[0] == "http.server" and argv[1] == "--bind" and argv[3] == "--directory":
        return httpd(Path(argv[4]), argv[2], int(argv[5]))
    if len(argv) == 4 and argv[0] == "fill":
        return fill(Path(argv[1]), argv[2], argv[3])
    if len(argv) == 5 and argv[0] == "serve":
        return serve(Path(argv[1]), argv[2], int(argv[3]), Path(argv[4]))
    if len(argv) == 2 and argv[0] == "stop":
        return stop(Path(argv[1]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
