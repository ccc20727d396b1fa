"""Benchmark: evaluating the styx program under Pulumi mocks for 10, 100 and 1,000 nodes, beside a
bare program that registers the same number of plain resources. Prints seconds and the ratio
(goal: styx / bare <= 1.2). Not a test: numbers only.

    .venv/bin/python bench/program_eval.py [--nodes 10,100,1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ["STYX_LOCAL_PREFLIGHT"] = "0"

import pulumi  # noqa: E402
from mocking import Recorder, make_mocks, run_program  # noqa: E402
from pulumi_command import local  # noqa: E402


def cluster(n: int) -> dict:
    hosts = [f"192.0.2.{i % 250 + 1}" for i in range(n - 1)]
    return {
        "name": "bench",
        "cloud": "ssh",
        "ssh": {"private_key_file": str(KEY)},
        "head": {"host": "192.0.2.254"},
        "workers": [{"name": "worker", "hosts": hosts}] if hosts else [],
        "setup": {"packages": ["jq"], "env": {"A": "1"}, "workdir": "/opt/w",
                  "custom_scripts": [{"name": "hello", "inline": "echo hi"}]},
    }


def bare(count: int) -> float:
    rec = Recorder()
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(make_mocks(rec), project="styx", stack="bench")
    t = time.perf_counter()
    for i in range(count):
        local.Command(f"r{i}", create=f"echo {i}", triggers=[str(i)])
    loop = asyncio.get_event_loop()

    async def drain():
        while pending := [x for x in asyncio.all_tasks() if x is not asyncio.current_task() and not x.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    loop.run_until_complete(drain())
    return time.perf_counter() - t


def styx(n: int) -> tuple[float, int]:
    t = time.perf_counter()
    rec = run_program(cluster(n))
    return time.perf_counter() - t, len(rec.resources)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="10,100,1000")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    styx(2)  # warm-up: imports and first-use caches, so they are not counted for the smallest size
    bare(10)
    print(f"{'nodes':>6} {'resources':>9} {'styx s':>8} {'bare s':>8} {'ratio':>6}")
    for n in (int(x) for x in args.nodes.split(",")):
        s_times, b_times, count = [], [], 0
        for _ in range(args.repeat):
            s, count = styx(n)
            s_times.append(s)
            b_times.append(bare(count))
        s_med, b_med = statistics.median(s_times), statistics.median(b_times)
        print(f"{n:>6} {count:>9} {s_med:>8.3f} {b_med:>8.3f} {s_med / b_med:>6.2f}", flush=True)


if __name__ == "__main__":
    import subprocess
    import tempfile

    KEY = Path(tempfile.mkdtemp()) / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(KEY)], check=True)
    main()
