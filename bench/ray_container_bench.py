"""Benchmark (issue 18): time to 3 alive Ray nodes with Ray on the hosts and with Ray in containers
(`setup.ray.container`), the same 3-node local cluster otherwise, one after the other in one run.

Both clusters: `local.docker: true`, the docker phase installing Debian's docker.io, Ray 2.60.0, the
default installer (uv) and wheel cache. "host": Ray installed by python_env on every node and started
there. "container": the image tarball of `toolchain/build-image-tar.sh ray` (the Kubernetes tests'
Ray image, built once into $STYX_HOME/images, like tests/e2e/test_ray_container.py; not timed) copied to every node,
`docker load`ed and run as `styx-ray`, Ray started inside it; python_env does not install Ray.
"3 alive" is polled on the head through the dashboard (host network in both cases). Printed: the
engine call, 3 alive, CPU seconds inside the nodes and on the host, per-phase seconds, load averages.
Everything is destroyed in a `finally`.

    .venv/bin/python bench/ray_container_bench.py [--order host,container] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RAY_VERSION,
    ROOT,
    BenchStack,
    HostCpu,
    dashboard_alive,
    fmt,
    json_dump,
    loadavg,
    log,
    machine_line,
    node_cpu_seconds,
    table,
)

SUBNETS = {"host": "10.98.0.0/24", "container": "10.98.1.0/24"}
PHASES = ("sandbox", "system_packages", "python_env", "docker", "ray_container-copy", "ray_container", "ray")


def ray_image() -> Path:
    """The image tarball (`build-image-tar.sh ray`: cached, else built here, not timed)."""
    log("the Ray image tarball (toolchain/build-image-tar.sh ray; not timed)")
    out = subprocess.run(["bash", str(ROOT / "toolchain/build-image-tar.sh"), "ray", RAY_VERSION], check=True,
                         capture_output=True, text=True).stdout.strip()
    return Path(out)


def cluster(mode: str) -> dict:
    ray: dict = {"version": RAY_VERSION}
    if mode == "container":
        ray["container"] = {"image": f"styx.local/ray:{RAY_VERSION}", "tarball": str(ray_image())}
    return {"name": f"bench-rc-{mode}", "cloud": "local", "workers": [{"name": "worker", "count": 2}],
            "local": {"subnet": SUBNETS[mode], "docker": True, "shm_size": "1g"},
            "setup": {"docker": {"mode": "install", "method": "distro"}, "ray": ray}}


def run(mode: str, tmp: Path) -> dict:
    c = cluster(mode)
    s = BenchStack(c["name"], c, tmp / mode)
    out: dict = {"mode": mode, "load_before": loadavg()}
    try:
        log(f"{mode}: up (load {out['load_before']})")
        t0 = time.monotonic()
        cpu = HostCpu()
        r = s.up()
        out["up_s"] = r.seconds
        head = next(n["private_ip"] for n in s.outputs()["nodes"] if n["name"] == "head")
        alive = None
        while time.monotonic() - t0 < 900:
            if (dashboard_alive(s.access(), head) or 0) >= 3:
                alive = time.monotonic() - t0
                break
            time.sleep(1)
        out.update(alive_s=alive, host_cpu_s=cpu.stop(), node_cpu_s=node_cpu_seconds(c["name"]),
                   changes=r.changes, load_after=loadavg())
        per: dict[str, list[float]] = {}
        for name in r.timeline.end:
            for ph in PHASES:
                if name.endswith(f"-{ph}") and (d := r.timeline.dur(name)) is not None:
                    per.setdefault(ph, []).append(d)
        out["phases"] = {ph: max(v) for ph, v in per.items()}
        log(f"{mode}: up {r.seconds:.1f}s, 3 alive at {fmt(alive)}s, CPU s in nodes {fmt(out['node_cpu_s'])}")
    finally:
        s.teardown()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--order", default="host,container", help="which cluster first (default host,container)")
    ap.add_argument("--json", help="write the numbers to this file")
    args = ap.parse_args()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(f"machine: {machine_line()}")
    ray_image()
    res = []
    with tempfile.TemporaryDirectory(prefix="styx-rc-bench-") as d:
        for mode in args.order.split(","):
            res.append(run(mode.strip(), Path(d)))
    rows = [[r["mode"], fmt(r["up_s"]), fmt(r["alive_s"]), fmt(r["node_cpu_s"]), fmt(r["host_cpu_s"]),
             r["load_before"], r["load_after"]] for r in res]
    print(table("Ray on the host vs Ray in a container, 3 local nodes (docker installed on both), one run",
                ["run", "engine call s", "3 alive s", "CPU s in nodes", "CPU s on host", "load before", "load after"],
                rows))
    by = {r["mode"]: r for r in res}
    if by.get("host", {}).get("alive_s") and by.get("container", {}).get("alive_s"):
        print(f"\ncontainer / host, to 3 alive: {by['container']['alive_s'] / by['host']['alive_s']:.2f}")
    phases = sorted({p for r in res for p in r["phases"]}, key=PHASES.index)
    print(table("slowest node's seconds per phase", ["phase", *[r["mode"] for r in res]],
                [[p, *[fmt(r["phases"].get(p)) for r in res]] for p in phases]))
    print(f"\nmachine at the end: {machine_line()}")
    json_dump(args.json, {"machine": machine_line(), "runs": res})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
