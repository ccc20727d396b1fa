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
API's `Stack.up(parallel=...)` passes `--parallel`. 2**31-1 (math.MaxInt32) is the engine's "unbounded"
(pkg/resource/deploy: Options.InfiniteParallelism) but fails with an inline Python program ("Value out
of range: 8589934588": the Automation API's language server multiplies it by 4 into an int32), so
`unbounded` here is parallel=256, more than the resources of any run (N=16: 101, N=32: 197). Both are measured:
`default` (styx passes nothing) and `unbounded`.

    .venv/bin/python bench/parallel_bench.py [--nodes 1,4,16,32] [--modes default,unbounded] [--repeat 3]
                                             [--subnet CIDR] [--prefix NAME] [--quick] [--json OUT]

--quick: N = 1, 4, unbounded only. Every stack is destroyed and removed in a `finally`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import WIDE_PARALLEL, BenchStack, json_dump, loadavg, log, machine_line, rm_tree, table

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


def one(n: int, mode: str, subnet: str, prefix: str = "bench-par") -> dict:
    name = f"{prefix}-{n}-{mode[0]}"
    tmp = Path(tempfile.mkdtemp(prefix=f"styx-{name}-"))
    parallel = WIDE_PARALLEL if mode == "unbounded" else None
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
        sb = [(tl.start[f"{name}-{x}-sandbox"], tl.dur(f"{name}-{x}-sandbox")) for x in nodes]
        gates = [tl.dur(f"{name}-{x}-wait_ssh") for x in nodes]
        first_start = min(tl.start.values())
        last_end = max(tl.end.values())
        res = {
            "n": n, "mode": mode, "parallel": parallel, "wall_s": run.seconds, "resources": sum(run.changes.values()),
            "changes": run.changes, "first_resource_s": first_start, "sandboxes_done_s": sandbox_end,
            "gates_done_s": gate_end, "last_phase_done_s": last_end, "after_last_s": run.seconds - last_end,
            "slowest_chain_s": max(chains), "mean_chain_s": sum(chains) / len(chains),
            "max_phase_s": max(phase_durs), "mean_phase_s": sum(phase_durs) / len(phase_durs),
            "sandbox_last_start_s": max(a for a, _ in sb), "sandbox_mean_s": sum(d for _, d in sb) / len(sb),
            "sandbox_max_s": max(d for _, d in sb), "gate_max_s": max(gates),
            "load_before": load0, "load_after": loadavg(),
            "timeline": {x: {k: (round(tl.start[f"{name}-{x}-{k}"], 2), round(tl.end[f"{name}-{x}-{k}"], 2))
                             for k in ["sandbox", "wait_ssh", *[f"custom-s{i + 1}" for i in range(PHASES)]]}
                         for x in nodes},
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
    ap.add_argument("--prefix", default="bench-par", help="cluster/stack names: PREFIX-N-MODE")
    ap.add_argument("--repeat", type=int, default=1, help="passes over all (mode, N); medians are printed")
    ap.add_argument("--quick", action="store_true", help="N = 1, 4; unbounded only")
    ap.add_argument("--json")
    args = ap.parse_args()
    nodes = [1, 4] if args.quick else [int(x) for x in args.nodes.split(",")]
    modes = ["unbounded"] if args.quick else args.modes.split(",")
    if max(nodes) - 1 > 32:
        sys.exit("at most 33 nodes (local.group_block: 32)")

    print(f"machine: {machine_line()}")
    results = []
    for rep in range(args.repeat):
        for mode in modes:
            for n in nodes:
                r = one(n, mode, args.subnet, args.prefix)
                r["pass"] = rep + 1
                results.append(r)

    def med(mode: str, n: int, key: str) -> float:
        return statistics.median(r[key] for r in results if r["mode"] == mode and r["n"] == n)

    rows, rows2 = [], []
    for mode in modes:
        crit = med(mode, 1, "wall_s") if 1 in nodes else None
        for n in nodes:
            wall = med(mode, n, "wall_s")
            walls = [r["wall_s"] for r in results if r["mode"] == mode and r["n"] == n]
            eff = crit / wall if crit else None
            rows.append([n, mode, next(r["resources"] for r in results if r["n"] == n), wall,
                         " / ".join(f"{w:.1f}" for w in walls) if len(walls) > 1 else "",
                         med(mode, n, "sandboxes_done_s"), med(mode, n, "gates_done_s"),
                         med(mode, n, "slowest_chain_s"), med(mode, n, "last_phase_done_s"), crit,
                         f"{eff:.2f}" if eff else "-", f"{SLEEP * PHASES / wall:.2f}", med(mode, n, "destroy_s")])
            rows2.append([n, mode] + [med(mode, n, k) for k in ("sandbox_last_start_s", "sandbox_mean_s",
                                                                   "sandbox_max_s", "gate_max_s", "mean_phase_s",
                                                                   "max_phase_s", "after_last_s")])
    print()
    print(table(f"parallel efficiency: N nodes x (gate + {PHASES} x sleep {SLEEP}) on the local backend, "
                f"median of {args.repeat} pass(es) (times in s since the engine call began)",
                ["N", "parallel", "resources", "up wall", "wall per pass", "sandboxes done", "gates done",
                 "slowest 3-phase chain", "last phase done", "crit path (N=1 wall)", "eff measured",
                 f"eff vs {SLEEP * PHASES}s", "destroy"], rows))
    print()
    print(table("where the time goes (s, medians)",
                ["N", "parallel", "last sandbox started", "sandbox mean", "sandbox max", "gate max",
                 "sleep-5 phase mean", "sleep-5 phase max", "engine after last phase"], rows2))
    print("\nparallel: default = nothing passed (CLI default 4 x GOMAXPROCS = 8 here); "
          f"unbounded = Stack.up(parallel={WIDE_PARALLEL}) (2**31-1 overflows the Python SDK, see the docstring)")
    print("load before each run: " + ", ".join(f"N={r['n']} {r['mode'][0]}: {r['load_before'].split()[0]}"
                                               for r in results))
    print(f"machine at the end: {machine_line()}")
    json_dump(args.json, {"machine": machine_line(), "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
