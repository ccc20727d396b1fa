"""`styx stop` / `styx start` end to end: a real 2-node cluster (local backend, official plugins, real
Ray) stopped with its files kept, refused by `launch` while stopped, started again with exactly Ray
re-run (drift + repair), then destroyed from the stopped state with nothing left behind.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.e2e.helpers import SANDBOXCTL
from tests.e2e.test_cli_local import cli as cli  # the fixture
from tests.e2e.test_cli_local import teardown
from tests.e2e.test_drift import RAY_NODES_PY, ran

pytestmark = [pytest.mark.engine, pytest.mark.sandbox, pytest.mark.slow]

NAME = "ssx"


def cluster() -> dict:
    return {
        "name": NAME,
        "cloud": "local",
        "local": {"subnet": "10.94.0.0/24", "shm_size": "1g"},
        "workers": [{"name": "worker", "count": 1}],
        "setup": {"python": {"version": "system", "env_tool": "venv"}, "ray": {"version": "2.60.0"}},
    }


def alive_state(node: str) -> str:
    env = {**os.environ, "STYX_SB_CLUSTER": NAME, "STYX_SB_NODE": node}
    r = subprocess.run(["bash", str(SANDBOXCTL), "node-alive"], env=env, capture_output=True, text=True, check=False)
    return r.stdout.strip()


def test_stop_keeps_files_start_brings_ray_back_with_nothing_else_rerun(cli):
    cfg = cli.config(cluster())
    try:
        up = cli.json("launch", str(cfg))
        assert up["ok"], up
        r = cli.run("exec", "--stack", NAME, "worker-0", "--", "echo kept > /root/mark")
        assert r.returncode == 0, r.stderr

        stopped = cli.json("stop", "--stack", NAME)
        assert sorted(stopped["stopped"]) == ["head", "worker-0"], stopped
        assert alive_state("head") == "stopped" and alive_state("worker-0") == "stopped"
        st = cli.json("status", "--stack", NAME)["clusters"][0]
        assert st["state"] == "stopped" and {n["power"] for n in st["nodes"]} == {"stopped"}, st
        assert st["ray"] is None  # a stopped cluster is not dialled
        again = cli.json("stop", "--stack", NAME)  # stopping a stopped cluster does nothing
        assert sorted(again["stopped"]) == ["head", "worker-0"], again
        refused = cli.run("launch", str(cfg))
        assert refused.returncode == 1 and "is stopped" in refused.stderr and "styx start" in refused.stderr

        started = cli.json("start", "--stack", NAME)
        assert sorted(started["started"]) == ["head", "worker-0"] and started["still_stopped"] == [], started
        rerun = {(w["node"], w["phase"]) for w in started["repaired"] if "node" in w}
        assert rerun == {("head", "ray"), ("worker-0", "ray")}, started["repaired"]
        mark = cli.json("exec", "--stack", NAME, "worker-0", "--", "cat /root/mark")
        assert mark["stdout"].strip() == "kept", mark
        ex = cli.json("exec", "--stack", NAME, "--", f'python -c "{RAY_NODES_PY}"')
        assert int(ex["stdout"].strip().splitlines()[-1]) == 2, ex
        clean = cli.json("drift", "--stack", NAME)
        assert clean["clean"], clean
        st = cli.json("status", "--stack", NAME, "--no-ray")["clusters"][0]
        assert st["state"] == "up" and set(st["stopped_s"]) == {"head", "worker-0"}, st
        relaunch = cli.json("launch", str(cfg))  # a started cluster is up to date: nothing runs
        assert ran(relaunch["phases"]) == set(), relaunch["phases"]

        # destroyed from the stopped state: the machines start first, the undos run, nothing is left
        assert cli.json("stop", "--stack", NAME, "--node", "worker-0")["stopped"] == ["worker-0"]
    finally:
        teardown(cli, NAME, NAME)
