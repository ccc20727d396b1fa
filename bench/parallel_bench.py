"""Benchmark (issue 3 §5.2): parallel efficiency of styx's `up` on the local backend.

N nodes (head + N-1 workers, `local.group_block: 32`), each with the gate (sandbox + wait-for-SSH) and
then a chain of three phases that each `sleep 5` (three `custom_scripts`; `setup.ray.enabled: false`,
docker and gpu `skip`, no packages/files/env, so nothing else runs). Phases on different nodes have
no dependency on each other, so ideally `up` takes as long for 16 nodes as for 1.

    efficiency (measured)    = wall(N=1) / wall(N)   the critical path measured on N=1: engine start,
                                                     network + base, sandbox, gate, 3 × 5 s, engine end
    efficiency (theoretical) = 15 s / wall(N)        only the sleeps count

(goal: >= 0.9 at 16). Pulumi's engine runs at most `parallel` resource operations at once; the CLI's
default is 4 × GOMAXPROCS (`pulumi up --help`: "default 8" on this 2-core machine), and the Automation
API's `Stack.up(parallel=...)` passes `--parallel`. A value of 2**31-1 (math.MaxInt32) is the engine's
"unbounded" (pkg/resource/deploy: Options.InfiniteParallelism). Both are measured: `default` (styx
passes nothing) and `unbounded`.

    .venv/bin/python bench/parallel_bench.py [--nodes 1,4,16] [--modes default,unbounded] [--quick] [--json OUT]

--quick: N = 1, 4, unbounded only. Every stack is destroyed and removed in a `finally`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MAXINT32, BenchStack, json_dump, loadavg, log, machine_line, rm_tree, table

SLEEP = 5
PHASES = 3


def cluster(name: str, n: int, subnet: str) -> dict:
    return {
        "name": name,
        "cloud": "local",
        "local": {"subnet": subnet, "group_block": 32},
        "head": {},
        "workers": [{"name": "worker", "count": n - 1}] if n > 1 else [],
        "setup": {
            "ray": {"enabled": False},
            "docker": {"mode": "skip"},
            "gpu": {"mode": "skip"},
            "custom_scripts": [{"name": f"s{i + 1}", "inline": f"sleep {SLEEP}\n"} for i in range(PHASES)],
        },
    }


def one(n: int, mode: str, subnet: str) -> dict:
    name = f"bench-par-{n}-{mode[0]}"
    tmp = Path(tempfile.mkdtemp(prefix=f"styx-{name}-"))
    parallel = MAXINT32 if mode == "unbounded" else None
    stack = None
    try:
        stack = BenchStack(name, cluster(name, n, subnet), tmp)
        load0 = loadavg()
        log(f"N={n} {mode}: up (load {load0})")
        run = stack.up(parallel=parallel)
        tl = run.timeline
        nodes = ["head"] + [f"worker-{i}" for i in range(n - 1)]
        gate_end = max(tl.end[f"{name}-{x}-wait_ssh"] for x in nodes)
        sandbox_end = max(tl.end[f"{name}-{x}-sandbox"] for x in nodes)
        chains = [tl.end[f"{name}-{x}-custom-s{PHASES}"] - tl.start[f"{name}-{x}-custom-s1"] for x in nodes]
        phase_durs = [tl.dur(f"{name}-{x}-custom-s{i + 1}") for x in nodes for i in range(PHASES)]
        first_start = min(tl.start.values())
        last_end = max(tl.end.values())
        res = {
            "n": n, "mode": mode, "parallel": parallel, "wall_s": run.seconds, "resources": sum(run.changes.values()),
            "changes": run.changes, "first_resource_s": first_start, "sandboxes_done_s": sandbox_end,
            "gates_done_s": gate_end, "last_phase_done_s": last_end, "after_last_s": run.seconds - last_end,
            "slowest_chain_s": max(chains), "mean_chain_s": sum(chains) / len(chains),
            "max_phase_s": max(phase_durs), "load_before": load0, "load_after": loadavg(),
        }
        log(f"N={n} {mode}: up {run.seconds:.1f}s; destroy")
        s = time.monotonic()
        stack.destroy(parallel=parallel)
        res["destroy_s"] = time.monotonic() - s
        return res
    finally:
        if stack is not None:
            stack.teardown()  # destroy again is a no-op when already destroyed; removes the stack
        rm_tree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", default="1,4,16")
    ap.add_argument("--modes", default="default,unbounded")
    ap.add_argument("--subnet", default="10.91.0.0/24")
    ap.add_argument("--quick", action="store_true", help="N = 1, 4; unbounded only")
    ap.add_argument("--json")
    args = ap.parse_args()
    nodes = [1, 4] if args.quick else [int(x) for x in args.nodes.split(",")]
    modes = ["unbounded"] if args.quick else args.modes.split(",")
    if max(nodes) - 1 > 32:
        sys.exit("at most 33 nodes (local.group_block: 32)")

    print(f"machine: {machine_line()}")
    results = []
    for mode in modes:
        for n in nodes:
            results.append(one(n, mode, args.subnet))

    rows = []
    for r in results:
        base = next((x for x in results if x["mode"] == r["mode"] and x["n"] == 1), None)
        crit = base["wall_s"] if base else None
        r["efficiency_measured"] = crit / r["wall_s"] if crit else None
        r["efficiency_theoretical"] = SLEEP * PHASES / r["wall_s"]
        rows.append([r["n"], r["mode"], r["resources"], r["wall_s"], r["sandboxes_done_s"], r["gates_done_s"],
                     r["slowest_chain_s"], r["last_phase_done_s"], crit, r["efficiency_measured"],
                     r["efficiency_theoretical"], r["destroy_s"], r["load_before"]])
    print()
    print(table(f"parallel efficiency: N nodes x (gate + {PHASES} x sleep {SLEEP}) on the local backend "
                "(times in s since the engine call began)",
                ["N", "parallel", "resources", "up wall", "sandboxes done", "gates done", "slowest 3-phase chain",
                 "last phase done", "crit path (N=1 wall)", "eff measured", f"eff vs {SLEEP * PHASES}s",
                 "destroy", "load before"],
                [[*r[:9], f"{r[9]:.2f}" if r[9] else "-", f"{r[10]:.2f}", *r[11:]] for r in rows]))
    print("\nparallel: default = nothing passed (CLI default 4 x GOMAXPROCS = 8 here); "
          "unbounded = Stack.up(parallel=2**31-1)")
    print(f"machine at the end: {machine_line()}")
    json_dump(args.json, {"machine": machine_line(), "results": results})


if __name__ == "__main__":
    main()
