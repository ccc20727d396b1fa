"""The local backend's ready environments (`setup.python.env_cache: auto`): the head's Python environment, as
its python_env made it (and its first `ray start` compiled it), packed once per machine for later nodes.

    python ready_env.py capture ROOT VENV KEY DIR

capture packs ROOT/VENV (ROOT: the head's root as this host sees it, `<state_dir>/<cluster>/head/merged`;
VENV: setup.python.venv_dir) into DIR/KEY.tar (uncompressed; written under a temporary name, then renamed)
with DIR/KEY.tar.sha256 (sha256sum's format) beside it, renamed after the tarball, so that a node that
finds the .sha256 finds the tarball. It packs only when VENV/.styx-env (python_env's record) names KEY and
its dists are still the environment's (a custom script that installed more, or other versions: no capture,
one INFO line). Only what is below VENV and python_env made is packed (members: a file a later phase wrote
there stays out; the bytecode compiled since goes in); no symlink on the way to VENV is followed (the node's
files never lead this host elsewhere); symlinks inside are packed as symlinks. A KEY already there is kept.
The newest KEEP (3) tarballs stay in DIR, older ones go. capture never fails the launch: a problem is a WARN
and the nodes make their environments as without it. The wheel cache's server (`wheel_cache.py serve` of
`<cache_dir>/wheels`) serves DIR (`<cache_dir>/wheels/envs`) as /envs/.
Python 3.8+ and the standard library only; GNU tar packs.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

KEEP = 3  # the newest tarballs kept in DIR
RECORD = ".styx-env"  # python_env's record in the environment (setup_scripts/python_env.sh ENV_RECORD)
KEY_RE = re.compile(r"^[0-9a-f]{8,64}$")


def log(level: str, msg: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"[{stamp}] styx ready_env {level} {msg}", file=sys.stderr, flush=True)


PYTHON_ENV_SH = Path(__file__).resolve().parent.parent / "setup_scripts" / "python_env.sh"


def dists_program() -> str:
    """python_env.sh's DISTS_PY: the one listing of an environment's dists, on the nodes and here."""
    text = PYTHON_ENV_SH.read_text(encoding="utf-8")
    return text.split("DISTS_PY='", 1)[1].split("\n'\n", 1)[0]


def dists(venv: Path) -> list[str]:
    """Sorted `name==version` (canonical names) of venv's *.dist-info/METADATA, by python_env's DISTS_PY."""
    out = subprocess.run([sys.executable, "-c", dists_program(), str(venv)],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def _inside(root: Path, venv: str) -> Path | None:
    """ROOT/VENV when no part of the way below ROOT is a symlink and it is a folder, else None."""
    p = root
    for part in Path(venv).relative_to("/").parts:
        p = p / part
        if p.is_symlink() or not p.is_dir():
            return None
    return p


def prune(dest: Path, keep: int = KEEP) -> list[str]:
    """The newest `keep` KEY.tar in dest stay (with their .sha256); the others go. Returns the removed keys."""
    tars = sorted((p for p in dest.glob("*.tar") if p.is_file()), key=lambda p: p.stat().st_mtime, reverse=True)
    gone = []
    for p in tars[keep:]:
        for f in (p, p.with_name(p.name + ".sha256")):
            f.unlink(missing_ok=True)
        gone.append(p.stem)
    return gone


def members(src: Path, made: float) -> tuple[list[bytes], list[str]]:
    """What of src goes into the tarball: every folder, and every file or symlink python_env made, i.e. not
    newer than its record (`made`, the record's mtime: python_env writes it last), plus the bytecode written
    since (`__pycache__/*.pyc`: the first `ray start` compiles them, and Python checks each against its
    source). A file a later phase (a custom script) wrote into the environment, a pip.conf with an index's
    credentials say, stays on the head. -> (names relative to src, as tar reads them; the left-out ones)."""
    names, later = [b"."], []
    for top, dirs, files in os.walk(src):  # symlinks to folders are not followed: they are listed as files
        rel = os.path.relpath(top, src)
        for d in list(dirs):
            if os.path.islink(os.path.join(top, d)):
                dirs.remove(d)
                files.append(d)
            else:
                names.append(os.fsencode("./" + os.path.normpath(os.path.join(rel, d))))
        for f in files:
            path = os.path.join(rel, f)
            if os.lstat(os.path.join(top, f)).st_mtime > made and not (
                    f.endswith(".pyc") and os.path.basename(top) == "__pycache__"):
                later.append(os.path.normpath(path))
                continue
            names.append(os.fsencode("./" + os.path.normpath(path)))
    return names, later


def capture(root: Path, venv: str, key: str, dest: Path) -> str:
    """Pack the environment (see the module's docstring); returns the one line to print."""
    if not KEY_RE.match(key) or not venv.startswith("/") or ".." in Path(venv).parts:
        return f"ready environment {key}: not captured (invalid key or venv path)"
    tar = dest / f"{key}.tar"
    sums = dest / f"{key}.tar.sha256"
    if tar.is_file() and sums.is_file():
        os.utime(tar)  # the newest again: kept by the pruning
        return f"ready environment {key}: already there ({tar.stat().st_size / 2**20:.0f} MiB)"
    src = _inside(root, venv)
    if src is None:
        log("INFO", f"no environment {venv} in {root}: not captured")
        return f"ready environment {key}: not captured (no environment)"
    rec = src / RECORD
    lines = rec.read_text(errors="replace").splitlines() if rec.is_file() and not rec.is_symlink() else []
    rkey = next((ln[4:] for ln in lines if ln.startswith("key=")), "")
    rdists = sorted(ln[5:] for ln in lines if ln.startswith("dist="))
    if rkey != key:
        log("INFO", f"the head's environment records key '{rkey or 'none'}', not {key}: not captured")
        return f"ready environment {key}: not captured (other key)"
    if rdists != dists(src):
        log("INFO", f"the head's environment {venv} holds other dists than python_env recorded (a custom "
            "script installed more?): not captured")
        return f"ready environment {key}: not captured (other dists)"
    dest.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    names, later = members(src, rec.lstat().st_mtime)
    if later:
        log("INFO", f"left out {len(later)} file(s) written into {venv} after python_env (e.g. {later[0]})")
    tmp = dest / f".{key}.tar.{os.getpid()}"
    try:
        subprocess.run(["tar", "-C", str(src), "--one-file-system", "--numeric-owner", "--no-recursion",
                        "--null", "-T", "-", "-cf", str(tmp)], check=True, input=b"\0".join(names) + b"\0",
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        h = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        size = tmp.stat().st_size
        os.chmod(tmp, 0o644)
        (dest / f".{key}.tar.sha256.tmp").write_text(f"{h.hexdigest()}  {key}.tar\n")
        tmp.rename(tar)
        (dest / f".{key}.tar.sha256.tmp").rename(sums)
    finally:
        tmp.unlink(missing_ok=True)
        (dest / f".{key}.tar.sha256.tmp").unlink(missing_ok=True)
    gone = prune(dest)
    return (f"ready environment {key}: captured {size / 2**20:.0f} MiB in {time.monotonic() - t0:.1f}s"
            + (f" (removed {len(gone)} older)" if gone else ""))


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[0] == "capture":
        try:
            print(capture(Path(argv[1]), argv[2], argv[3], Path(argv[4])))
        except (OSError, subprocess.CalledProcessError) as e:
            err = getattr(e, "stderr", b"") or b""
            log("WARN", f"ready environment {argv[3]} not captured: {e} {err.decode(errors='replace')[-300:]}")
            print(f"ready environment {argv[3]}: not captured (error)")
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
