"""Benchmark: setup.first_boot on a head, in a fresh Debian bookworm root (the sandbox base rootfs, a chroot with
the host's network, as tests/setup_scripts/test_first_boot_chroot.py): how long the boot work takes, and how long
the SSH phases it helps (system_packages and wheel_cache, side by side as the engine runs them) take after it
(`boot`) and without it (`cold`: setup.first_boot off). The head's user data is the AWS program's, under mocks,
decoded as cloud-init reads it. Each round makes new roots (nothing cached in them). Numbers only, no asserts.

    flock /tmp/styx-bench.lock .venv/bin/python bench/first_boot_bench.py [--rounds 1] [--packages jq,htop]

On a cloud the boot work runs while the engine still waits for SSH (instance boot, sshd, the engine's dial), so
what it takes is hidden up to that gap; the phases then take the `boot` column instead of the `cold` one.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(Path(__file__).resolve().parent), str(ROOT / "tests" / "setup_scripts"), str(ROOT / "tests")]

from _common import fmt, loadavg, log, machine_line, table  # noqa: E402
from test_chroot_idempotent import _base_rootfs, _throwaway_root, run_phase  # noqa: E402
from test_first_boot_chroot import head_user_data, phase_env, start_boot, write_files  # noqa: E402


def phases(root, cfg) -> dict[str, float]:
    """The gate, then system_packages and wheel_cache side by side: seconds each, and their result lines."""
    out: dict[str, float] = {}
    t0 = time.monotonic()
    gate = run_phase(root, "wait_ssh", {})
    assert gate.returncode == 0, gate.stderr

    def one(name: str):
        t = time.monotonic()
        p = run_phase(root, name, phase_env(cfg, name))
        out[name] = time.monotonic() - t
        log(f"  {name}: {p.stdout.strip()} ({out[name]:.1f}s)")
        assert p.returncode == 0, p.stderr[-2000:]

    t1 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(one, ("system_packages", "wheel_cache")))
    out["phases"] = time.monotonic() - t1
    out["gate"] = t1 - t0
    return out


def round_(mode: str, setup: dict) -> dict[str, float]:
    ud, cfg = head_user_data(setup)
    with _throwaway_root(_base_rootfs()) as root:
        res: dict[str, float] = {"load": float(loadavg().split()[0])}
        if mode == "boot":
            runcmd = write_files(root.path, ud)
            t = time.monotonic()
            boot = start_boot(root.path, runcmd[0])
            assert boot.wait(timeout=1800) == 0, boot.stdout.read() if boot.stdout else ""
            res["boot_work"] = time.monotonic() - t
            log(f"  boot work: {res['boot_work']:.1f}s")
        res.update(phases(root, cfg))
        return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--packages", default="jq,htop")
    a = ap.parse_args()
    setup = {"packages": [p for p in a.packages.split(",") if p]}  # Ray 2.60.0 (the default) for the wheel cache
    print(machine_line())
    rows = []
    for i in range(a.rounds):
        for mode in (("cold", "boot") if i % 2 == 0 else ("boot", "cold")):  # alternate the order
            log(f"round {i + 1}: {mode} (load {loadavg()})")
            r = round_(mode, setup)
            rows.append([i + 1, mode, r.get("boot_work"), r["gate"], r["system_packages"], r["wheel_cache"],
                         r["phases"], r["load"]])
    print(table("first boot on a head (seconds; phases = system_packages and wheel_cache side by side)",
                ["round", "mode", "boot work", "gate", "system_packages", "wheel_cache", "phases", "load 1m"], rows))
    for mode in ("cold", "boot"):
        ph = [r[6] for r in rows if r[1] == mode]
        print(f"{mode}: phases mean {fmt(sum(ph) / len(ph))} s")
    print(f"load at the end: {loadavg()}")


if __name__ == "__main__":
    main()
