"""Benchmark (issue 3 §5.1): time to a ready 3-node Ray cluster with styx on the local backend.

The cluster is the default stack (stacks/Pulumi.local.yaml: jq, venv + ray 2.60.0 from PyPI, docker
check, gpu auto, file sync, env vars, workdir, a custom script) renamed `bench-local` on 10.90.0.0/24.
One round measures, in order, on one stack:

* cold    `stack.up()` of a fresh cluster (new sandboxes; every node pip-installs Ray from PyPI), then
          polling the head until 3 Ray nodes are alive (the dashboard's node list, then one
          `ray.nodes()` to confirm; see _common.wait_alive);
* no-op   a second `up` with nothing changed (the change summary is printed: all `same`);
* destroy `stack.destroy()`;
* warm    the same stack brought up again: the sandbox base image is cached on the host (it was
          already for "cold" too, unless --cold-base), but each node is a fresh overlay with no pip
          cache, so pip downloads every wheel again (the table counts the files each node's pip
          downloaded, from PyPI + from the mirror): warm differs from cold only by chance/load;
* warm + host pip cache (--pip-cache): as warm, with a host-side wheel mirror (_common.WheelMirror,
          served on the bridge gateway) that the nodes' venv pip uses through a `pip-mirror` custom
          script (3 more resources): no PyPI traffic for Ray, only the local copy + install;
* warm, ray in python_env (--ray-in-python-env): as warm with `setup.python.pip_packages:
          [ray[default]==2.60.0]`, so every node installs Ray in its python_env phase at once and the
          ray phase only starts it (normally a worker's ray phase, pip install included, waits for
          the head's ray phase).

Also printed: CPU seconds used inside the nodes (until 3 alive) and on the host (engine + program),
which other load on the machine disturbs much less than wall time, and per-phase seconds.

--cold-base builds the sandbox base image from nothing too (a fresh `local.cache_dir` in a temp dir,
deleted afterwards: debootstrap downloads every .deb), so "cold" then means a cold host.

    .venv/bin/python bench/local_cluster_bench.py [--rounds 2] [--pip-cache] [--ray-in-python-env]
                                                  [--cold-base] [--quick] [--json OUT]

--quick: cold, no-op and destroy only. Everything created is destroyed in a `finally`.
--logs DIR: after each measured up, every node's phase logs (/var/log/styx/*.log, read from its root on
this host) are copied to DIR/<round>-<run>/<node>/, and a step profile is printed: each logged command of
system_packages and python_env with its wall and CPU seconds (the `=== done in` lines of lib.sh's
styx_try), and the time between logged commands (the phase's own shell and Python work).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RAY_VERSION,
    BenchStack,
    Run,
    WheelMirror,
    json_dump,
    loadavg,
    local_cluster,
    log,
    machine_line,
    node_cpu_seconds,
    pip_downloads,
    rm_tree,
    table,
    wait_alive,
)

PHASES = ["sandbox", "wait_ssh", "system_packages", "python_env", "docker", "gpu", "file_sync", "env_vars",
          "workdir", "custom-pip-mirror", "custom-hello", "ray"]


def phase_rows(name: str, runs: dict[str, Run]) -> list[list]:
    """Per-phase seconds: head, and the mean of the workers, for each measured up."""
    rows = []
    for ph in PHASES:
        row = [ph]
        seen = False
        for _label, run in runs.items():
            tl = run.timeline
            head = tl.dur(f"{name}-head-{ph}")
            ws = [d for n in tl.start if n.startswith(f"{name}-worker-") and n.endswith(f"-{ph}")
                  and (d := tl.dur(n)) is not None]
            seen |= head is not None or bool(ws)
            row += [head, statistics.mean(ws) if ws else None]
        if seen:
            rows.append(row)
    return rows


def timeline_dict(run: Run) -> dict:
    tl = run.timeline
    return {n: {"op": tl.op.get(n), "start": round(tl.start[n], 2), "end": round(tl.end.get(n, -1), 2)}
            for n in sorted(tl.start, key=tl.start.get)}


STEP_RE = re.compile(r"^=== \[(?P<ts>[0-9T:-]+)Z\] \$ (?P<cmd>.*)$")
DONE_RE = re.compile(r"^=== done in (?P<wall>[0-9.]+) s, (?P<cpu>[0-9.]+) CPU s")


def copy_node_logs(cluster: dict, dest: Path) -> list[Path]:
    """Each node's /var/log/styx, from its overlay's upper dir on this host, to dest/<node>/."""
    state = Path(cluster.get("local", {}).get("state_dir") or "/var/lib/styx/sandbox") / cluster["name"]
    out = []
    for node in sorted(p for p in state.iterdir() if (p / "upper").is_dir()) if state.is_dir() else []:
        src = node / "upper" / "var" / "log" / "styx"
        if src.is_dir():
            shutil.copytree(src, dest / node.name, dirs_exist_ok=True)
            out.append(dest / node.name)
    return out


def log_steps(path: Path) -> list[tuple[str, float, float]]:
    """(command, wall s, CPU s) of every logged command in one phase log (commands cut to 90 chars)."""
    steps, cmd = [], None
    for line in path.read_text(errors="replace").splitlines():
        if m := STEP_RE.match(line):
            cmd = m["cmd"]
        elif (m := DONE_RE.match(line)) and cmd is not None:
            steps.append((cmd[:90], float(m["wall"]), float(m["cpu"])))
            cmd = None
    return steps


def print_steps(node_dirs: list[Path], phases=("system_packages", "python_env")) -> None:
    for d in node_dirs:
        for ph in phases:
            f = d / f"{ph}.log"
            if not f.exists():
                continue
            steps = log_steps(f)
            rows = [[c, w, cpu] for c, w, cpu in steps]
            rows.append(["(sum of logged commands)", sum(w for _, w, _ in steps), sum(c for _, _, c in steps)])
            print()
            print(table(f"{d.name} {ph}: logged commands", ["command", "wall s", "CPU s"], rows))


def measure_up(stack: BenchStack, label: str, short: str, results: list, runs: dict, *, expect: int = 3,
               logs: Path | None = None) -> None:
    log(f"{label}: up (load {loadavg()})")
    load0 = loadavg()
    run = stack.up()
    out = stack.outputs()
    ready = wait_alive(stack.access(), out["head_ip"], expect, run.timeline.t0,
                       on_ready=lambda: node_cpu_seconds(stack.cluster["name"]))
    downloads = [pip_downloads(stack.access(), n["private_ip"]) for n in out["nodes"]]
    log(f"{label}: up {run.seconds:.1f}s, {expect} alive at {ready.seconds}s, changes {run.changes}, "
        f"CPU s in nodes {ready.at_ready}, on host {run.host_cpu_s:.1f}")
    runs[short] = run
    if logs is not None:
        print_steps(copy_node_logs(stack.cluster, logs / short))
    results.append({"what": label, "up_s": run.seconds, "ready_s": ready.seconds, "probe_s": ready.last_probe_s,
                    "node_cpu_s": ready.at_ready, "host_cpu_s": run.host_cpu_s, "changes": run.changes,
                    "pip_downloads_per_node": downloads, "load_before": load0,
                    "load_after": loadavg(), "timeline": timeline_dict(run)})


def one_round(args, cluster: dict, tmp: Path, mirror: WheelMirror | None, results: list, runs: dict) -> None:
    stack = None
    try:
        stack = BenchStack(args.name, cluster, tmp)
        logs = Path(args.logs) / f"round{args.round}" if args.logs else None
        measure_up(stack, "cold" + (" (base built)" if args.cold_base else " (base cached)"), "cold", results, runs,
                   logs=logs)

        log("no-op up")
        noop = stack.up()
        results.append({"what": "no-op re-up", "up_s": noop.seconds, "changes": noop.changes,
                        "changed_resources": noop.timeline.changed(), "load_after": loadavg()})

        log("destroy")
        d = stack.destroy()
        results.append({"what": "destroy", "up_s": d.seconds, "changes": d.changes, "load_after": loadavg()})
        if args.quick:
            return
        measure_up(stack, "warm (base cached, wheels from PyPI)", "warm", results, runs, logs=logs)
        if mirror is not None:
            log("destroy")
            stack.destroy()
            c = copy.deepcopy(cluster)
            c["setup"]["custom_scripts"] = [mirror.styx_script(args.subnet), *c["setup"]["custom_scripts"]]
            stack.reconfigure(c)
            measure_up(stack, "warm + host pip cache", "warm+cache", results, runs)
        if args.ray_in_python_env:
            log("destroy")
            stack.destroy()
            c = copy.deepcopy(cluster)
            c["setup"]["python"]["pip_packages"] = [f"ray[default]=={RAY_VERSION}"]
            stack.reconfigure(c)
            measure_up(stack, "warm, ray in python_env (PyPI)", "warm+pyenv", results, runs)
    finally:
        if stack is not None:
            log("teardown")
            stack.teardown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", default="bench-local")
    ap.add_argument("--subnet", default="10.90.0.0/24")
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole sequence; medians are printed")
    ap.add_argument("--pip-cache", action="store_true", help="also measure warm with a host-side wheel mirror")
    ap.add_argument("--cold-base", action="store_true", help="build the sandbox base image from nothing for cold")
    ap.add_argument("--ray-in-python-env", action="store_true",
                    help="also measure warm with ray[default] in setup.python.pip_packages (installed by the "
                         "python_env phase on every node at once, before the head's ray phase)")
    ap.add_argument("--quick", action="store_true", help="cold, no-op and destroy only")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--setup", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setup key of the cluster (dotted below setup, e.g. "
                         "python.wheel_cache_fetch=links; a value is JSON, else a string); repeatable")
    ap.add_argument("--logs", help="copy every node's phase logs here after each measured up and print the "
                                   "logged commands of system_packages and python_env with their wall and CPU s")
    args = ap.parse_args()

    print(f"machine: {machine_line()}")
    mirror = WheelMirror() if args.pip_cache and not args.quick else None
    results: list[dict] = []
    runs_by_round: list[dict[str, Run]] = []
    try:
        if mirror is not None:
            mirror.start()
            log(f"wheel mirror: {mirror.files} wheels, {mirror.mib:.0f} MiB in {mirror.dir} "
                f"(filled in {mirror.fill_seconds:.1f}s), port {mirror.port}")
        for i in range(args.rounds):
            tmp = Path(tempfile.mkdtemp(prefix="styx-bench-local-"))
            cluster = local_cluster(args.name, args.subnet)
            for kv in args.setup:
                key, _, value = kv.partition("=")
                *path, last = key.split(".")
                d = cluster["setup"]
                for k in path:
                    d = d.setdefault(k, {})
                try:  # JSON (numbers, true/false, lists); anything else is a string (`off` stays "off")
                    d[last] = json.loads(value)
                except ValueError:
                    d[last] = value
            if args.cold_base:
                cluster["local"]["cache_dir"] = str(tmp / "cache")
            runs: dict[str, Run] = {}
            runs_by_round.append(runs)
            before = len(results)
            args.round = i + 1
            try:
                one_round(args, cluster, tmp, mirror, results, runs)
            finally:
                rm_tree(tmp)  # (a --cold-base cache lives in tmp: removed after the teardown)
                for r in results[before:]:
                    r["round"] = i + 1
    finally:
        if mirror is not None:
            mirror.stop()

    whats = list(dict.fromkeys(r["what"] for r in results))
    rows = []
    for w in whats:
        rs = [r for r in results if r["what"] == w]
        ups = [r["up_s"] for r in rs]
        ready = [r["ready_s"] for r in rs if r.get("ready_s") is not None]
        ch = ", ".join(f"{k}={v}" for k, v in sorted(rs[-1].get("changes", {}).items()))
        ncpu = [r["node_cpu_s"] for r in rs if r.get("node_cpu_s") is not None]
        hcpu = [r["host_cpu_s"] for r in rs if r.get("host_cpu_s") is not None]
        rows.append([w, statistics.median(ups), statistics.median(ready) if ready else None,
                     " / ".join(f"{x:.1f}" for x in ups) if len(ups) > 1 else "",
                     " / ".join(f"{x:.1f}" for x in ready) if len(ready) > 1 else "",
                     statistics.median(ncpu) if ncpu else None, statistics.median(hcpu) if hcpu else None, ch,
                     " ".join(map(str, rs[-1]["pip_downloads_per_node"])) if "pip_downloads_per_node" in rs[-1] else "",
                     rs[-1].get("load_before", ""), rs[-1]["load_after"]])
    print()
    print(table(f"styx local 3-node cluster ({args.name}, {args.subnet}), median of {args.rounds} round(s)",
                ["run", "engine call s", "3 alive s", "engine call per round", "3 alive per round",
                 "CPU s in nodes", "CPU s on host", "resource changes", "pip wheels PyPI+mirror per node",
                 "load before (last)", "load after (last)"],
                rows))
    if runs_by_round and runs_by_round[-1]:
        runs = runs_by_round[-1]
        header = ["phase"]
        for label in runs:
            header += [f"{label} head s", f"{label} worker avg s"]
        print()
        print(table("per-phase seconds, last round (measured from engine events; phases on different nodes overlap)",
                    header, phase_rows(args.name, runs)))
        print("\ncritical path: python_env (Ray installed) runs alongside system_packages when the user has no pip "
              "packages; a worker's ray phase (start + join) depends on the head's ray phase: 3 alive ~ head chain "
              "+ a worker's ray phase.")
    if mirror is not None:
        print(f"\npip cache: {mirror.files} wheels, {mirror.mib:.0f} MiB at {mirror.dir}")
    print(f"\nmachine at the end: {machine_line()}")
    json_dump(args.json, {"machine": machine_line(), "args": vars(args), "results": results})


if __name__ == "__main__":
    main()
