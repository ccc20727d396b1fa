"""Real double run of the phase scripts inside a throwaway Debian bookworm root.

Each phase runs exactly as the styx program runs it over SSH (styx.components.runner:
the fixed wrapper command, the phase's program on stdin, the library the gate
installed; clean environment), but via `chroot` into an overlay (or copy) of the sandbox base rootfs built by
`sandbox/sandboxctl.sh base`. The chroot shares the host's network namespace,
so apt and pip reach the real mirrors (host CA bundle copied in).

Checks per phase: both runs exit 0 and print exactly one stdout line; the
first run does the work, the second prints `skipped` (docker check-only and
wait_ssh print `ok` by design) and changes nothing: a snapshot (type, mode,
owner, size, mtime, content hash) of /etc, /opt/styx, /var/lib/styx and
/usr/local is identical before and after the second run.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.chroot

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "setup_scripts"
SANDBOXCTL = REPO / "sandbox" / "sandboxctl.sh"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
SNAPSHOT_DIRS = ("etc", "opt/styx", "var/lib/styx", "usr/local")
SECRET = "s3cr3t-chroot-value"
TIMINGS: list[tuple[str, int, float]] = []


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)


@dataclass
class Root:
    path: Path
    mounts: list[Path]


def _base_rootfs() -> Path:
    if os.geteuid() != 0:
        pytest.skip("chroot double-run needs root (chroot, mounts)")
    if not SANDBOXCTL.exists():
        pytest.skip(f"{SANDBOXCTL.relative_to(REPO)} missing: no base rootfs to test in")
    if not shutil.which("chroot"):
        pytest.skip("chroot(8) not installed")
    proc = _run(["bash", str(SANDBOXCTL), "base"], timeout=3600)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        pytest.skip(f"sandboxctl.sh base failed (rc {proc.returncode}): {tail}")
    path = Path(proc.stdout.strip().splitlines()[-1])
    if not (path / "bin" / "bash").exists() and not (path / "usr" / "bin" / "bash").exists():
        pytest.skip(f"base rootfs {path} has no bash")
    return path


def _mount(args: list[str]) -> bool:
    return _run(["mount", *args]).returncode == 0


@contextlib.contextmanager
def _throwaway_root(base: Path) -> Iterator[Root]:
    tmp = Path(tempfile.mkdtemp(prefix="styx-chroot-", dir="/var/tmp"))
    merged = tmp / "root"
    mounts: list[Path] = []
    try:
        for d in ("upper", "work", "root"):
            (tmp / d).mkdir()
        overlay = f"lowerdir={base},upperdir={tmp / 'upper'},workdir={tmp / 'work'}"
        if _mount(["-t", "overlay", "overlay", "-o", overlay, str(merged)]):
            mounts.append(merged)
        else:  # no overlayfs here: a full copy
            merged.rmdir()
            subprocess.run(["cp", "-a", str(base), str(merged)], check=True)
        assert _mount(["-t", "proc", "proc", str(merged / "proc")]), "mount proc failed"
        mounts.append(merged / "proc")
        # /dev recursively (pts, shm); rslave so unmounting never propagates to the host
        assert _mount(["--rbind", "/dev", str(merged / "dev")]), "bind /dev failed"
        _mount(["--make-rslave", str(merged / "dev")])
        mounts.append(merged / "dev")
        if _mount(["-t", "sysfs", "sysfs", str(merged / "sys")]):
            mounts.append(merged / "sys")
        (merged / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA, merged / "etc/ssl/certs/ca-certificates.crt")
        resolv = merged / "etc/resolv.conf"
        if resolv.is_symlink() or resolv.exists():
            resolv.unlink()
        shutil.copyfile("/etc/resolv.conf", resolv)
        yield Root(merged, mounts)
    finally:
        _kill_chroot_processes(merged)
        for m in reversed(mounts):
            if _run(["umount", "-R", str(m)]).returncode != 0:
                _run(["umount", "-R", "-l", str(m)])
        if not any(str(p).startswith(str(tmp)) for p in _mountpoints()):
            shutil.rmtree(tmp, ignore_errors=True)


def _mountpoints() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def _kill_chroot_processes(root: Path) -> None:
    """Stop processes left running inside this chroot (e.g. ray daemons)."""
    real = os.path.realpath(root)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/root") == real:
                os.kill(int(pid), 9)


def _phase_env(extra: dict[str, str]) -> list[str]:
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "USER": "root",
        "LOGNAME": "root",
        "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
        "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
    }
    for key in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if os.environ.get(key):
            env[key] = os.environ[key]
    env.update(extra)
    return [f"{k}={v}" for k, v in env.items()]


def run_phase(root: Root, phase: str, env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    from styx.components import runner

    body = (SCRIPTS / f"{phase}.sh").read_text()
    node = {"STYX_NODE_NAME": "head", "STYX_NODE_ROLE": "head", **env}
    program = runner.gate_program(body, node) if phase == "wait_ssh" else runner.program(phase, body, node)
    cmd = ["chroot", str(root.path), "/usr/bin/env", "-i", *_phase_env({}), "bash", "-c",
           runner.command_text(phase, "head", timeout, "create")]
    t0 = time.monotonic()
    proc = _run(cmd, timeout=timeout + 30, input=program)
    TIMINGS.append((phase, len([t for t in TIMINGS if t[0] == phase]) + 1, time.monotonic() - t0))
    return proc


def snapshot(root: Path) -> dict[str, tuple]:
    snap: dict[str, tuple] = {}
    for top in SNAPSHOT_DIRS:
        base = root / top
        if not base.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for name in [*dirnames, *sorted(filenames)]:
                p = Path(dirpath) / name
                st = p.lstat()
                rel = str(p.relative_to(root))
                if stat.S_ISREG(st.st_mode):
                    digest = hashlib.sha256(p.read_bytes()).hexdigest()
                    snap[rel] = ("f", st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, digest)
                elif stat.S_ISLNK(st.st_mode):
                    snap[rel] = ("l", os.readlink(p))
                else:
                    snap[rel] = ("d" if stat.S_ISDIR(st.st_mode) else "o", st.st_mode, st.st_uid, st.st_gid)
    return snap


def diff(a: dict[str, tuple], b: dict[str, tuple]) -> list[str]:
    out = [f"- {k}" for k in sorted(a.keys() - b.keys())]
    out += [f"+ {k}" for k in sorted(b.keys() - a.keys())]
    out += [f"~ {k}: {a[k]} -> {b[k]}" for k in sorted(a.keys() & b.keys()) if a[k] != b[k]]
    return out


def sync_archive(root: Path) -> dict[str, str]:
    """A real file-mount archive (styx.components.filesync.pack) put where the transport puts it."""
    from styx.components.filesync import pack
    from styx.model.config import FileMount

    src = Path(tempfile.mkdtemp(prefix="styx-sync-src-"))
    (src / "conf").mkdir()
    (src / "hello.txt").write_text("hello from the lead\n")
    (src / "conf/app.toml").write_text("[app]\nname = 'styx'\n")
    b = pack([FileMount(local=str(src), remote="/opt/styx/sync")], src, cache=src.parent / (src.name + "-cache"))
    dest = root / "root" / b.remote_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(b.path, dest)
    return {"STYX_SYNC_ARCHIVE": b.remote_path, "STYX_SYNC_SHA256": b.sha256, "STYX_SYNC_ROOTS": "/opt/styx/sync"}


@pytest.fixture(scope="module")
def root() -> Iterator[Root]:
    base = _base_rootfs()
    with _throwaway_root(base) as r:
        yield r
    if TIMINGS:
        print("\nchroot phase timings:")
        for phase, n, secs in TIMINGS:
            print(f"  {phase:16s} run {n}: {secs:6.1f} s")


def _check_one_line(proc: subprocess.CompletedProcess[str], phase: str) -> str:
    assert proc.returncode == 0, f"{phase} failed (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-6000:]}"
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"{phase}: expected one stdout line, got {lines!r}"
    assert lines[0].startswith(f"styx {phase}: "), lines[0]
    assert SECRET not in proc.stdout + proc.stderr
    return lines[0]


# phase, env, first-run status, second-run status
PHASES: list[tuple[str, dict[str, str], str, str]] = [
    ("wait_ssh", {}, "ok", "ok"),
    ("system_packages", {"STYX_APT_PACKAGES": "jq"}, "ok", "skipped"),
    ("python_env", {"STYX_PIP_PACKAGES": "six==1.16.0"}, "ok", "skipped"),
    (
        "env_vars",
        {"STYX_ENV_CONTENT": f"export HF_TOKEN_SECRET='{SECRET}'\nexport WANDB_PROJECT='styx'"},
        "ok",
        "skipped",
    ),
    ("workdir", {}, "ok", "skipped"),
    ("file_sync", {"sync": "1"}, "ok", "skipped"),
    ("docker", {"STYX_DOCKER_MODE": "check"}, "ok", "ok"),
    ("gpu", {}, "skipped", "skipped"),
]


@pytest.mark.parametrize(("phase", "env", "first", "second"), PHASES, ids=[p[0] for p in PHASES])
def test_phase_twice(root: Root, phase: str, env: dict[str, str], first: str, second: str) -> None:
    if env.get("sync"):
        env = sync_archive(root.path)
    line1 = _check_one_line(run_phase(root, phase, env), phase)
    assert line1.startswith(f"styx {phase}: {first}: "), line1
    before = snapshot(root.path)
    line2 = _check_one_line(run_phase(root, phase, env), phase)
    after = snapshot(root.path)
    assert line2.startswith(f"styx {phase}: {second}: "), line2
    changes = diff(before, after)
    assert not changes, f"second {phase} run changed files:\n" + "\n".join(changes[:50])


def test_python_env_with_uv_twice(root: Root) -> None:
    """Installer uv for real: uv from the index (PyPI) with the environment's pip, then the package; the
    second run changes nothing (uv stays, the specs are satisfied)."""
    env = {"STYX_PIP_PACKAGES": "six==1.16.0", "STYX_PIP_INSTALLER": "uv", "STYX_VENV_DIR": "/opt/styx/venv-uv",
           "STYX_COMMAND_DIR": "/opt/styx/venv-uv-bin", "STYX_PROFILE_DIR": "/opt/styx/venv-uv-profile"}
    line1 = _check_one_line(run_phase(root, "python_env", env), "python_env")
    assert line1.startswith("styx python_env: ok: "), line1
    assert "installed uv " in line1 and "uv installed: six==1.16.0" in line1, line1
    before = snapshot(root.path)
    line2 = _check_one_line(run_phase(root, "python_env", env), "python_env")
    assert line2.startswith("styx python_env: skipped: "), line2
    assert not diff(before, snapshot(root.path))
    out = _run(["chroot", str(root.path), "/opt/styx/venv-uv/bin/python", "-c", "import six; print(six.__version__)"])
    assert out.stdout.strip() == "1.16.0", out.stderr


def test_results_on_disk(root: Root) -> None:
    """What the first runs left behind is what the lead expects."""
    r = root.path
    assert (r / "usr/bin/jq").exists()
    out = _run(["chroot", str(r), "/opt/styx/venv/bin/python", "-c", "import six; print(six.__version__)"])
    assert out.stdout.strip() == "1.16.0", out.stderr
    env_file = r / "etc/styx/env.sh"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert SECRET in env_file.read_text()
    login = _run(
        [
            "chroot",
            str(r),
            "/usr/bin/env",
            "-i",
            "PATH=/usr/bin:/bin",
            "sh",
            "-lc",
            "echo $WANDB_PROJECT; command -v python",
        ]
    )
    assert login.stdout.split() == ["styx", "/opt/styx/venv/bin/python"], login.stdout + login.stderr
    assert (r / "opt/styx/work").is_dir()
    assert (r / "opt/styx/sync/conf/app.toml").read_text() == "[app]\nname = 'styx'\n"
    assert not any((r / "var/log/styx").glob("*.log")) or all(
        SECRET not in p.read_text(errors="replace") for p in (r / "var/log/styx").glob("*.log")
    )


@pytest.mark.slow
def test_ray_head_twice(root: Root) -> None:
    """Optional, heavy (pip install ray): head start, then left alone."""
    if os.environ.get("STYX_TEST_RAY") != "1":
        pytest.skip("set STYX_TEST_RAY=1 to pip-install and start Ray inside the chroot (slow)")
    env = {
        "STYX_NODE_IP": "127.0.0.1",
        "STYX_RAY_PORT": "26379",
        "STYX_RAY_DASHBOARD_PORT": "28265",
        "STYX_RAY_CLIENT_PORT": "30001",
        "STYX_RAY_NUM_CPUS": "1",
        "STYX_RAY_OBJECT_STORE_BYTES": "100000000",
    }
    try:
        line1 = _check_one_line(run_phase(root, "ray", env, timeout=1800), "ray")
        assert line1.startswith("styx ray: ok: ray 2.60.0 head started at 127.0.0.1:26379"), line1
        before = snapshot(root.path)
        line2 = _check_one_line(run_phase(root, "ray", env), "ray")
        assert line2 == "styx ray: skipped: ray 2.60.0 already running (head 127.0.0.1:26379)"
        assert not diff(before, snapshot(root.path))
    finally:
        run_phase(root, "ray_delete", {})
