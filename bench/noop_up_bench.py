"""Benchmark (issue 17): a no-op `styx launch` of an N-node local cluster (goal: <= 5 s at 16 nodes).

Launches N sandbox nodes through `styx.app.api.launch` (the path `styx launch` takes), then times
`--rounds` more launches with nothing changed, broken down:

    pulumi CLI calls     every call the session makes (stack select, config get/set, outputs, export,
                         and the `up` itself), by subcommand, count and seconds
    program evaluation   styx's inline program (components.program.build: config -> resources) inside `up`
    sandboxctl calls     host-side calls (`node-alive` per node: the gone-machine check before `up`)
    engine rest          `up` minus program evaluation: engine start, diff of every resource, plugins

The cluster is the default stack's (stacks/Pulumi.local.yaml: packages, venv, docker check, gpu auto,
file mounts, env, workdir, a custom script) with `--workers` workers; Ray is off unless `--ray`
(Ray on 16 sandboxes does not fit a 2-core machine). Every no-op launch must report 0 changes.

    .venv/bin/python bench/noop_up_bench.py [--workers 15] [--subnet 10.100.0.0/24] [--rounds 3] [--ray]
                                            [--name NAME] [--keep] [--home DIR] [--json OUT]

The cluster is destroyed and its stack removed in a `finally` (sandboxctl as the fallback).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import json_dump, loadavg, local_cluster, log, machine_line, rm_tree, sandbox_cleanup, table


class Probe:
    """Wall time of every pulumi CLI process, the program's evaluation and host subprocesses (per launch).

    Processes are timed at `subprocess.Popen` (start to the first finished wait), so the calls the
    Automation API makes outside styx's runner count too: `pulumi version` (each `PulumiCommand`),
    `stack select` / `stack ls` before a session exists, `config set --secret` on stdin."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.calls: dict[str, list[float]] = collections.defaultdict(list)

    def add(self, key: str, secs: float) -> None:
        self.calls[key].append(secs)

    def snapshot(self) -> dict[str, list[float]]:
        """This launch's calls (copies: the cleanup's `down` after the last round is not counted in it)."""
        return {k: list(v) for k, v in self.calls.items()}

    @staticmethod
    def key(argv: list[str]) -> str | None:
        """"pulumi stack output (secrets)", "sandboxctl node-alive", or None (not timed)."""
        if not argv:
            return None
        exe = os.path.basename(str(argv[0]))
        if exe == "pulumi":
            words = [a for a in argv[1:] if not a.startswith("-")][:2]
            if words and words[0] not in ("stack", "config", "plugin"):
                words = words[:1]
            if words[:1] == ["config"] and words[1:] != ["set"]:
                words = words[:1]
            return "pulumi " + " ".join(words) + (" (secrets)" if "--show-secrets" in argv else "")
        if exe == "bash" and len(argv) >= 3 and str(argv[1]).endswith("sandboxctl.sh"):
            return f"sandboxctl {argv[2]}"
        return None

    def install(self) -> None:
        from styx.components import program

        probe = self
        popen0 = subprocess.Popen

        class Timed(popen0):  # type: ignore[misc,valid-type]
            def __init__(self, args, *a, **kw):
                self._probe_key = probe.key(list(args) if isinstance(args, list | tuple) else [])
                self._probe_t0 = time.monotonic()
                super().__init__(args, *a, **kw)

            def wait(self, timeout=None):
                rc = super().wait(timeout)
                if self._probe_key and self._probe_t0 is not None:
                    probe.add(self._probe_key, time.monotonic() - self._probe_t0)
                    self._probe_t0 = None
                    if os.environ.get("STYX_BENCH_TRACE") and self._probe_key.startswith("pulumi"):
                        import traceback

                        log(self._probe_key + " from " + " <- ".join(
                            f"{f.name}:{f.lineno}" for f in traceback.extract_stack()[-12:-2][::-1]))
                return rc

        subprocess.Popen = Timed
        build0 = program.build

        def build(config, base_dir):
            s = time.monotonic()
            try:
                return build0(config, base_dir)
            finally:
                probe.add("program evaluation", time.monotonic() - s)

        program.build = build
        from styx.components.backends.local import LocalBackend

        gone0 = LocalBackend.gone_machines

        def gone(self, cluster, nodes):
            s = time.monotonic()
            try:
                return gone0(self, cluster, nodes)
            finally:
                probe.add("local backend: gone_machines (wall)", time.monotonic() - s)

        LocalBackend.gone_machines = gone


def cluster(name: str, workers: int, subnet: str, ray: bool) -> dict:
    c = local_cluster(name, subnet)
    c["workers"] = [{"name": "worker", "count": workers}] if workers else []
    c["setup"]["ray"]["enabled"] = ray
    c["setup"].pop("secret_env", None)
    c["local"]["group_block"] = max(workers, 2)
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=15)
    ap.add_argument("--subnet", default="10.100.0.0/24")
    ap.add_argument("--name", help="cluster and stack name (default bench-noop-N)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ray", action="store_true")
    ap.add_argument("--keep", action="store_true", help="leave the cluster up (its STYX_HOME is printed)")
    ap.add_argument("--home", help="a STYX_HOME kept by --keep: its cluster's first launch is a no-op too")
    ap.add_argument("--json")
    args = ap.parse_args()

    from styx.app import engine as eng

    os.environ.setdefault("PULUMI_HOME", str(eng.pulumi_home()))  # the toolchain's plugins
    home = Path(args.home) if args.home else Path(tempfile.mkdtemp(prefix="styx-bench-noop-"))
    os.environ["STYX_HOME"] = str(home)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    name = args.name or f"bench-noop-{args.workers + 1}"  # its subnet: --subnet (the benchmarks' own: 10.100-103.x)
    c = cluster(name, args.workers, args.subnet, args.ray)
    from styx.app import api

    probe = Probe()
    probe.install()
    print(f"machine: {machine_line()}")
    results = []
    try:
        load0 = loadavg()
        log(f"{name}: first launch (load {load0})")
        s = time.monotonic()
        first = api.launch(c, stack=name, on_info=lambda m: log("  styx: " + m[-600:]))
        results.append({"round": 0, "wall_s": time.monotonic() - s, "changes": first.changes, "load_before": load0,
                        "calls": probe.snapshot()})
        log(f"{name}: first launch {results[-1]['wall_s']:.1f}s {first.changes}")
        for r in range(args.rounds):
            probe.reset()
            load0 = loadavg()
            s = time.monotonic()
            res = api.launch(c, stack=name, on_info=lambda m: log("  styx: " + m[-600:]))
            wall = time.monotonic() - s
            changed = {k: v for k, v in res.changes.items() if k != "same"}
            results.append({"round": r + 1, "wall_s": wall, "changes": res.changes, "load_before": load0,
                            "load_after": loadavg(), "calls": probe.snapshot()})
            log(f"{name}: no-op launch {r + 1}: {wall:.2f}s changes {res.changes} (load {load0})")
            if changed:
                log(f"WARNING: a no-op launch changed {changed}")
    finally:
        if args.keep:
            print(f"kept: STYX_HOME={home} stack {name}")
        else:
            try:
                api.down(name, on_info=lambda m: log("  styx: " + m[-600:]))
            except Exception as e:
                log(f"down failed ({str(e)[-300:]}); sandboxctl cleanup")
                sandbox_cleanup(name, c)
            rm_tree(home)

    noop = [r for r in results if r["round"] > 0]
    keys = sorted({k for r in noop for k in r["calls"]}, key=lambda k: -sum(sum(r["calls"].get(k, [])) for r in noop))
    rows = []
    for k in keys:
        per = [sum(r["calls"].get(k, [])) for r in noop]
        rows.append([k, statistics.median(len(r["calls"].get(k, [])) for r in noop), statistics.median(per)])
    up = [sum(r["calls"].get("pulumi up", [])) - sum(r["calls"].get("program evaluation", [])) for r in noop]
    rows.append(["  of which `pulumi up` minus program evaluation", "", statistics.median(up) if up else None])
    walls = [r["wall_s"] for r in noop]
    print()
    print(table(f"no-op launch of {args.workers + 1} nodes ({'Ray on' if args.ray else 'Ray off'}), median of "
                f"{len(noop)}: wall {statistics.median(walls):.2f} s (per round: "
                f"{' / '.join(f'{w:.2f}' for w in walls)})", ["what", "calls", "seconds"], rows))
    print("changes: " + "; ".join(f"round {r['round']}: {r['changes']}" for r in results))
    print("load before each: " + ", ".join(f"{r['round']}: {r['load_before']}" for r in results))
    print(f"machine at the end: {machine_line()}")
    json_dump(args.json, {"machine": machine_line(), "args": vars(args), "cluster": c, "results": results})


if __name__ == "__main__":
    main()
