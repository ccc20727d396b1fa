"""The first-boot work for real (setup.first_boot: auto), in a throwaway Debian bookworm root.

cloud-init cannot run here, so this does what it does with the user data an AWS head gets: the program runs under
the AWS mocks, the instance's userDataBase64 is decoded (gzip, as cloud-init reads it), its write_files are written
into the root and its runcmd is run there as root. Then the SSH phases run as the engine runs them
(test_chroot_idempotent.run_phase: the fixed wrapper, the program on stdin) and must find the work done: the
wheel_cache fill `cached` (same key and folder), system_packages with no apt-get update of its own. The race: the
phases start while the boot work holds its locks; they wait for it, then find the work done.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_chroot_idempotent import _base_rootfs, _phase_env, _throwaway_root, run_phase

pytestmark = pytest.mark.chroot

HERE = Path(__file__).resolve().parent
BACKENDS = HERE.parent / "components" / "backends"
BOOT_DIR = "/var/lib/styx/first-boot"
# small Python work for the test (the bench uses the default: Ray)
SMALL = {"packages": ["jq"], "ray": {"enabled": False}, "python": {"pip_packages": ["idna==3.10"]}}


def head_user_data(setup: dict[str, Any]) -> tuple[str, Any]:
    """The head's cloud-config as the instance reads it (the AWS program under mocks), and its config."""
    for p in (str(BACKENDS), str(HERE.parent)):
        if p not in sys.path:
            sys.path.insert(0, p)
    from test_aws_mocks import INSTANCE, aws_cluster, install, user_data_of

    from styx.components import phases
    from styx.model.config import parse_cluster

    cluster = aws_cluster(setup=setup)
    with pytest.MonkeyPatch.context() as mp, tempfile.TemporaryDirectory() as tmp:
        run = install(mp, Path(tmp))(cluster)
        phases.script_text.cache_clear()
    (head,) = [r for r in run.of_type(INSTANCE) if r.name.endswith("-head")]
    return user_data_of(head), parse_cluster(cluster)


def write_files(root: Path, cloud_config: str) -> list[str]:
    """cc_write_files into `root`; returns the runcmd entries (argv lists)."""
    cc = yaml.safe_load(cloud_config)
    for f in cc.get("write_files", []):
        dest = root / f["path"].lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(f.get("content", ""))
        dest.chmod(int(f.get("permissions", "0644"), 8))
    return cc.get("runcmd", [])


def start_boot(root: Path, argv: list[str]) -> subprocess.Popen:
    """runcmd's entry, as root in the root (cloud-init's minimal environment)."""
    return subprocess.Popen(["chroot", str(root), "/usr/bin/env", "-i", *_phase_env({}), *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def phase_env(cfg: Any, phase: str) -> dict[str, str]:
    """The phase's parameters from the phase table, as the head's node gets them (its private address 127.0.0.1)."""
    from styx.components.phases import PHASES, NodeInfo, PhaseContext

    ctx = PhaseContext(cluster=cfg, node=NodeInfo(name="head", role="head", spec=cfg.head, private_ip="127.0.0.1",
                                                  head_ip="127.0.0.1"), wheel_cache_on_head=True)
    row = next(p for p in PHASES if p.name == phase)
    return {k: str(v) for k, v in row.env(ctx).items()}


def wait_for(path: Path, limit: float = 60) -> None:
    end = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.1)


@pytest.fixture
def root():
    with _throwaway_root(_base_rootfs()) as r:
        yield r


def test_boot_work_fills_the_caches_and_the_phases_wait_then_find_it_done(root):
    ud, cfg = head_user_data(SMALL)
    runcmd = write_files(root.path, ud)
    assert runcmd == [["bash", f"{BOOT_DIR}/first_boot.sh", "apt", "wheel_cache"]]
    assert (root.path / BOOT_DIR.lstrip("/") / "apt.pending").exists()
    boot = start_boot(root.path, runcmd[0])
    try:
        # the race: the phases arrive while the boot work holds its locks
        wait_for(root.path / BOOT_DIR.lstrip("/") / "wheel_cache.started")
        wait_for(root.path / BOOT_DIR.lstrip("/") / "apt.started")
        assert boot.poll() is None, "the boot work ended before the phases could race it"
        gate = run_phase(root, "wait_ssh", {})  # the engine's gate: the styx library in place
        assert gate.returncode == 0, gate.stderr
        with ThreadPoolExecutor(2) as pool:  # side by side, as the engine runs them (`alongside`)
            sp_f = pool.submit(run_phase, root, "system_packages", phase_env(cfg, "system_packages"))
            wc_f = pool.submit(run_phase, root, "wheel_cache", phase_env(cfg, "wheel_cache"))
            sp, wc = sp_f.result(), wc_f.result()
        assert boot.wait(timeout=900) == 0
    finally:
        if boot.poll() is None:
            boot.kill()
    log = (root.path / "var/log/styx/first-boot.log").read_text()
    assert "apt: done" in log and "wheel_cache: done" in log and "all done" in log, log
    assert "styx first-boot: ok: apt lists fresh; downloaded: jq" in log, log
    assert "filled in" in log, log  # the boot work filled the key
    assert not list((root.path / BOOT_DIR.lstrip("/")).glob("*.pending"))
    # the phases waited for it, then found the work done
    assert sp.returncode == 0, sp.stderr
    assert sp.stdout.strip() == "styx system_packages: ok: installed 1/1 packages: jq", sp.stdout
    assert "first-boot apt done (waited" in sp.stderr, sp.stderr
    sp_log = (root.path / "var/log/styx/system_packages.log").read_text()
    assert not re.search(r"^=== .*apt-get .*update$", sp_log, re.M), sp_log  # no apt-get update of its own
    assert wc.returncode == 0, wc.stderr
    key = phase_env(cfg, "wheel_cache")["STYX_WC_KEY"]
    assert wc.stdout.startswith(f"styx wheel_cache: ok: {key}: ") and ", cached; server on 127.0.0.1:18951: started" \
        in wc.stdout, wc.stdout
    assert "first-boot wheel_cache done (waited" in wc.stderr, wc.stderr
    assert (root.path / "var/lib/styx/wheel-cache/wheels" / key / ".complete").exists()
    # a second run of the phases: nothing to wait for, nothing to do
    again = run_phase(root, "wheel_cache", phase_env(cfg, "wheel_cache"))
    assert again.stdout.startswith("styx wheel_cache: skipped: "), again.stdout
    assert "first-boot" not in again.stderr
    assert os.path.exists(root.path / "var/lib/styx/wheel-cache/server.pid")

