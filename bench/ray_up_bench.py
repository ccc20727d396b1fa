"""Benchmark (issue 3 §5.3): the same 3-node cluster brought up by Ray's own launcher (`ray up`) and by
styx, in one run, on this machine's sandbox hosts.

ray up side: three sandbox hosts made by hand with sandboxctl (base, net-up, node-up x3 with a
generated ed25519 login key and, as styx does, a host key per node made here and pinned by this
benchmark's own ssh; Ray's launcher dials with its own options, which pin nothing) on 10.92.0.0/24,
cluster `bench-rayup`; Ray's cluster launcher from a separate
host venv (RAY_VENV, default /tmp/rayvenv, `pip install "ray[default]==2.60.0"`) with
`provider: {type: local, head_ip, worker_ips}`, `auth: {ssh_user: root, ssh_private_key}`, and the
same work as styx's phases as setup commands (apt-get install jq; python3 -m venv /opt/styx/venv;
pip install ray[default]==2.60.0; docker check; gpu check; file_mounts for examples/local-files;
/etc/styx/env.sh; workdir; the custom script), then `ray stop; ray start … --disable-usage-stats`.
The launcher runs with RAY_UP_enable_autoscaler_v2=0 (with v2 and the `local` provider Ray 2.60 never
got past one worker here). `ray up` sets up the head and returns; the head's autoscaler then sets up
and starts the workers, so "3 alive" comes later.

Ray's launcher copies file mounts (and the bootstrap config/key to the head) with rsync, which
Debian's minbase image lacks (cloud images ship it): rsync is installed on the hand-made hosts before
the clock starts (then the apt lists are removed again, so `ray up` still pays `apt-get update` like
styx does); the host needs rsync too (`apt-get install rsync`). Host creation and the rsync install
are timed separately and not counted in `ray up`.

styx side: the default stack's cluster (stacks/Pulumi.local.yaml) as `bench-styx3` on 10.93.0.0/24,
fresh sandboxes made by the stack itself (counted in its time).

Printed: time to 3 alive nodes for both (polled on the head: the dashboard's node list, confirmed by
`ray.nodes()`) and the ratio styx / ray up (also against ray up + the time to make its hosts), CPU
seconds inside the nodes and on the host, then a re-run with no change for both: styx no-op `up`;
`ray up` again (restarts Ray on the head; the workers rejoin through the autoscaler);
`ray up --no-restart`. With --rounds N the order (ray up first / styx first) alternates each round
and medians are printed.

    .venv/bin/python bench/ray_up_bench.py [--rounds 3] [--pip-cache] [--styx-first] [--quick] [--json OUT]

--quick: skip the re-runs. --pip-cache: both sides install Ray from a host-side wheel mirror.
--installer uv|pip and --wheel-cache auto|off set styx's setup.python (defaults: uv, auto);
--apt-cache auto|off sets styx's setup.apt_cache (default auto: this machine fetches the apt lists once).
--styx-wheels cold (default) empties styx's wheel cache (and the apt lists, and the ready environment of
setup.python.env_cache) for the cluster first, so its one download (and the capture) is in the time; warm
fills it before the clock (as after an earlier cluster with the same packages): the wheels, the apt lists and
the ready environment (when it is not there yet: a 1-node cluster `<styx-name>-prep` on the styx subnet,
launched and destroyed before the clock, captures it). --env-cache auto|off sets setup.python.env_cache.
Printed too: styx's per-phase seconds (python_env, ray; head and the slowest worker).
Use your own names and subnets when others run sandboxes, e.g. --rayup-name fxrayup --styx-name fxstyx3
--styx-subnet 10.92.1.0/24.
Everything created is torn down in a `finally`.
"""

from __future__ import annotations

import argparse
import copy
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    RAY_VERSION,
    ROOT,
    VENV,
    BenchStack,
    HandMadeHosts,
    HostCpu,
    WheelMirror,
    fmt,
    json_dump,
    loadavg,
    local_cluster,
    log,
    machine_line,
    node_cpu_seconds,
    rm_tree,
    table,
    wait_alive,
)

RAY_VENV = Path(os.environ.get("RAY_VENV", "/tmp/rayvenv"))
RSYNC_PREP = ("export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && "
              "apt-get install -y -q --no-install-recommends rsync >/dev/null && apt-get clean && "
              "rm -rf /var/lib/apt/lists/*")


def ray_config(name: str, hosts: HandMadeHosts, tmp: Path, pip_args: str) -> Path:
    c = local_cluster("x", "10.0.0.0/24")["setup"]  # the same values styx's phases get
    env_lines = " ".join(shlex.quote(f"export {k}={shlex.quote(v)}") for k, v in sorted(c["env"].items()))
    custom = " && ".join(cs["inline"].strip() for cs in c["custom_scripts"])
    setup = [
        # system_packages (apt lists are stale/missing on a fresh node, as for styx)
        "command -v jq >/dev/null || { export DEBIAN_FRONTEND=noninteractive; apt-get update -q && "
        f"apt-get install -y -q --no-install-recommends {' '.join(c['packages'])}; }}",
        # python_env
        f"test -x {VENV}/bin/python || python3 -m venv {VENV}",
        # ray install (pinned, default extras), as styx's ray phase does
        f"{VENV}/bin/pip install -q --no-input --disable-pip-version-check {pip_args} 'ray[default]=={RAY_VERSION}'",
        # docker: check; gpu: auto (report, never fail)
        "command -v docker >/dev/null && docker info >/dev/null 2>&1 && echo docker ok || echo 'docker: not installed'",
        "ls /dev/nvidia[0-9]* >/dev/null 2>&1 && nvidia-smi -L || echo 'gpu: none'",
        # env_vars, workdir, custom script
        f"mkdir -p /etc/styx && printf '%s\\n' {env_lines} > /etc/styx/env.sh",
        f"mkdir -p {c['workdir']}",
        custom,
    ]
    start_env = "set -a; . /etc/styx/env.sh; set +a; export RAY_USAGE_STATS_ENABLED=0; ulimit -n 65536 || true;"
    cfg = {
        "cluster_name": name,
        "provider": {"type": "local", "head_ip": hosts.head, "worker_ips": hosts.workers},
        "auth": {"ssh_user": "root", "ssh_private_key": str(hosts.key)},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 5,
        "file_mounts": {m["remote"]: str(ROOT / m["local"]) for m in c["file_mounts"]},
        "initialization_commands": [],
        "setup_commands": setup,
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [
            f"{VENV}/bin/ray stop",
            f"{start_env} {VENV}/bin/ray start --head --port=6379 --dashboard-host=127.0.0.1 "
            "--autoscaling-config=~/ray_bootstrap_config.yaml --disable-usage-stats",
        ],
        "worker_start_ray_commands": [
            f"{VENV}/bin/ray stop",
            f"{start_env} {VENV}/bin/ray start --address=$RAY_HEAD_IP:6379 --disable-usage-stats",
        ],
    }
    p = tmp / "ray-cluster.yaml"
    p.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return p


def ray_cli(args: list[str], log_path: Path, timeout: int = 1200) -> tuple[float, int]:
    env = {**os.environ, "RAY_UP_enable_autoscaler_v2": "0", "RAY_USAGE_STATS_ENABLED": "0"}
    s = time.monotonic()
    with open(log_path, "a") as f:
        f.write(f"\n===== ray {' '.join(args)}\n")
        f.flush()
        try:
            r = subprocess.run([str(RAY_VENV / "bin" / "ray"), *args], stdout=f, stderr=subprocess.STDOUT, env=env,
                               timeout=timeout, check=False)
            rc = r.returncode
        except subprocess.TimeoutExpired:
            rc = 124
    return time.monotonic() - s, rc


def clear_launcher_state(name: str) -> None:
    for p in Path("/tmp/ray").glob(f"cluster-{name}.*"):
        p.unlink(missing_ok=True)


def rayup_side(args, tmp: Path, mirror: WheelMirror | None, out: dict, hosts: HandMadeHosts) -> None:
    out["hosts"] = hosts.up()
    log(f"ray up hosts made: {out['hosts']}")
    s = time.monotonic()
    procs = [subprocess.Popen([*hosts.access.argv(ip), RSYNC_PREP], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for _, ip in hosts.nodes]
    for p in procs:
        _, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"rsync install failed: {err[-1500:]}")
    out["rsync_prep_s"] = time.monotonic() - s
    cfg = ray_config(args.rayup_name, hosts, tmp, mirror.pip_args(args.rayup_subnet) if mirror else "")
    logf = tmp / "ray-up.log"
    out["log"] = str(logf)

    name = args.rayup_name
    ncpu = lambda: node_cpu_seconds(name)  # noqa: E731

    def timed_up(label: str, extra: list[str], timeout: float) -> dict:
        log(f"{label} (load {loadavg()})")
        load0, cpu0 = loadavg(), ncpu()
        host = HostCpu()
        t0 = time.monotonic()
        secs, rc = ray_cli(["up", "-y", "--no-config-cache", *extra, str(cfg)], logf)
        host_cpu = host.stop()
        if rc != 0:
            raise RuntimeError(f"{label} failed ({rc}); log: {logf}:\n{logf.read_text()[-3000:]}")
        ready = wait_alive(hosts.access, hosts.head, 3, t0, timeout=timeout, on_ready=ncpu)
        node_cpu = ready.at_ready - cpu0 if ready.at_ready is not None and cpu0 is not None else None
        log(f"{label}: returned {secs:.1f}s, 3 alive at {fmt(ready.seconds)}s, CPU s in nodes {fmt(node_cpu)}, "
            f"launcher {host_cpu:.1f}")
        return {"returned_s": secs, "ready_s": ready.seconds, "probe_s": ready.last_probe_s, "node_cpu_s": node_cpu,
                "host_cpu_s": host_cpu, "load_before": load0, "load_after": loadavg()}

    out["cold"] = timed_up("ray up (cold)", [], 900)
    if args.quick:
        return
    out["rerun"] = timed_up("ray up again (no change)", [], 600)
    out["norestart"] = timed_up("ray up --no-restart (no change)", ["--no-restart"], 600)


def prepare_wheel_cache(args, c: dict) -> str:
    """--styx-wheels cold: the cluster's wheel cache folder removed (its download counted in the `up`);
    warm: filled beforehand (not counted), as after an earlier cluster with the same packages."""
    from styx.components.backends.local import WHEEL_CACHE, _nodes_python, wheel_cache_key
    from styx.components.phases import wheel_cache_specs
    from styx.model.config import parse_cluster

    cfg = parse_cluster(c)
    if cfg.setup.python.wheel_cache != "auto":
        return "off"
    root = Path(cfg.local.cache_dir) / "wheels"
    key = wheel_cache_key(cfg)
    if args.styx_wheels == "cold":
        rm_tree(root / key)
        return f"cold (removed {key})"
    pyver, specs = _nodes_python(cfg), wheel_cache_specs(cfg)
    t = time.monotonic()
    subprocess.run([sys.executable, str(WHEEL_CACHE), "fill", str(root), key, pyver], check=True,
                   env={**os.environ, "STYX_WC_SPECS": "\n".join(specs)}, capture_output=True)
    return f"warm (filled before the clock in {time.monotonic() - t:.1f}s)"


def prepare_apt_cache(args, c: dict) -> str:
    """The apt lists this machine fetches for the nodes (setup.apt_cache auto), like the wheel cache:
    cold (--styx-wheels cold) removed, so the host's apt-get update is in the `up`; warm: fetched before
    the clock (`sandboxctl apt-lists`), as for a second cluster within 10 minutes of the first."""
    from styx.components.backends.local import SANDBOXCTL
    from styx.model.config import parse_cluster

    cfg = parse_cluster(c)
    if cfg.setup.apt_cache != "auto" or not cfg.setup.packages:
        return "off"
    root = Path(cfg.local.cache_dir) / "apt"
    if args.styx_wheels == "cold":
        rm_tree(root)
        return f"cold (removed {root})"
    t = time.monotonic()
    subprocess.run(["bash", str(SANDBOXCTL), "apt-lists"], check=True, capture_output=True,
                   env={**os.environ, "STYX_CACHE_DIR": cfg.local.cache_dir})
    return f"warm (fetched before the clock in {time.monotonic() - t:.1f}s)"


def prepare_ready_env(args, c: dict, tmp: Path) -> str:
    """The ready environment (setup.python.env_cache auto), like the wheel cache: cold removed (the capture
    is in the `up`, and no node finds one); warm: there before the clock, made when missing by a 1-node
    cluster with the same python setup (launched and destroyed, not counted), as a first cluster would."""
    from styx.components.backends.local import ready_env_applies, ready_env_key
    from styx.model.config import parse_cluster

    cfg = parse_cluster(c)
    if not ready_env_applies(cfg):
        return "off"
    key = ready_env_key(cfg)
    tar = Path(cfg.local.cache_dir) / "wheels" / "envs" / f"{key}.tar"
    if args.styx_wheels == "cold":
        for f in (tar, tar.with_name(tar.name + ".sha256")):
            f.unlink(missing_ok=True)
        return f"cold (removed {key})"
    if tar.is_file() and tar.with_name(tar.name + ".sha256").is_file():
        return f"warm ({key} there)"
    prep = copy.deepcopy(c)
    prep["name"] = f"{args.styx_name}-prep"
    prep["workers"] = []
    t = time.monotonic()
    stack = BenchStack(prep["name"], prep, tmp / "prep")
    try:
        stack.up()
    finally:
        stack.teardown()
    return f"warm ({key} captured before the clock by {prep['name']} in {time.monotonic() - t:.1f}s)"


def phase_seconds(tl, name: str) -> dict:
    """python_env and ray of the head and the slowest worker, seconds (the engine's step times)."""
    out = {}
    for phase in ("python_env", "ray"):
        out[f"head {phase}"] = tl.dur(f"{name}-head-{phase}")
        ws = [d for n in tl.start if n.startswith(f"{name}-worker") and n.endswith(f"-{phase}")
              and (d := tl.dur(n)) is not None]
        out[f"worker {phase}"] = max(ws) if ws else None
    out["capture"] = tl.dur(f"{name}-env-capture")
    return out


def styx_side(args, tmp: Path, mirror: WheelMirror | None, out: dict) -> BenchStack:
    c = local_cluster(args.styx_name, args.styx_subnet)
    c = copy.deepcopy(c)
    c.setdefault("setup", {}).setdefault("python", {}).update(
        {"installer": args.installer, "wheel_cache": args.wheel_cache, "env_cache": args.env_cache})
    c["setup"]["apt_cache"] = args.apt_cache
    out["wheels"] = prepare_wheel_cache(args, c)
    out["apt"] = prepare_apt_cache(args, c)
    out["ready_env"] = prepare_ready_env(args, c, tmp)
    log(f"styx wheel cache: {out['wheels']}; apt lists: {out['apt']}; ready env: {out['ready_env']}")
    if mirror:
        c = copy.deepcopy(c)
        c["setup"]["custom_scripts"] = [mirror.styx_script(args.styx_subnet), *c["setup"]["custom_scripts"]]
    stack = BenchStack(args.styx_name, c, tmp)
    out["stack"] = stack
    ncpu = lambda: node_cpu_seconds(args.styx_name)  # noqa: E731
    log(f"styx up (new cluster, wheel cache {args.styx_wheels}) (load {loadavg()})")
    load0 = loadavg()
    run = stack.up()
    o = stack.outputs()
    ready = wait_alive(stack.access(), o["head_ip"], 3, run.timeline.t0, on_ready=ncpu)
    tl = run.timeline
    sandboxes = max(t for n, t in tl.end.items() if n.endswith("-sandbox"))
    log(f"styx up {run.seconds:.1f}s, 3 alive at {ready.seconds}s")
    out["cold"] = {"returned_s": run.seconds, "ready_s": ready.seconds, "probe_s": ready.last_probe_s,
                   "node_cpu_s": ready.at_ready, "host_cpu_s": run.host_cpu_s, "sandboxes_done_s": sandboxes,
                   "changes": run.changes, "load_before": load0,
                   "phases": phase_seconds(tl, args.styx_name),
                   "python_env": (o.get("phase_results") or {}).get("worker-0", {}).get("python_env", "")[-120:],
                   "load_after": loadavg()}
    log(f"styx phases (s): {out['cold']['phases']}; worker-0 python_env: {out['cold']['python_env']}")
    if not args.quick:
        log("styx no-op up")
        cpu0 = ncpu()
        noop = stack.up()
        ready = wait_alive(stack.access(), o["head_ip"], 3, noop.timeline.t0, on_ready=ncpu)
        out["noop"] = {"returned_s": noop.seconds, "ready_s": ready.seconds, "changes": noop.changes,
                       "node_cpu_s": ready.at_ready - cpu0 if ready.at_ready is not None and cpu0 is not None else None,
                       "host_cpu_s": noop.host_cpu_s,
                       "load_after": loadavg()}
    return stack


def one_round(args, mirror: WheelMirror | None, styx_first: bool) -> tuple[dict, dict]:
    tmp = Path(tempfile.mkdtemp(prefix="styx-bench-rayup-"))
    ray_out: dict = {}
    styx_out: dict = {}
    hosts = None
    clear_launcher_state(args.rayup_name)
    try:
        hosts = HandMadeHosts(args.rayup_name, args.rayup_subnet, 2, tmp)
        for side in (["styx", "rayup"] if styx_first else ["rayup", "styx"]):
            if side == "rayup":
                rayup_side(args, tmp, mirror, ray_out, hosts)
            else:
                styx_side(args, tmp, mirror, styx_out)
    finally:
        log("teardown")
        if hosts is not None:
            if "log" in ray_out:
                secs, _ = ray_cli(["down", "-y", str(tmp / "ray-cluster.yaml")], Path(ray_out["log"]), timeout=300)
                ray_out["down_s"] = secs
            hosts.down()
            clear_launcher_state(args.rayup_name)
        stack = styx_out.pop("stack", None)
        if stack is not None:
            s = time.monotonic()
            stack.teardown()
            styx_out["destroy_s"] = time.monotonic() - s
        if "log" in ray_out:
            keep = Path(tempfile.gettempdir()) / "styx-bench-ray-up.log"
            with open(keep, "a") as f:
                f.write(Path(ray_out["log"]).read_text())
            ray_out["log"] = str(keep)
        rm_tree(tmp)
    return ray_out, styx_out


def med(values: list) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def per_round(values: list, nd: int = 1) -> str:
    return " / ".join("-" if v is None else f"{v:.{nd}f}" for v in values) if len(values) > 1 else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rayup-name", default="bench-rayup")
    ap.add_argument("--rayup-subnet", default="10.92.0.0/24")
    ap.add_argument("--styx-name", default="bench-styx3")
    ap.add_argument("--styx-subnet", default="10.93.0.0/24")
    ap.add_argument("--rounds", type=int, default=1, help="repeat; the order alternates each round; medians")
    ap.add_argument("--styx-first", action="store_true", help="start with the styx side (default: ray up first)")
    ap.add_argument("--pip-cache", action="store_true", help="both sides install Ray from a host wheel mirror")
    ap.add_argument("--quick", action="store_true", help="no re-runs")
    ap.add_argument("--installer", choices=["uv", "pip"], default="uv", help="styx's setup.python.installer")
    ap.add_argument("--wheel-cache", choices=["auto", "off"], default="auto", help="styx's setup.python.wheel_cache")
    ap.add_argument("--apt-cache", choices=["auto", "off"], default="auto",
                    help="styx's setup.apt_cache (default auto); --styx-wheels cold|warm empties or fills it too")
    ap.add_argument("--styx-wheels", choices=["cold", "warm"], default="cold",
                    help="styx's wheel cache before its up: cold = emptied (download counted), warm = filled")
    ap.add_argument("--env-cache", choices=["auto", "off"], default="auto", help="styx's setup.python.env_cache")
    ap.add_argument("--json")
    args = ap.parse_args()
    if not (RAY_VENV / "bin" / "ray").exists():
        sys.exit(f"no Ray launcher at {RAY_VENV}: python3 -m venv {RAY_VENV} && "
                 f"{RAY_VENV}/bin/pip install 'ray[default]=={RAY_VERSION}'  (and apt-get install rsync)")

    print(f"machine: {machine_line()}")
    print(f"styx: installer {args.installer}, wheel_cache {args.wheel_cache}, env_cache {args.env_cache}, "
          f"wheels {args.styx_wheels}")
    mirror = WheelMirror() if args.pip_cache else None
    rounds: list[tuple[dict, dict, bool]] = []
    try:
        if mirror:
            mirror.start()
        for i in range(args.rounds):
            styx_first = args.styx_first != (i % 2 == 1)
            ray_out, styx_out = one_round(args, mirror, styx_first)
            rounds.append((ray_out, styx_out, styx_first))
    finally:
        if mirror:
            mirror.stop()

    def col(side: int, *keys: str) -> list:
        out = []
        for rnd in rounds:
            d = rnd[side]
            for k in keys[:-1]:
                d = d.get(k, {})
            out.append(d.get(keys[-1]))
        return out

    spec = [
        ("ray up (cold)", col(0, "cold", "returned_s"), col(0, "cold", "ready_s"), col(0, "cold", "node_cpu_s"),
         col(0, "cold", "host_cpu_s"), "hosts made beforehand"),
        (f"styx up (wheel cache {args.styx_wheels})", col(1, "cold", "returned_s"), col(1, "cold", "ready_s"),
         col(1, "cold", "node_cpu_s"),
         col(1, "cold", "host_cpu_s"),
         f"incl. making its 3 sandboxes (all made at {med(col(1, 'cold', 'sandboxes_done_s')) or 0:.1f}s)"),
    ]
    if not args.quick:
        spec += [
            ("ray up again (no change)", col(0, "rerun", "returned_s"), col(0, "rerun", "ready_s"),
             col(0, "rerun", "node_cpu_s"), col(0, "rerun", "host_cpu_s"), "restarts Ray"),
            ("ray up --no-restart (no change)", col(0, "norestart", "returned_s"), col(0, "norestart", "ready_s"),
             col(0, "norestart", "node_cpu_s"), col(0, "norestart", "host_cpu_s"), ""),
            ("styx no-op up", col(1, "noop", "returned_s"), col(1, "noop", "ready_s"), col(1, "noop", "node_cpu_s"),
             col(1, "noop", "host_cpu_s"),
             ", ".join(f"{k}={v}" for k, v in sorted((rounds[-1][1].get("noop", {}).get("changes") or {}).items()))),
        ]
    spec += [
        ("ray down", col(0, "down_s"), [None] * len(rounds), [None], [None], "then node-down x3 + net-down"),
        ("styx destroy", col(1, "destroy_s"), [None] * len(rounds), [None], [None], "incl. remove_stack"),
    ]
    rows = [[label, med(ret), med(rdy), per_round(ret), per_round(rdy), med(nc), med(hc), note]
            for label, ret, rdy, nc, hc, note in spec]
    print()
    print(table(f"ray up vs styx, 3 sandbox nodes, median of {len(rounds)} round(s)"
                + (" (Ray from the host wheel mirror)" if mirror else ""),
                ["run", "command returned s", "3 alive s", "returned per round", "3 alive per round",
                 "CPU s in nodes", "CPU s on host", "note"], rows))

    host_make = [sum(r[0].get("hosts", {}).get(k, 0) for k in ("net-up", "node-up")) for r in rounds]
    ratio_rows = []
    pairs = [(s_, r_) for s_, r_ in zip(col(1, "cold", "ready_s"), col(0, "cold", "ready_s"), strict=True) if s_ and r_]
    if pairs:
        per = [s_ / r_ for s_, r_ in pairs]
        ratio_rows.append(["styx / ray up, to 3 alive", f"{statistics.median(per):.2f}", per_round(per, 2)])
        per = [s_ / (r_ + h) for (s_, r_), h in zip(pairs, host_make, strict=False)]
        ratio_rows.append(["styx / (ray up + making its hosts)", f"{statistics.median(per):.2f}", per_round(per, 2)])
        per = [s_ / r_ for s_, r_ in zip(col(1, "cold", "returned_s"), col(0, "cold", "returned_s"), strict=True)
               if s_ and r_]
        ratio_rows.append(["styx engine call / `ray up` returned", f"{statistics.median(per):.2f}", per_round(per, 2)])
    pairs = [((a or 0) + (b or 0), (c or 0) + (d or 0)) for a, b, c, d in zip(
        col(1, "cold", "node_cpu_s"), col(1, "cold", "host_cpu_s"), col(0, "cold", "node_cpu_s"),
        col(0, "cold", "host_cpu_s"), strict=True)]
    pairs = [(x, y) for x, y in pairs if x and y]
    if pairs:
        per = [x / y for x, y in pairs]
        ratio_rows.append(["styx / ray up, CPU s (nodes + host)", f"{statistics.median(per):.2f}", per_round(per, 2)])
    print()
    print(table("ratios (each round's pair measured in the same run)", ["what", "median", "per round"], ratio_rows))
    hosts = [r[0].get("hosts", {}) for r in rounds]
    print(f"\nray up hosts, not counted (median): net-up {med([h.get('net-up') for h in hosts]) or 0:.1f}s, "
          f"node-up x3 {med([h.get('node-up') for h in hosts]) or 0:.1f}s, "
          f"rsync install {med(col(0, 'rsync_prep_s')) or 0:.1f}s")
    for i, (ro, so, sf) in enumerate(rounds):
        print(f"round {i + 1} ({'styx' if sf else 'ray up'} first): load before ray up cold "
              f"{ro.get('cold', {}).get('load_before')}, before styx cold {so.get('cold', {}).get('load_before')}, "
              f"after styx cold {so.get('cold', {}).get('load_after')}; styx wheel cache {so.get('wheels')}; "
              f"apt lists {so.get('apt')}; ready env {so.get('ready_env')}")
        ph = so.get("cold", {}).get("phases") or {}
        print("  styx phases s: " + ", ".join(f"{k} {v:.1f}" for k, v in ph.items() if v is not None))
    print(f"machine at the end: {machine_line()}")
    json_dump(args.json, {"machine": machine_line(), "args": vars(args),
                          "rounds": [{"ray_up": r, "styx": s_, "styx_first": f} for r, s_, f in rounds]})


if __name__ == "__main__":
    main()
