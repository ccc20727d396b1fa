"""Benchmark (issue 13): `styx launch` to 3 alive Ray nodes on the real single-node Kubernetes of
toolchain/run-k8s.sh, in each mode (operator none: StatefulSets + styx's phases through kubectl exec;
operator kuberay: a RayCluster, KubeRay starts Ray), beside the local backend (sandbox hosts).

Each mode: `styx launch` (the CLI, its own STYX_HOME) timed until it returns, then until the head
reports 3 alive Ray nodes; then a no-op `styx launch`; then `styx down`. Numbers are printed, never
asserted (2 shared cores: load changes them). The cluster must be up: bash toolchain/run-k8s.sh cluster

    .venv/bin/python bench/k8s_launch_bench.py [--modes none,kuberay,local] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._common import loadavg, log, machine_line, table  # noqa: E402
from styx.app.remote import RAY_ALIVE_PY, ray_alive_count  # noqa: E402


def styx(env: dict, *args: str) -> float:
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "styx.app.cli", *args], cwd=ROOT, env=env, capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, check=False)
    if r.returncode != 0:
        raise SystemExit(f"styx {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return time.monotonic() - t


def k8s_alive(kc: str, ns: str, selector: str) -> int:
    k = ["kubectl", f"--kubeconfig={kc}", "-n", ns]
    pod = subprocess.run([*k, "get", "pods", "-l", selector, "-o", "jsonpath={.items[0].metadata.name}"],
                         capture_output=True, text=True, check=False).stdout
    if not pod:
        return 0
    r = subprocess.run([*k, "exec", pod, "-c", "ray", "--", "bash", "-c", RAY_ALIVE_PY], capture_output=True,
                       text=True, check=False)
    return (ray_alive_count(r.stdout) or 0) if r.returncode == 0 else 0


def run_mode(mode: str, tmp: Path, kc: str) -> dict:
    from styx.app.engine import pulumi_home

    # its own state and passphrase; the plugins of this machine's toolchain
    env = {**os.environ, "STYX_HOME": str(tmp / f"home-{mode}"), "PULUMI_HOME": str(pulumi_home()),
           "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    if mode == "local":
        doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.local.yaml").read_text())
        c = doc["config"]["styx:cluster"]
        c.update(name="bench-k8s-local")
        c["local"]["subnet"] = "10.91.0.0/24"
        c["setup"].pop("secret_env", None)
        for fm in c["setup"].get("file_mounts", []):  # the config file lives in a temp folder
            fm["local"] = str(ROOT / fm["local"])
        for cs in c["setup"].get("custom_scripts", []):
            if cs.get("file"):
                cs["file"] = str(ROOT / cs["file"])
    else:
        doc = yaml.safe_load((ROOT / "stacks" / "Pulumi.k8s-local.yaml").read_text())
        c = doc["config"]["styx:cluster"]
        c["name"] = f"bench-{mode}"
        c["kubernetes"].update(operator=mode, kubeconfig=kc)
    f = tmp / f"{mode}.yaml"
    f.write_text(yaml.safe_dump(doc))
    stack = c["name"]
    launch = styx(env, "launch", str(f), "--stack", stack, "--yes")
    t0 = time.monotonic() - launch
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if mode == "local":
            r = subprocess.run([sys.executable, "-m", "styx.app.cli", "exec", "--stack", stack, "--", "bash", "-c",
                                RAY_ALIVE_PY], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
            n = (ray_alive_count(r.stdout) or 0) if r.returncode == 0 else 0
        else:
            sel = (f"ray.io/cluster={stack},ray.io/node-type=head" if mode == "kuberay"
                   else f"app.kubernetes.io/instance={stack},styx/role=head")
            n = k8s_alive(kc, f"styx-{stack}", sel)
        if n == 3:
            break
        time.sleep(2)
    alive = time.monotonic() - t0
    noop = styx(env, "launch", str(f), "--stack", stack, "--yes")
    down = styx(env, "down", "--stack", stack, "--yes")
    return {"mode": mode, "launch_s": launch, "alive_s": alive, "noop_s": noop, "down_s": down, "load": loadavg()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modes", default="none,kuberay,local")
    ap.add_argument("--json")
    a = ap.parse_args()
    kc = os.environ.get("KUBECONFIG", str(Path.home() / ".styx" / "k8s" / "kubeconfig"))
    log(machine_line())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in a.modes.split(","):
            log(f"mode {mode}")
            rows.append(run_mode(mode, Path(tmp), kc))
    print(table("styx launch to 3 alive Ray nodes (s)", ["mode", "launch", "3 alive", "no-op", "down", "load"],
                [[r["mode"], r["launch_s"], r["alive_s"], r["noop_s"], r["down_s"], r["load"]] for r in rows]))
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
