"""`styx drift` and `styx repair` end to end: a real 3-node cluster (local backend, official plugins,
real Ray), broken behind Pulumi's back in three places, found exactly, put back through the engine with
nothing else re-run; then a sandbox removed outside Pulumi, found and rebuilt by the next launch.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from tests.e2e.helpers import SANDBOXCTL
from tests.e2e.test_cli_local import cli as cli  # the fixture
from tests.e2e.test_cli_local import teardown

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "driftx"
RAY_NODES_PY = ("import ray; ray.init(address='auto', logging_level='ERROR'); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))")


def cluster(code) -> dict:
    return {
        "name": NAME,
        "cloud": "local",
        "local": {"subnet": "10.90.0.0/24", "shm_size": "1g"},
        "workers": [{"name": "worker", "count": 2}],
        "setup": {
            "python": {"version": "system", "env_tool": "venv"},
            "ray": {"version": "2.60.0"},
            "file_mounts": [{"local": str(code), "remote": "/opt/driftx/code"}],
            "env": {"MODE": "drift-test"},
            "workdir": "/opt/driftx/work",
            "custom_scripts": [{"name": "mark", "inline": "echo v1 > /opt/driftx/work/mark",
                                "check": "grep -qx v1 /opt/driftx/work/mark"}],
        },
    }


def problems(report: dict) -> set[tuple[str, str]]:
    return {(d["node"], d["phase"]) for d in report["drifted"]}


def ran(phases: dict) -> set[tuple[str, str]]:
    """(node, phase) of every phase the engine ran in an update (styx's progress record)."""
    return {(n, p) for n, ps in phases.items() for p, st in ps.items() if st not in ("unchanged", "pending")}


def drift(cli) -> dict:
    r = cli.run("drift", "--json", "--stack", NAME)
    assert r.returncode in (0, 3), r.stderr
    return json.loads(r.stdout)


def alive(cli, want: int, wait_s: float = 120) -> int:
    """Ray's count of alive nodes, once it is `want` or after `wait_s`: a machine removed outside
    Pulumi stays "Alive" in the GCS until its health checks fail (Ray's default: about 30 s), so
    right after a rebuild the old and the new worker-1 can both be counted."""
    deadline = time.monotonic() + wait_s
    while True:
        ex = cli.json("exec", "--stack", NAME, "--", f'python -c "{RAY_NODES_PY}"')
        assert ex["exit_code"] == 0, ex
        n = int(ex["stdout"].strip().splitlines()[-1])
        if n == want or time.monotonic() > deadline:
            return n
        time.sleep(5)


def test_drift_found_exactly_repaired_exactly_then_a_removed_sandbox_rebuilt(cli, tmp_path):
    code = tmp_path / "code"
    (code / "conf").mkdir(parents=True)
    (code / "train.py").write_text("print('v1')\n")
    (code / "conf" / "a.yaml").write_text("a: 1\n")
    cfg = cli.config(cluster(code))
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"], up
        clean = cli.json("drift", "--stack", NAME)
        assert clean["clean"] and not clean["drifted"] and not clean["unreachable"], clean
        statuses = {(n["node"], p["phase"]): p["status"] for n in clean["nodes"] for p in n["phases"]}
        assert statuses[("head", "custom-mark")] == "ok" and statuses[("worker-1", "ray")] == "ok", statuses
        assert set(statuses.values()) == {"ok"}, statuses

        # three changes behind Pulumi's back
        for node, cmd in (("worker-0", "ray stop --force"),
                          ("head", "echo 'export INJECTED=1' >> /etc/styx/env.sh"),
                          ("worker-1", "rm -f /opt/driftx/code/conf/a.yaml")):
            r = cli.run("exec", "--stack", NAME, node, "--", cmd)
            assert r.returncode == 0, r.stderr
        found = cli.json("drift", "--stack", NAME, expect=3)
        assert problems(found) == {("worker-0", "ray"), ("head", "env_vars"), ("worker-1", "file_sync")}, found
        detail = {(d["node"], d["phase"]): d["detail"] for d in found["drifted"]}
        assert "/opt/driftx/code/conf/a.yaml missing" in detail[("worker-1", "file_sync")]
        assert "content changed" in detail[("head", "env_vars")]
        assert "drift-test" not in str(found)  # the env file's content never appears: only its hash
        assert cli.run("status", "--stack", NAME, "--no-ray").stdout.count("drift:") == 1

        fixed = cli.json("repair", "--stack", NAME)
        replaced = {(w["node"], w["phase"]) for w in fixed["replaced"] if "node" in w}
        later_on_head = {("head", p) for p in ("env_vars", "workdir", "custom-mark", "ray")}
        later_on_w1 = {("worker-1", p) for p in ("file_sync", "env_vars", "workdir", "custom-mark", "ray")}
        # the drifted phases and those after them on their node; the workers' Ray rejoins the restarted head
        assert replaced == later_on_head | later_on_w1 | {("worker-0", "ray")}, fixed["replaced"]
        assert {"resource": "driftx-worker-1-file_sync-copy"} in fixed["replaced"]  # the archive goes again too
        assert ran(fixed["phases"]) == replaced | {("worker-1", "file_sync-copy")}, fixed["phases"]
        again = drift(cli)
        assert again["clean"], (again["drifted"], again["unreachable"])
        assert alive(cli, 3) == 3

        # a sandbox removed outside Pulumi: found (gone), then made again by the next launch
        env = {**os.environ, "STYX_SB_CLUSTER": NAME, "STYX_SB_NODE": "worker-1"}
        subprocess.run(["bash", str(SANDBOXCTL), "node-down"], env=env, check=True, capture_output=True)
        lost = cli.json("drift", "--stack", NAME, expect=3)
        assert lost["unreachable"] == ["worker-1"], lost
        assert next(n for n in lost["nodes"] if n["node"] == "worker-1")["gone"] is True
        relaunch = cli.json("launch", str(cfg))
        assert relaunch["ok"]
        assert {p for (n, p) in ran(relaunch["phases"]) if n != "worker-1"} <= set(), relaunch["phases"]
        assert ("worker-1", "ray") in ran(relaunch["phases"]) and ("worker-1", "file_sync") in ran(relaunch["phases"])
        final = drift(cli)
        assert final["clean"], (final["drifted"], final["unreachable"])
        assert alive(cli, 3) == 3
    finally:
        teardown(cli, NAME, NAME)
