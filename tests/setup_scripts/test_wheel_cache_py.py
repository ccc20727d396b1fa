"""setup_scripts/wheel_cache.py without the network: the nodes' platform tags (this machine's glibc, or
STYX_WC_GLIBC as the local backend's sandboxes need), and its server for real on loopback: started, kept when
asked again with the same arguments, restarted with others, stopped; `sandbox/wheel_cache.py` runs the same
file for the local backend with the sandboxes' glibc."""

from __future__ import annotations

import os
import runpy
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "setup_scripts" / "wheel_cache.py"


@pytest.fixture
def wc():
    return runpy.run_path(str(PROGRAM))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_platform_is_this_machines_glibc_unless_told(wc, monkeypatch):
    monkeypatch.delenv("STYX_WC_GLIBC", raising=False)
    major, minor = wc["glibc"]()
    assert (major, minor) == tuple(int(x) for x in os.confstr("CS_GNU_LIBC_VERSION").split()[-1].split(".")[:2])
    monkeypatch.setenv("STYX_WC_GLIBC", "2.31")
    tags = wc["platforms"]()
    assert tags[0].startswith("manylinux_2_31_") and not any("manylinux_2_32_" in t for t in tags)
    assert tags[-1].startswith("linux_")


def test_the_local_shim_runs_the_same_program_for_the_sandboxes_glibc():
    text = (ROOT / "sandbox" / "wheel_cache.py").read_text()
    assert 'SANDBOX_GLIBC = "2.36"' in text and "setup_scripts" in text
    r = subprocess.run([sys.executable, str(ROOT / "sandbox" / "wheel_cache.py")], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 2 and "fill  DIR KEY PYTHON_X.Y" in r.stderr  # its usage, from the one program


def _serve(tmp: Path, port: int) -> str:
    r = subprocess.run([sys.executable, str(PROGRAM), "serve", str(tmp / "wheels"), "127.0.0.1", str(port),
                        str(tmp / "server.pid")], capture_output=True, text=True, timeout=60, check=True)
    return r.stdout.strip()


def test_serve_keeps_restarts_and_stop_ends_it(tmp_path):
    (tmp_path / "wheels" / "k").mkdir(parents=True)
    (tmp_path / "wheels" / "k" / "x-1.0-py3-none-any.whl").write_bytes(b"wheel")
    port, other = _free_port(), _free_port()
    try:
        assert _serve(tmp_path, port).startswith(f"wheel cache server on 127.0.0.1:{port}: started (pid ")
        pid = int((tmp_path / "server.pid").read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/k/", timeout=10) as r:
            assert b"x-1.0-py3-none-any.whl" in r.read()
        # byte ranges (uv reads a wheel's metadata from its end): a suffix, a span, one past the end
        whl = f"http://127.0.0.1:{port}/k/x-1.0-py3-none-any.whl"
        for rng, status, body in (("bytes=-2", 206, b"el"), ("bytes=1-3", 206, b"hee"), ("bytes=0-", 206, b"wheel")):
            with urllib.request.urlopen(urllib.request.Request(whl, headers={"Range": rng}), timeout=10) as r:
                assert (r.status, r.read(), r.headers["Accept-Ranges"]) == (status, body, "bytes"), rng
        with pytest.raises(urllib.error.HTTPError, match="416"):
            urllib.request.urlopen(urllib.request.Request(whl, headers={"Range": "bytes=9-"}), timeout=10)
        with urllib.request.urlopen(whl, timeout=10) as r:
            assert (r.status, r.read()) == (200, b"wheel")
        assert _serve(tmp_path, port) == f"wheel cache server on 127.0.0.1:{port}: running"
        assert int((tmp_path / "server.pid").read_text()) == pid
        assert _serve(tmp_path, other).startswith(f"wheel cache server on 127.0.0.1:{other}: started")  # restarted
        assert not Path(f"/proc/{pid}").exists() or b"http.server" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        r = subprocess.run([sys.executable, str(PROGRAM), "stop", str(tmp_path / "server.pid")], capture_output=True,
                           text=True, timeout=60, check=False)
    assert r.stdout.strip() == "wheel cache server stopped" and not (tmp_path / "server.pid").exists()


def test_downloads_reuse_one_connection_per_host_and_check_sha256(wc, tmp_path, monkeypatch):
    import hashlib
    import http.server
    import threading

    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir(), dest.mkdir()
    blobs = {f"p{i}-1.0-py3-none-any.whl": bytes([i]) * (3 << 20) for i in range(3)}
    for n, b in blobs.items():
        (src / n).write_bytes(b)
    peers: list[int] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a CDN answers

        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(src), **kw)

        def log_message(self, *a):
            peers.append(self.client_address[1])

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        ctx = wc["_ssl"]()
        for n, b in blobs.items():
            assert wc["download"](base + n, hashlib.sha256(b).hexdigest(), dest, ctx) == len(b)
            assert (dest / n).read_bytes() == b
        assert len(set(peers)) == 1, peers  # three files, one connection
        with pytest.raises(RuntimeError, match="sha256"):
            wc["download"](base + "p0-1.0-py3-none-any.whl", "0" * 64, tmp_path, ctx)
        assert not list(tmp_path.glob(".p0-*.part")) and not (tmp_path / "p0-1.0-py3-none-any.whl").exists()
        with pytest.raises(OSError):  # an error answer goes through urllib, which raises it
            wc["download"](base + "missing-1.0-py3-none-any.whl", "", dest, ctx)
    finally:
        server.shutdown()
