"""sandbox/ready_env.py capture on plain folders (no sandbox, no root): what it packs, when it refuses, the
pruning, and that it never fails."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tarfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "sandbox" / "ready_env.py"
_spec = importlib.util.spec_from_file_location("ready_env", SCRIPT)
ready_env = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ready_env)

KEY = "0123456789abcdef0123"


def _venv(root: Path, record_key: str = KEY, extra: str | None = None) -> Path:
    v = root / "opt" / "styx" / "venv"
    sp = v / "lib" / "python3.11" / "site-packages"
    for name, ver in (("Foo_Bar", "1.0"), ("six", "1.16.0"), *([(extra, "9")] if extra else [])):
        d = sp / f"{name}-{ver}.dist-info"
        d.mkdir(parents=True)
        (d / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n\nName: not-this\n")
    (v / "bin").mkdir()
    os.symlink("/usr/bin/python3", v / "bin" / "python")
    (v / ".styx-env").write_text(f"key={record_key}\ndist=foo-bar==1.0\ndist=six==1.16.0\n")
    return v


def _run(root: Path, dest: Path, key: str = KEY) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "capture", str(root), "/opt/styx/venv", key, str(dest)],
                          capture_output=True, text=True, check=False)


def test_packs_the_venv_alone_with_its_sha256(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "envs"
    _venv(root)
    (root / "etc").mkdir()
    (root / "etc" / "secret").write_text("no")
    r = _run(root, dest)
    assert r.returncode == 0 and f"ready environment {KEY}: captured" in r.stdout
    tar = dest / f"{KEY}.tar"
    digest, name = (dest / f"{KEY}.tar.sha256").read_text().split()
    assert name == f"{KEY}.tar" and digest == hashlib.sha256(tar.read_bytes()).hexdigest()
    with tarfile.open(tar) as t:
        names = set(t.getnames())
        assert "./bin/python" in names and t.getmember("./bin/python").issym()
    assert "./.styx-env" in names and not any("secret" in n or n.startswith("/") for n in names)
    assert "already there" in _run(root, dest).stdout
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]


def test_other_dists_or_key_or_a_symlinked_way_capture_nothing(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "envs"
    _venv(root, extra="custom")
    r = _run(root, dest)
    assert r.returncode == 0 and "not captured (other dists)" in r.stdout and not dest.exists()
    root2 = tmp_path / "root2"
    _venv(root2, record_key="ffffffffffffffffffff")
    assert "not captured (other key)" in _run(root2, dest).stdout
    root3 = tmp_path / "root3"
    (root3 / "opt").mkdir(parents=True)
    os.symlink(root / "opt" / "styx", root3 / "opt" / "styx")  # the node's files lead elsewhere
    assert "not captured (no environment)" in _run(root3, dest).stdout
    assert not dest.exists()


def test_the_newest_three_are_kept(tmp_path):
    dest = tmp_path / "envs"
    dest.mkdir()
    for i in range(4):
        (dest / f"old{i}.tar").write_bytes(b"x")
        (dest / f"old{i}.tar.sha256").write_text("x")
        os.utime(dest / f"old{i}.tar", (1000 + i, 1000 + i))
    root = tmp_path / "root"
    _venv(root)
    assert "(removed 2 older)" in _run(root, dest).stdout
    assert sorted(p.name for p in dest.glob("*.tar")) == sorted([f"{KEY}.tar", "old3.tar", "old2.tar"])
    assert not (dest / "old0.tar.sha256").exists()


def test_dists_match_python_envs_listing(tmp_path):
    """The same `name==version` lines as python_env's DISTS_PY (first Name/Version of the headers only)."""
    v = _venv(tmp_path / "root")
    assert ready_env.dists(v) == ["foo-bar==1.0", "six==1.16.0"]
    assert "site-packages" in ready_env.dists_program()  # python_env.sh's DISTS_PY, found in the script


def test_a_failure_is_a_warning_never_an_error(tmp_path):
    root = tmp_path / "root"
    _venv(root)
    dest = tmp_path / "file"
    dest.write_text("not a folder")
    r = _run(root, dest)
    assert r.returncode == 0 and "not captured (error)" in r.stdout and "WARN" in r.stderr


def test_what_a_later_phase_wrote_stays_out_and_the_bytecode_goes_in(tmp_path):
    root, dest = tmp_path / "root", tmp_path / "envs"
    v = _venv(root)
    made = (v / ".styx-env").stat().st_mtime
    pkg = v / "lib" / "python3.11" / "site-packages" / "six"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    os.utime(pkg / "__init__.py", (made - 5, made - 5))  # installed before the record
    (pkg / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"pyc")  # compiled later (ray start)
    (v / "pip.conf").write_text("[global]\nindex-url = https://user:pass@example/simple\n")  # a custom script
    for f in (pkg / "__pycache__" / "__init__.cpython-311.pyc", v / "pip.conf"):
        os.utime(f, (made + 60, made + 60))
    r = _run(root, dest)
    assert "captured" in r.stdout and "left out 1 file(s)" in r.stderr and "pip.conf" in r.stderr
    with tarfile.open(dest / f"{KEY}.tar") as t:
        names = set(t.getnames())
    assert "./pip.conf" not in names
    assert {"./lib/python3.11/site-packages/six/__init__.py",
            "./lib/python3.11/site-packages/six/__pycache__/__init__.cpython-311.pyc", "./.styx-env"} <= names
