"""Warm-query timing of the optimizer: N ``resolve`` calls in one process over the shared catalogs.

Not a test: numbers only. Wall and CPU time per call (CPU time is the steadier one on a loaded machine).
Uses whatever ``styx`` is importable (PYTHONPATH decides), so the same script times two trees::

    .venv/bin/python bench/optimizer_warm.py [--calls 1000] [--rounds 5] [--catalogs DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

FILES = {"aws": "vms_subset_p_family.csv", "gcp": "vms_subset_gpu.csv", "lambda": "vms.csv"}
REQUESTS = [
    {"accelerators": "A100:8"},
    {"accelerators": "A100:8", "spot": True},
    {"accelerators": "H100:8", "clouds": ["gcp"]},
    {"accelerators": "H100:8", "spot": True, "clouds": ["aws"]},
    {"accelerators": "A100:8", "cpus": "96+"},
    {"accelerators": "H100:8", "memory": "1800+"},
    {"accelerators": "A100:1", "spot": True, "cpus": "12"},
    {"accelerators": "B200:8", "clouds": ["gcp"]},
    {"accelerators": "L4:1"},
    {"accelerators": "P100:1"},
    {"any_of": ["H100:8", "A100:8"]},
    {"ordered": ["H200:8", "H100:8"]},
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--catalogs", default=os.environ.get("STYX_SKYPILOT_CATALOG", "/work/shared/catalog/skypilot"))
    a = ap.parse_args()
    from styx.model.catalog import load_files
    from styx.model.optimizer import resolve

    cat = load_files({c: Path(a.catalogs) / c / f for c, f in FILES.items()})
    for r in REQUESTS:  # warm the per-(accelerator, count, spot) indexes
        resolve(r, cat)
    per_call, cpu_per_call = [], []
    for _ in range(a.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(a.calls):
            resolve(REQUESTS[i % len(REQUESTS)], cat)
        per_call.append((time.perf_counter() - t0) / a.calls * 1e6)
        cpu_per_call.append((time.process_time() - c0) / a.calls * 1e6)
    import styx.model.optimizer as opt

    print(f"{opt.__file__}: {a.calls} warm resolve calls x {a.rounds} rounds: wall median "
          f"{statistics.median(per_call):.1f} us/call (best {min(per_call):.1f}), CPU median "
          f"{statistics.median(cpu_per_call):.1f} us/call (best {min(cpu_per_call):.1f})")


if __name__ == "__main__":
    main()
