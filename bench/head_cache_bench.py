"""Benchmark: a `cloud: ssh` launch over 3 fresh sandbox hosts (head + 2 workers, Ray 2.60.0 from PyPI,
installer uv), with the head's wheel cache (`setup.python.wheel_cache: auto`: the head fetches the cluster's
wheels once and serves them to the workers) and without it (`off`: every node downloads from PyPI). Each
round makes new hosts (nothing cached on them), launches, reads the phase timeline, the CPU seconds inside
the nodes and the bytes each node fetched from outside, and tears everything down. Numbers only, no asserts.

    flock /tmp/styx-bench.lock .venv/bin/python bench/head_cache_bench.py [--modes auto,off] [--json out.json]

Cluster `hbench`, subnet 10.122.0.0/24 (hand-made hosts, torn down in a `finally`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RAY_VERSION,
    BenchStack,
    HandMadeHosts,
    fmt,
    json_dump,
    loadavg,
    log,
    machine_line,
    node_cpu_seconds,
    rm_tree,
    table,
)

NAME, SUBNET = "hbench", "10.122.0.0/24"


def cluster(hosts: HandMadeHosts, mode: str) -> dict:
    return {"name": NAME, "cloud": "ssh", "ssh": {"private_key_file": str(hosts.key)},
            "head": {"host": hosts.head}, "workers": [{"name": "worker", "hosts": hosts.workers}],
            "setup": {"ray": {"version": RAY_VERSION}, "python": {"wheel_cache": mode}}}


def node_rx_bytes(hosts: HandMadeHosts) -> dict[str, int]:
    """Bytes each node has received so far on its network interfaces, loopback left out (its own network
    namespace's /proc/net/dev; the downloads dominate)."""
    out = {}
    for n, ip in hosts.nodes:
        r = hosts.ssh(ip, "awk 'NR > 2 { sub(/:/, \" \"); if ($1 != \"lo\") s += $2 } END { print s + 0 }' "
                          "/proc/net/dev", timeout=30)
        try:
            out[n] = int(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            out[n] = -1
    return out


def one(mode: str) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix=f"{NAME}-{mode}-"))
    hosts = HandMadeHosts(NAME, SUBNET, 2, tmp)
    stack = None
    try:
        hosts.up()
        rx0 = node_rx_bytes(hosts)
        cpu0 = node_cpu_seconds(NAME) or 0.0
        load0 = loadavg()
        stack = BenchStack(f"{NAME}-{mode}", cluster(hosts, mode), tmp)
        stack._key = hosts.key
        run = stack.up()
        load1 = loadavg()
        cpu = (node_cpu_seconds(NAME) or 0.0) - cpu0
        rx1 = node_rx_bytes(hosts)
        tl = run.timeline
        out = {
            "mode": mode, "up_s": run.seconds, "node_cpu_s": cpu, "load_before": load0, "load_after": load1,
            "head_wheel_cache_s": tl.dur(f"{NAME}-head-wheel_cache"),
            "python_env_s": {n: tl.dur(f"{NAME}-{n}-python_env") for n, _ in hosts.nodes},
            "python_env_end_s": tl.last_end("-python_env"),
            "ray_end_s": tl.last_end("-ray"),
            "rx_mib": {n: (rx1[n] - rx0[n]) / 2**20 for n, _ in hosts.nodes},
            "results": {n: stack.outputs()["phase_results"][n].get("python_env") for n, _ in hosts.nodes},
        }
        if mode == "auto":
            out["wheel_cache_line"] = stack.outputs()["phase_results"]["head"].get("wheel_cache")
        log(f"{mode}: up {run.seconds:.1f} s, node CPU {cpu:.1f} s, load {load0} -> {load1}")
        return out
    finally:
        if stack is not None:
            stack.teardown()
        hosts.down()
        rm_tree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="auto,off")
    ap.add_argument("--json")
    args = ap.parse_args()
    print(machine_line())
    t0 = time.monotonic()
    rows = [one(m) for m in args.modes.split(",")]
    print(table("ssh backend, 3 fresh hosts, Ray from PyPI with uv: the head's wheel cache on and off",
                ["wheel_cache", "up s", "head wheel_cache s", "python_env head/w0/w1 s", "all python_env done s",
                 "node CPU s", "MiB in head/w0/w1", "load before -> after"],
                [[r["mode"], r["up_s"], r["head_wheel_cache_s"],
                  "/".join(fmt(v) for v in r["python_env_s"].values()), r["python_env_end_s"], r["node_cpu_s"],
                  "/".join(f"{v:.0f}" for v in r["rx_mib"].values()), f"{r['load_before']} -> {r['load_after']}"]
                 for r in rows]))
    for r in rows:
        print(f"{r['mode']}: {r.get('wheel_cache_line') or ''}")
        for n, line in r["results"].items():
            print(f"  {n}: {line}")
    print(f"total {time.monotonic() - t0:.0f} s; load now {loadavg()}")
    json_dump(args.json, rows)


if __name__ == "__main__":
    main()
